"""`lmcore corpus info` and `lmcore corpus builtin`, run in-process through the CLI entry point."""

from __future__ import annotations

import gzip
import json

from lmcore.cli import main
from lmcore.data.builtin import PYDOC_NAME, pydoc_corpus


def test_info_reports_encoding_repairs_and_counts(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_bytes("中文和 English 混合\r\n第二行\r\n".encode("gbk"))
    assert main(["corpus", "info", str(f)]) == 0
    out = capsys.readouterr().out
    assert "notes.txt" in out and "gbk" in out
    assert "converted 2 line endings (CRLF) to LF" in out
    assert "characters   19" in out and "lines        2" in out


def test_info_json(tmp_path, capsys):
    f = tmp_path / "moji.txt"
    f.write_bytes("déjà vu — naïve".encode().decode("cp1252").encode())
    assert main(["corpus", "info", str(f), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["encoding"] == "utf-8" and d["chars"] == 15 and d["lines"] == 1
    assert any("mojibake" in r for r in d["repairs"])
    assert d["file_bytes"] == f.stat().st_size
    assert sum(d["split_chars"].values()) == d["chars"]
    assert len(d["fingerprint"]) == 16


def test_bad_files_exit_2_with_one_line(tmp_path, capsys):
    gz = tmp_path / "a.txt.gz"
    gz.write_bytes(gzip.compress(b"hello"))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for path, needle in ((gz, "decompress it first"), (empty, "empty"),
                         (tmp_path / "missing.txt", "no such file"), (tmp_path, "folder")):
        assert main(["corpus", "info", str(path)]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
        assert err.count("\n") == 1


def test_over_limit_file_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LMCORE_UPLOAD_MB", "1")
    f = tmp_path / "big.txt"
    f.write_bytes(b"a" * (1024 * 1024 + 10))
    assert main(["corpus", "info", str(f)]) == 2
    assert "LMCORE_UPLOAD_MB" in capsys.readouterr().err


def test_builtin_list_and_dump(capsys):
    assert main(["corpus", "builtin"]) == 0
    out = capsys.readouterr().out
    assert f"1. {PYDOC_NAME}" in out and "bits/char" in out
    assert main(["corpus", "builtin", "--dump", "pydoc"]) == 0
    assert capsys.readouterr().out == pydoc_corpus().text
    assert main(["corpus", "builtin", "--dump", "Markov"]) == 2
    assert "matches several" in capsys.readouterr().err
