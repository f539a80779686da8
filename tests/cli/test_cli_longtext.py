"""`lmcore longtext ...`: chunk offsets, score table, summary with ROUGE, one-line errors."""

from __future__ import annotations

import json

import pytest

from lmcore.cli import main

TEXT = ("Long texts do not fit into a model's context. The sliding window gives every token "
        "some context. 长文本放不进上下文。滑动窗口给每个字一些上下文。\n\n") * 30


@pytest.fixture
def doc(tmp_path):
    p = tmp_path / "doc.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def test_chunk_json_offsets_map_back(doc, capsys):
    assert main(["longtext", "chunk", str(doc), "--size", "120", "--overlap", "20",
                 "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) > 10
    assert all(TEXT[r["start"]:r["end"]] == r["text"] for r in rows)
    assert all(r["end"] - r["start"] <= 120 for r in rows)


def test_score_prints_one_row_per_strategy(doc, capsys):
    assert main(["longtext", "score", str(doc), "--ngram", "3", "--window", "32",
                 "--stride", "8", "--strategy", "truncation,sliding"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| strategy | attention | window | stride |")
    trunc, sliding = (line.strip("|").split("|") for line in lines[1:])
    assert trunc[0].strip() == "truncation" and trunc[3].strip() == "-"
    assert int(trunc[5]) == 32
    assert sliding[0].strip() == "sliding" and int(sliding[6]) == len(TEXT)


def test_summarize_with_reference_prints_rouge(doc, tmp_path, capsys):
    ref = tmp_path / "ref.txt"
    ref.write_text("滑动窗口给每个字一些上下文。", encoding="utf-8")
    assert main(["longtext", "summarize", str(doc), "--budget", "80", "--chunk-size", "400",
                 "--reference", str(ref)]) == 0
    out = capsys.readouterr()
    summary = out.out.split("\n\n")[0].strip()
    assert 0 < len(summary) <= 80
    assert "| rouge1 |" in out.out and "no model given" in out.err


@pytest.mark.parametrize("argv, message", [
    (["score", "{doc}"], "choose a model"),
    (["score", "{doc}", "--ngram", "2"], "give --window"),
    (["score", "{doc}", "--ngram", "2", "--window", "8", "--strategy", "best"],
     "unknown strategy"),
    (["chunk", "{doc}", "--size", "10", "--overlap", "10"], "overlap"),
    (["chunk", "{doc}", "--unit", "tokens"], "--tokenizer"),
    (["summarize", "{doc}", "--llm-url", "http://127.0.0.1:9"], "--llm-model"),
    (["continue", "{doc}", "--ngram", "2", "--window", "8", "-n", "8"], "shorter than"),
    (["chunk", "/nonexistent/file.txt"], "no such file"),
])
def test_errors_are_one_line_with_exit_2(doc, capsys, argv, message):
    argv = [a.replace("{doc}", str(doc)) for a in argv]
    assert main(["longtext", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
