"""`lmcore ngram`: the whitespace path gives KenLM's model; tokenizer models round-trip."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

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
    (["--order", "0"], "--order: must be at least 1, got 0"),
    (["--order", "7"], "--order: must be at most 6, got 7"),
    (["--smoothing", "addk", "--k", "0"], "--k: must be above 0, got 0"),
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


def _train_arpa(tmp_path, data: bytes, *extra: str, name: str = "t") -> str:
    src = tmp_path / f"{name}.txt"
    src.write_bytes(data)
    arpa = tmp_path / f"{name}.arpa"
    assert main(["ngram", "train", str(src), "--order", "2", "-o", str(arpa), *extra]) == 0
    return arpa.read_text(encoding="utf-8")


def _unigrams(arpa: str) -> list[str]:
    section = arpa.split("\\1-grams:\n")[1].split("\n\n")[0]
    return [line.split("\t")[1] for line in section.split("\n")]


def test_lone_cr_and_crlf_are_spaces_like_lmplz(tmp_path):
    plain = _train_arpa(tmp_path, b"a b c d\nb c\n", name="plain")
    assert _train_arpa(tmp_path, b"a b\rc d\nb c\n", name="cr") == plain  # not a line break
    assert _train_arpa(tmp_path, b"a b c d\r\nb c\r\n", name="crlf") == plain


def test_nul_separates_words_like_lmplz(tmp_path):
    assert _train_arpa(tmp_path, b"a\x00b c\n", name="nul") == \
        _train_arpa(tmp_path, b"a b c\n", name="plain")


def test_vertical_tab_and_form_feed_stay_inside_a_word(tmp_path, capsys):
    arpa = _train_arpa(tmp_path, b"a\x0bb c\nc a\x0bb d\x0ce\n")
    assert _unigrams(arpa) == ["<unk>", "<s>", "</s>", "a\x0bb", "c", "d\x0ce"]
    capsys.readouterr()
    # eval reads the ARPA back with the same words and scores the training file without OOV
    assert main(["ngram", "eval", str(tmp_path / "t.arpa"), str(tmp_path / "t.txt")]) == 0
    assert "7 tokens scored (incl. </s>), 0 OOV" in capsys.readouterr().out


def test_last_line_without_newline_gets_no_eos_like_lmplz(tmp_path, capsys):
    closed = _train_arpa(tmp_path, b"a b\nb c\n", name="closed")
    open_end = _train_arpa(tmp_path, b"a b\nb c", name="open")
    assert "\tc </s>" in closed and "\tc </s>" not in open_end
    assert "ngram 2=5\n" in open_end
    capsys.readouterr()
    assert main(["ngram", "eval", str(tmp_path / "closed.arpa"), str(tmp_path / "open.txt")]) == 0
    assert "5 tokens scored" in capsys.readouterr().out  # KenLM's query: no </s> either


@pytest.mark.parametrize("word", ["<unk>", "<s>", "</s>"])
def test_reserved_words_in_training_text_exit_2(tmp_path, capsys, word):
    train = tmp_path / "train.txt"
    train.write_text(f"a b\nc {word} d\n")
    assert main(["ngram", "train", str(train)]) == 2
    err = capsys.readouterr().err
    assert f"contains the word {word}" in err and "reserved" in err


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_tokenizer_model_round_trips_with_the_same_oov_and_numbers(kenlm_dir, tmp_path, capsys,
                                                                    kind):
    arpa = tmp_path / f"{kind}.arpa"
    assert main(["ngram", "train", str(kenlm_dir / "train.txt"), "--tokenizer", kind,
                 "-o", str(arpa), "--eval", str(kenlm_dir / "test.txt")]) == 0
    first = capsys.readouterr().out
    assert (tmp_path / f"{kind}.tokenizer.json").is_file()
    assert main(["ngram", "eval", str(arpa), str(kenlm_dir / "test.txt")]) == 0
    again = capsys.readouterr().out

    def oov(out):
        return int(re.search(r"tokens scored, ([\d,]+) OOV", out).group(1).replace(",", ""))

    assert oov(first) == oov(again) > 0
    for which in ("including", "excluding"):
        assert _ppl(again, which) == pytest.approx(_ppl(first, which), rel=1e-6)


LMPLZ = Path(__file__).resolve().parents[2] / ".bench-cache" / "kenlm" / "bin" / "lmplz"


@pytest.mark.skipif(not LMPLZ.is_file(), reason="KenLM's lmplz is not built "
                    "(make bench-kenlm builds it into .bench-cache/)")
def test_odd_whitespace_file_gives_lmplzs_model(tmp_path):
    data = (b"a b\rc d\x0be\x0cf\x00g h\xc2\xa0i\n\tb  c a\r\nc d\x0be\x0cf b\n\n"
            b"a b c\x1cd\nb c d")
    src = tmp_path / "odd.txt"
    src.write_bytes(data)
    theirs = tmp_path / "lmplz.arpa"
    with open(src, "rb") as fin, open(theirs, "wb") as fout:
        subprocess.run([str(LMPLZ), "-o", "3", "-S", "50M", "-T", str(tmp_path),
                        "--discount_fallback"], stdin=fin, stdout=fout, stderr=subprocess.DEVNULL,
                       check=True, timeout=60)
    ours = _train_arpa(tmp_path, data, "--order", "3", name="ours")

    def entries(text):
        out, n = {}, 0
        for line in text.split("\n"):  # not splitlines(): \v, \f, \x1c are word characters
            if line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:line.index("-")])
            elif n and line and not line.startswith("\\"):
                f = line.split("\t")
                out[f[1]] = (float(f[0]), float(f[2]) if len(f) > 2 else 0.0)
        return out

    a, b = entries(ours), entries(theirs.read_text(encoding="utf-8"))
    assert a.keys() == b.keys() and len(a) > 20
    assert max(abs(x - y) for k in a for x, y in zip(a[k], b[k], strict=True)) < 1e-5
