"""ROUGE works on Chinese (character tokens) and agrees with rouge-score on English."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from lmcore.longtext.rouge import rouge, tokenize


def test_tokenize_splits_cjk_per_character_and_words_otherwise():
    assert tokenize("语言模型 Language-Models, 2024年！") == \
        ["语", "言", "模", "型", "language", "models", "2024", "年"]
    assert tokenize("日本語のテキスト") == list("日本語のテキスト")


def test_rouge_on_chinese_by_hand():
    # reference 猫坐在垫子上 (6 chars), summary 猫在垫子上 (5 chars, all in the reference)
    r = rouge("猫坐在垫子上。", "猫在垫子上")
    assert r["rouge1"].precision == pytest.approx(1.0)
    assert r["rouge1"].recall == pytest.approx(5 / 6)
    # bigrams: ref {猫坐 坐在 在垫 垫子 子上}, summary {猫在 在垫 垫子 子上}: 3 shared
    assert r["rouge2"].precision == pytest.approx(3 / 4)
    assert r["rouge2"].recall == pytest.approx(3 / 5)
    assert r["rougeL"].recall == pytest.approx(5 / 6)  # LCS 猫在垫子上


def test_default_rouge_score_gives_zero_on_chinese_but_ours_does_not():
    default = rouge_scorer.RougeScorer(["rouge1"]).score("猫坐在垫子上", "猫坐在垫子上")
    assert default["rouge1"].fmeasure == 0.0
    assert rouge("猫坐在垫子上", "猫坐在垫子上")["rouge1"].f1 == pytest.approx(1.0)


def test_english_matches_rouge_score_default_tokenizer():
    ref = "The quick brown fox jumps over the lazy dog."
    hyp = "The quick brown dog jumps on the log."
    ours = rouge(ref, hyp)
    theirs = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(ref, hyp)
    for name in ("rouge1", "rouge2", "rougeL"):
        assert ours[name].f1 == pytest.approx(theirs[name].fmeasure)


def test_empty_reference_is_refused():
    with pytest.raises(ValueError, match="reference"):
        rouge("  。！ ", "anything")
