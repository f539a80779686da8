"""Generated instructions have right answers and disjoint train/held-out words; the rule."""

from __future__ import annotations

import re

import pytest

from lmcore.stages.chat import Example
from lmcore.stages.instructions import (
    TASKS,
    answer,
    instruction_set,
    pseudo_words,
    successor_table,
)
from lmcore.stages.preferences import edit_distance, judge, rank_pair

TEXT = ("the cat sat on the mat . the cat ran to the dog . the cat ate the fish . " * 5
        + " ".join(pseudo_words(300, 1)))


def _word(ex: Example) -> str:
    return ex.prompt.rsplit(" ", 1)[1]


def test_answers_are_right_when_checked_another_way():
    assert answer("reverse", "abcd") == "dcba"
    assert answer("upper", "abc") == "ABC"
    assert answer("vowels", "education") == "5"
    with pytest.raises(ValueError, match="unknown task"):
        answer("sing", "abc")


def test_next_word_is_the_clear_most_frequent_successor():
    table = successor_table(TEXT)
    assert table["the"] == "cat"  # "the cat" 15 times, "the mat/dog/fish" 5 each
    assert table.get("cat") is None  # sat, ran, ate: 5 each, no clear winner


@pytest.mark.parametrize("seed", [0, 1])
def test_every_answer_is_right_and_held_out_words_are_unseen(seed):
    data = instruction_set(TEXT, seed=seed, train_per_task=50, test_per_task=10)
    table = successor_table(TEXT)
    assert data.test and data.train
    for ex in data.train + data.test:
        w = _word(ex)
        assert ex.response == answer(ex.task, w, table)
        if ex.task == "vowels":
            assert int(ex.response) == len(re.findall("[aeiou]", w))
    train_words = {_word(ex) for ex in data.train}
    test_words = {_word(ex) for ex in data.test}
    assert not train_words & test_words
    assert {ex.task for ex in data.test} <= set(TASKS)


def test_a_corpus_without_latin_words_gets_pseudo_words():
    data = instruction_set("机器学习是人工智能的一个分支。" * 50, seed=0, train_per_task=10)
    assert "pseudo-words" in data.source
    assert {ex.task for ex in data.test} == {"reverse", "upper", "vowels"}


def test_the_rule_prefers_correct_then_closer():
    assert edit_distance("kitten", "sitting") == 3
    assert judge("abc", "abc", "abd") == ("abc", "abd", "correct")
    assert judge("abc", "xyz", "abx") == ("abx", "xyz", "closer")
    assert judge("abc", "abx", "abx") is None
    assert judge("abc", "abx", "aby") is None  # equally far
    pair = rank_pair(Example("upper", "upper: abc", "ABC"), ["ABD", "ABC", "zzz", "ABC"])
    assert (pair.chosen, pair.rejected, pair.rule) == ("ABC", "zzz", "correct")
