"""Session expiry: which sessions the sweeper closes, and what closing a session deletes."""

from __future__ import annotations

from pathlib import Path

from lmcore.app.session_life import Sessions, delete_session_runs
from lmcore.runs.store import RunStore
from lmcore.settings import get_settings


def _connected(*sids: str):
    return lambda sid: sid in sids


def test_an_idle_open_tab_is_due_after_the_idle_time_only():
    s = Sessions()
    s.touch("a", "lab-a", now=100.0)
    s.touch("b", "lab-b", now=150.0)
    both = _connected("a", "b")
    assert s.due(now=159.0, idle_s=60, grace_s=30, connected=both) == []
    assert s.due(now=160.0, idle_s=60, grace_s=30, connected=both) == [
        ("a", "lab-a", "idle for 60 s")]
    assert "a" not in s and "b" in s  # a closed session is forgotten
    assert s.due(now=209.0, idle_s=60, grace_s=30, connected=both) == []
    assert [d[0] for d in s.due(now=210.0, idle_s=60, grace_s=30, connected=both)] == ["b"]


def test_a_page_run_restarts_the_idle_clock():
    s = Sessions()
    s.touch("a", "lab-a", now=0.0)
    s.touch("a", "lab-a", now=50.0)
    assert s.due(now=100.0, idle_s=60, grace_s=30, connected=_connected("a")) == []
    assert len(s.due(now=110.0, idle_s=60, grace_s=30, connected=_connected("a"))) == 1


def test_idle_expiry_off_keeps_open_tabs_forever():
    s = Sessions()
    s.touch("a", "lab-a", now=0.0)
    assert s.due(now=1e9, idle_s=0, grace_s=30, connected=_connected("a")) == []
    assert "a" in s


def test_a_closed_tab_is_due_after_the_reconnect_window_and_a_reconnect_resets_it():
    s = Sessions()
    s.touch("a", "lab-a", now=0.0)
    gone = _connected()
    assert s.due(now=10.0, idle_s=0, grace_s=30, connected=gone) == []  # gone since 10
    assert s.due(now=39.0, idle_s=0, grace_s=30, connected=gone) == []
    assert s.due(now=41.0, idle_s=0, grace_s=30, connected=_connected("a")) == []  # back
    assert s.due(now=50.0, idle_s=0, grace_s=30, connected=gone) == []  # gone since 50
    assert s.due(now=80.0, idle_s=0, grace_s=30, connected=gone) == [("a", "lab-a",
                                                                      "tab closed")]
    assert len(s) == 0


def test_closing_a_session_deletes_its_runs_and_checkpoints_only(tmp_path):
    store = RunStore()
    models = Path(get_settings().home) / "models"
    mine, theirs = [], []
    for owner, ids in (("lab-a", mine), ("lab-b", theirs)):
        for k in range(2):
            rid = store.create(f"run {k}", {"k": k}, corpus_name=f"{owner}.txt", session=owner)
            folder = models / rid
            folder.mkdir(parents=True)
            (folder / "model.safetensors").write_bytes(b"weights of " + owner.encode())
            store.update(rid, checkpoint=str(folder))
            ids.append(rid)
    assert delete_session_runs("lab-a") == 2
    assert [r.id for r in store.list(session="lab-a")] == []
    assert sorted(r.id for r in store.list(session="lab-b")) == sorted(theirs)
    assert not any((models / rid).exists() for rid in mine)
    assert all((models / rid / "model.safetensors").exists() for rid in theirs)
    assert delete_session_runs("lab-a") == 0


def test_an_expired_mark_is_taken_once():
    s = Sessions()
    assert not s.take_expired("a")
    s.expire("a")
    assert s.take_expired("a") and not s.take_expired("a")
