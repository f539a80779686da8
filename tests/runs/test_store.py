"""The run store: round trips, sessions, crash recovery, export."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time

import pytest

from lmcore.runs.store import RunStore


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs.sqlite")


def _run(store, session="s1", **kw):
    return store.create("tiny", {"n_layer": 2, "lr": 3e-3, "betas": (0.9, 0.99)},
                        corpus_name="pydoc", corpus_fingerprint="abc123", tokenizer="char",
                        session=session, **kw)


def test_default_path_is_under_lmcore_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LMCORE_HOME", str(tmp_path / "home"))
    s = RunStore()
    assert s.path == tmp_path / "home" / "runs.sqlite" and s.path.exists()


def test_round_trip_config_metrics_final(store):
    rid = _run(store)
    store.log(rid, "train", 1, loss=3.5, lr=1e-3)
    store.log_many(rid, [("train", 2, {"loss": 3.0, "lr": 2e-3}),
                         ("eval", 2, {"valid_loss": 3.2, "bits_per_char": float("nan")})])
    store.finish(rid, "done", {"valid_loss": 3.2, "bits_per_char": 4.6}, checkpoint="/ck")
    run = store.get(rid)
    assert run.status == "done" and run.display_status == "done"
    assert run.config == {"n_layer": 2, "lr": 3e-3, "betas": [0.9, 0.99]}
    assert (run.corpus_fingerprint, run.tokenizer, run.checkpoint) == ("abc123", "char", "/ck")
    assert run.final == {"valid_loss": 3.2, "bits_per_char": 4.6}
    m = store.metrics(rid)
    assert m["train"] == {"step": [1, 2], "loss": [3.5, 3.0], "lr": [1e-3, 2e-3]}
    assert m["eval"] == {"step": [2], "valid_loss": [3.2], "bits_per_char": [None]}
    assert store.get(rid[:18]).id == rid  # a unique prefix finds it


def test_sessions_see_only_their_runs(store):
    a, b = _run(store, "alice"), _run(store, "bob")
    assert [r.id for r in store.list("alice")] == [a]
    assert {r.id for r in store.list()} == {a, b}
    with pytest.raises(KeyError):
        store.get(b, session="alice")
    assert not store.delete(b, session="alice")
    assert store.delete(b, session="bob")
    assert [r.id for r in store.list()] == [a]


def test_delete_removes_metrics(store):
    rid = _run(store)
    store.log(rid, "train", 1, loss=1.0)
    assert store.delete(rid)
    assert store.metrics(rid) == {}
    with pytest.raises(KeyError, match="no run"):
        store.get(rid)


def test_run_of_a_killed_process_shows_failed(store, tmp_path):
    code = ("import sys; from lmcore.runs.store import RunStore; "
            f"s = RunStore({str(store.path)!r}); print(s.create('x', {{}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(tmp_path), env=_env())
    rid = out.stdout.strip()
    run = store.get(rid)  # its process has exited without finishing the run
    assert run.status == "failed" and run.display_status == "failed (process died)"
    mine = _run(store)  # this process is alive: still running
    assert store.get(mine).status == "running"


def test_silent_run_is_marked_failed_after_stale_time(tmp_path):
    store = RunStore(tmp_path / "r.sqlite", stale_s=0.0)
    rid = _run(store)
    assert store.get(rid).display_status == "failed (process died)"


def test_exports(store):
    rid = _run(store)
    store.log(rid, "train", 1, loss=3.5)
    store.log(rid, "eval", 1, valid_loss=3.6)
    store.finish(rid, "stopped", {"valid_loss": 3.6})
    d = json.loads(store.export_json(rid))
    assert d["status"] == "stopped" and d["metrics"]["train"]["loss"] == [3.5]
    rows = list(csv.DictReader(io.StringIO(store.export_csv(rid))))
    assert [(r["series"], r["step"], r["loss"], r["valid_loss"]) for r in rows] == \
        [("train", "1", "3.5", ""), ("eval", "1", "", "3.6")]
    runs = list(csv.DictReader(io.StringIO(store.export_runs_csv())))
    assert runs[0]["id"] == rid and runs[0]["valid_loss"] == "3.6"
    cmp = store.compare([rid])
    assert cmp[0]["config.n_layer"] == 2 and cmp[0]["valid_loss"] == 3.6


def test_finish_rejects_unknown_status(store):
    rid = _run(store)
    with pytest.raises(ValueError, match="status"):
        store.finish(rid, "running")


def _env():
    import os
    from pathlib import Path

    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


def test_export_all_runs_as_json(store):
    a, b = _run(store, "alice"), _run(store, "bob")
    store.log(a, "train", 1, loss=2.5)
    store.finish(a, "done", {"valid_loss": 2.6})
    every = json.loads(store.export_runs_json())
    assert [d["id"] for d in every] == [r.id for r in store.list()] and len(every) == 2
    by_id = {d["id"]: d for d in every}
    assert by_id[a]["metrics"]["train"]["loss"] == [2.5] and by_id[a]["final"]["valid_loss"] == 2.6
    assert by_id[b]["display_status"] == "running" and by_id[b]["metrics"] == {}
    assert [d["id"] for d in json.loads(store.export_runs_json("bob"))] == [b]


def _model_folder(home, name):
    folder = home / "models" / name
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")  # what a visitor's text taught
    return folder


def test_delete_removes_the_model_lmcore_saved_but_nothing_outside(store, tmp_path,
                                                                   monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LMCORE_HOME", str(home))
    inside = _model_folder(home, "r1")
    outside = tmp_path / "mine"  # e.g. `lmcore train --out mine`
    outside.mkdir()
    (outside / "model.safetensors").write_text("x")
    sneaky = home / "models" / "link"
    sneaky.symlink_to(outside, target_is_directory=True)
    runs = {name: _run(store, checkpoint=str(ck)) for name, ck in [
        ("inside", inside), ("outside", outside), ("dotdot", home / "models" / ".." / ".."),
        ("root", home / "models"), ("link", sneaky)]}
    assert store.delete(runs["inside"], remove_model=True) and not inside.exists()
    for name in ("outside", "dotdot", "root", "link"):
        assert store.delete(runs[name], remove_model=True)
    assert (outside / "model.safetensors").exists() and (home / "models").is_dir()
    kept = _model_folder(home, "r2")
    assert store.delete(_run(store, checkpoint=str(kept))) and kept.exists()  # not asked to


def test_delete_keeps_a_model_folder_another_run_still_uses(store, tmp_path, monkeypatch):
    monkeypatch.setenv("LMCORE_HOME", str(tmp_path / "home"))
    shared = _model_folder(tmp_path / "home", "r1")
    first, resumed = _run(store, checkpoint=str(shared)), _run(store, checkpoint=str(shared))
    assert store.delete(first, remove_model=True) and shared.exists()
    assert store.delete(resumed, remove_model=True) and not shared.exists()


def test_delete_of_another_sessions_run_removes_nothing(store, tmp_path, monkeypatch):
    monkeypatch.setenv("LMCORE_HOME", str(tmp_path / "home"))
    folder = _model_folder(tmp_path / "home", "r1")
    rid = _run(store, session="bob", checkpoint=str(folder))
    assert not store.delete(rid, session="alice", remove_model=True)
    assert folder.exists() and store.get(rid).checkpoint == str(folder)


def _open_together(path, n: int) -> list[str]:
    """n threads open a fresh store at the same instant and record a run; their errors."""
    barrier, errors = threading.Barrier(n), []

    def go():
        barrier.wait()
        try:
            RunStore(path).create("x", {})
        except Exception as exc:  # what a job would have died of
            errors.append(repr(exc))

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_jobs_opening_a_fresh_store_together_all_succeed(tmp_path):
    """Two jobs of one page opened a new store at once and one died of 'database is locked'
    (switching to WAL is not covered by SQLite's busy timeout); 1 in ~30 trials failed."""
    for trial in range(200):
        path = tmp_path / f"t{trial}" / "runs.sqlite"
        assert _open_together(path, 8) == []
        assert len(RunStore(path).list()) == 8


def test_processes_opening_a_fresh_store_together_all_succeed(tmp_path):
    """The CLI and the app may open one new store at once: retried, never 'locked'."""
    code = ("import sys, time; from lmcore.runs.store import RunStore; "
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
            "RunStore(sys.argv[1]).create('x', {})")
    for trial in range(5):
        path = tmp_path / f"p{trial}" / "runs.sqlite"
        start = time.time() + 1.5  # every process past its imports by then
        procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(start)],
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        assert len(RunStore(path).list()) == 4


def test_ids_are_plain_characters_never_patterns(store):
    rid = _run(store)
    store.finish(rid, "done")
    for pattern in ("_", "%", "%%", "2%", "____", rid[:-1] + "_", "_" + rid[1:], "*", "?"):
        with pytest.raises(KeyError):
            store.get(pattern)
    with pytest.raises(KeyError, match="no run id"):
        store.get("")
    assert store.get(rid).id == rid and store.get(rid[:4]).id == rid
