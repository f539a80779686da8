"""`lmcore runs delete`: exact ids or a prefix naming one run, shown and confirmed first."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lmcore.cli import main
from lmcore.runs.store import RunStore
from lmcore.settings import get_settings


def _saved_run() -> tuple[str, Path]:
    """A finished run whose model folder lies under $LMCORE_HOME/models."""
    store = RunStore()
    rid = store.create("tiny", {})
    folder = Path(get_settings().home) / "models" / rid
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x")
    store.finish(rid, "done", {}, checkpoint=str(folder))
    return rid, folder


class _Tty:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("pattern", ["_", "%", "%%", "_%", "*", "?", "[0-9]*"])
def test_wildcards_delete_nothing(pattern, capsys):
    rid, folder = _saved_run()
    assert main(["runs", "delete", pattern, "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no run {pattern!r}" in err
    assert RunStore().get(rid).id == rid and folder.is_dir()


def test_an_empty_id_deletes_nothing(capsys):
    rid, folder = _saved_run()
    assert main(["runs", "delete", ""]) == 2
    assert "no run id" in capsys.readouterr().err
    assert folder.is_dir() and RunStore().get(rid)


def test_a_prefix_is_shown_and_refused_without_a_terminal_or_yes(capsys, monkeypatch):
    rid, folder = _saved_run()
    monkeypatch.setattr(sys, "stdin", _Tty(False))
    assert main(["runs", "delete", rid[:8]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"prefix of run {rid} (tiny, done" in err and "--yes" in err
    assert folder.is_dir() and RunStore().get(rid)
    assert main(["runs", "delete", rid[:8], "--yes"]) == 0
    assert f"deleted run {rid}" in capsys.readouterr().out and not folder.exists()


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("", False), ("no", False)])
def test_a_prefix_asks_at_a_terminal(answer, deleted, capsys, monkeypatch):
    rid, folder = _saved_run()
    monkeypatch.setattr(sys, "stdin", _Tty(True))
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    assert main(["runs", "delete", rid[:10]]) == 0
    out = capsys.readouterr().out
    assert f"names run {rid}" in out
    assert folder.exists() is not deleted
    assert (rid in [r.id for r in RunStore().list()]) is not deleted


def test_an_exact_id_deletes_without_asking(capsys, monkeypatch):
    rid, folder = _saved_run()
    monkeypatch.setattr(sys, "stdin", _Tty(False))
    assert main(["runs", "delete", rid]) == 0
    assert not folder.exists() and RunStore().list() == []
