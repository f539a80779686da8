"""`lmcore ngram`: the whitespace path gives KenLM's model; tokenizer models round-trip."""

from __future__ import annotations

import json
import re

import pytest

from lmcore.cli import main


def _ppl(out: str, which: str) -> float:
    return float(re.search(rf"Perplexity {which} OOVs:\s+(\S+)", out).group(1))


def test_train_whitespace_equals_lmplz_and_eval_reads_it(kenlm_dir, tmp_path, capsys):
    expected = json.loads((kenlm_dir / "expected.json").read_text())["orders"]["3"]
    arpa = tmp_path / "model.arpa"
    assert main(["ngram", "train", str(kenlm_dir / "train.txt"), "--order", "3",
                 "--smoothing", "kn", "--tokenizer", "whitespace", "-o", str(arpa)]) == 0
    out = capsys.readouterr().out
    assert "1-grams 3,472, 2-grams 23,608, 3-grams 44,185" in out
    assert "D1=0.539682 D2=1.698279 D3+=1.516952" in out  # KenLM's order-3 discounts
    header = arpa.read_text().split("\n\n")[0]
    assert header == (kenlm_dir / "order3.arpa").read_text().split("\n\n")[0]
    for model in (arpa, kenlm_dir / "order3.arpa"):
        assert main(["ngram", "eval", str(model), str(kenlm_dir / "test.txt")]) == 0
        out = capsys.readouterr().out
        assert _ppl(out, "including") == pytest.approx(expected["ppl_including_oov"], rel=1e-4)
        assert _ppl(out, "excluding") == pytest.approx(expected["ppl_excluding_oov"], rel=1e-4)
        assert "15,328 tokens scored (incl. </s>), 233 OOV" in out


def test_char_tokenizer_model_saves_its_tokenizer(tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_text("the cat sat on the mat.\nthe dog sat on the log.\n" * 30)
    test = tmp_path / "test.txt"
    test.write_text("the cat sat on the log.\n")
    arpa = tmp_path / "char.arpa"
    assert main(["ngram", "train", str(train), "--order", "4", "--tokenizer", "char",
                 "-o", str(arpa), "--eval", str(test)]) == 0
    first = _ppl(capsys.readouterr().out, "including")
    assert (tmp_path / "char.tokenizer.json").is_file()
    assert main(["ngram", "eval", str(arpa), str(test)]) == 0
    out = capsys.readouterr().out
    assert _ppl(out, "including") == pytest.approx(first, rel=1e-6)
    assert 1.0 < first < 3.0


def test_mle_reports_inf_with_zero_probability_count(tmp_path, capsys):
    train = tmp_path / "train.txt"
    train.write_text("a b c\na b d\n")
    test = tmp_path / "test.txt"
    test.write_text("a c\n")
    assert main(["ngram", "train", str(train), "--order", "2", "--smoothing", "mle",
                 "--eval", str(test)]) == 0
    out = capsys.readouterr().out
    assert "1 tokens had probability 0" in out and _ppl(out, "including") == float("inf")


@pytest.mark.parametrize("args, message", [
    (["--order", "0"], "order must be from 1 to 6"),
    (["--order", "7"], "order must be from 1 to 6"),
    (["--smoothing", "addk", "--k", "0"], "k > 0"),
    (["--order", "6"], "too small for order 6"),
])
def test_bad_settings_exit_2_with_a_message(tmp_path, capsys, args, message):
    train = tmp_path / "train.txt"
    train.write_text("a b\nc\n")
    assert main(["ngram", "train", str(train), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_and_bad_files(tmp_path, capsys):
    assert main(["ngram", "train", str(tmp_path / "nope.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.arpa"
    bad.write_text("not an arpa file\n")
    text = tmp_path / "t.txt"
    text.write_text("a b\n")
    assert main(["ngram", "eval", str(bad), str(text)]) == 2
    assert "not an ARPA file" in capsys.readouterr().err
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    assert main(["ngram", "train", str(latin)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
