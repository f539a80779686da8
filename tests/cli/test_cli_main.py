"""The `lmcore` entry point: one readable line for any failure, quiet when a pipe closes."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from lmcore import cli
from lmcore.cli import main


class _BrokenCommand:
    """A parser whose command fails in a way no lmcore code expects."""

    def __init__(self, command=None):
        pass

    def parse_args(self, argv):
        def boom(args):
            raise RuntimeError("the disk caught fire")

        return argparse.Namespace(func=boom)


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    monkeypatch.delenv("LMCORE_DEBUG", raising=False)
    monkeypatch.setattr(cli, "build_parser", _BrokenCommand)
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lmcore: internal error (RuntimeError: the disk caught fire)")
    assert "LMCORE_DEBUG=1" in err and "Traceback" not in err

    monkeypatch.setenv("LMCORE_DEBUG", "1")  # a developer asks for the traceback
    with pytest.raises(RuntimeError, match="disk caught fire"):
        main([])


def test_a_closed_pipe_ends_quietly(tmp_path):
    f = tmp_path / "long.txt"
    f.write_text("A sentence that goes on. " * 4000, encoding="utf-8")
    cmd = (f"{sys.executable} -m lmcore longtext chunk {f} --size 32 --overlap 4 | head -n 1")
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.startswith("| index |")
    assert out.stderr == "", out.stderr  # no BrokenPipeError traceback
    assert out.returncode == 141  # 128 + SIGPIPE, as a shell tool reports it


@pytest.mark.parametrize("command", [["corpus", "info"], ["tokenize"], ["ngram", "train"],
                                     ["longtext", "chunk"], ["compress", "--model", "m"]])
def test_an_endless_file_is_refused_after_reading_just_past_the_limit(command, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("LMCORE_UPLOAD_MB", "1")
    assert main([*command, "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over the upload limit of 1 MB" in err


class _Stdin:
    def __init__(self, stream):
        self.buffer = stream


def test_endless_standard_input_is_refused_after_reading_just_past_the_limit(monkeypatch,
                                                                            capsys):
    import io

    class Yes(io.RawIOBase):
        given = 0

        def readable(self):
            return True

        def read(self, n=-1):
            assert n >= 0
            Yes.given += n
            return b"y" * n

    monkeypatch.setenv("LMCORE_MAX_CHARS", "5000")
    monkeypatch.setattr(sys, "stdin", _Stdin(Yes()))
    assert main(["corpus", "info", "-"]) == 2
    err = capsys.readouterr().err
    assert "LMCORE_MAX_CHARS" in err and err.count("\n") == 1
    assert Yes.given <= 4 * 5000 + 4 + 1


def test_read_input_names_what_is_wrong(tmp_path):
    with pytest.raises(cli.CLIError, match="no such file"):
        cli.read_input(str(tmp_path / "nope.txt"))
    with pytest.raises(cli.CLIError, match="is a folder"):
        cli.read_input(str(tmp_path))
    with pytest.raises(cli.CLIError, match="empty one"):
        cli.read_input("")
    (tmp_path / "a.txt").write_bytes(b"abc")
    assert cli.read_input(str(tmp_path / "a.txt")) == (b"abc", "a.txt")
