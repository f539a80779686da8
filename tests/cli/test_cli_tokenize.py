"""`lmcore tokenize`: trains and saves a tokenizer, prints stats rows, exits 2 on bad input."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmcore.cli import main
from lmcore.data.corpus import load_text
from lmcore.data.tokenizers import Tokenizer, tokenizer_stats

ROOT = Path(__file__).resolve().parents[2]
TEXT = ("The language model reads the text and predicts the next token.\n"
        "语言模型 language model: 中文没有空格。\n"
        "def f(x):\n    return x + 1\n") * 60


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _rows(out: str) -> dict[str, list[str]]:
    """Table rows by kind: the cells of each Markdown row after the header."""
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["kind", "vocab", "tokens", "chars/token", "bytes/token", "unk share",
                      "train s"]
    assert set(lines[1]) <= {"|", "-"}
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    return {c[0]: c for c in cells}


def test_tokenize_trains_saves_and_prints_stats(corpus_file, tmp_path, capsys):
    out_path = tmp_path / "out" / "tok.json"
    assert main(["tokenize", str(corpus_file), "--kind", "bpe", "--vocab-size", "300",
                 "-o", str(out_path)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert list(rows) == ["bpe"]
    tok = Tokenizer.load(out_path)
    assert tok.kind == "bpe" and tok.vocab_size == 300
    assert rows["bpe"][1] == "300"
    # the row reports the tokenizer's stats on the held-out last 10% of the text
    split = load_text(TEXT.encode(), "corpus.txt").split()
    assert split.test
    stats = tokenizer_stats(tok, split.test)
    assert rows["bpe"][2] == f"{stats.tokens:,}"
    assert rows["bpe"][3] == f"{stats.chars_per_token:.3f}"
    assert f"saved bpe tokenizer to {out_path}" in out


def test_tokenize_compare_prints_one_row_per_kind(corpus_file, tmp_path, capsys):
    kinds = ["char", "byte", "bpe", "wordpiece", "unigram"]
    assert main(["tokenize", str(corpus_file), "--compare", ",".join(kinds), "--vocab-size",
                 "300", "-o", str(tmp_path / "toks"), "--whole"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert list(rows) == kinds
    assert rows["byte"][1] == "263" and rows["byte"][4] == "1.000"  # one byte per token
    assert rows["char"][3] == "1.000"  # one character per token on seen text
    assert all(rows[k][5] == "0.00%" for k in kinds)  # measured on the training text
    assert float(rows["bpe"][3]) > 1.5
    assert sorted(p.name for p in (tmp_path / "toks").iterdir()) == sorted(
        f"{k}.json" for k in kinds)
    assert Tokenizer.load(tmp_path / "toks" / "unigram.json").kind == "unigram"


def test_tokenize_reads_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TEXT.encode("utf-16"))))
    assert main(["tokenize", "-", "--kind", "char"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("standard input:") and "utf_16" in out.replace("-", "_").lower()
    assert list(_rows(out)) == ["char"]


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "sentencepiece"], "unknown tokenizer kind 'sentencepiece'"),
    (["--compare", "bpe,nope"], "unknown tokenizer kind 'nope'"),
    (["--kind", "bpe", "--vocab-size", "50"], "vocab_size=50 is too small"),
    (["--kind", "byte", "--vocab-size", "300"], "exactly 263 tokens"),
])
def test_tokenize_bad_options_exit_2_with_one_line(corpus_file, capsys, args, message):
    assert main(["tokenize", str(corpus_file), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lmcore: error: ") and message in err


def test_tokenize_missing_and_empty_files_exit_2(tmp_path, capsys):
    assert main(["tokenize", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert main(["tokenize", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty" in err


def test_tokenize_console_entry_point(corpus_file):
    """The real process: a table on stdout and exit 0; a bad kind is one stderr line, exit 2."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lmcore", "tokenize", str(corpus_file)]
    ok = subprocess.run(cmd + ["--kind", "byte"], capture_output=True, text=True, env=env,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "| byte " in ok.stdout
    bad = subprocess.run(cmd + ["--kind", "nope"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "lmcore: error: unknown tokenizer kind 'nope'; choose from char, byte, word, bpe, "
        "wordpiece, unigram"]
