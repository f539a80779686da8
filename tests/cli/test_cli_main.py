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
