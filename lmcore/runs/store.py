"""Every training run, recorded in SQLite under `LMCORE_HOME` so it can be found again.

A run row holds its config, corpus fingerprint, tokenizer, final numbers, checkpoint path and
status ('running', 'done', 'stopped', 'failed'); its metric history lives in a second table,
one row per (series, step). A run's process writes its pid and a heartbeat: a run still marked
'running' whose process is gone (or silent for `stale_s`) is marked 'failed (process died)' the
next time anyone reads the store, so no run stays 'running' forever.

Each run carries a `session` so a hosted app can show every visitor only their own runs.
Connections are opened per call (safe from any thread); WAL mode lets readers and a writer
work at once.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from lmcore.settings import get_settings

STATUSES = ("running", "done", "stopped", "failed")
DIED = "process died"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    session TEXT,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    heartbeat REAL NOT NULL,
    pid INTEGER,
    host TEXT,
    proc_started REAL,
    config TEXT NOT NULL,
    corpus_name TEXT,
    corpus_fingerprint TEXT,
    tokenizer TEXT,
    final TEXT NOT NULL DEFAULT '{}',
    checkpoint TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    series TEXT NOT NULL,
    step INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, series, step);
CREATE INDEX IF NOT EXISTS runs_session ON runs(session, created);
"""


class RunStoreError(ValueError):
    """The run store cannot be opened where it is asked for; the message says what to change."""


@dataclass
class Run:
    """One recorded run (what `RunStore.get` and `RunStore.list` return)."""

    id: str
    name: str
    session: str | None
    status: str
    created: float
    updated: float
    config: dict[str, Any]
    corpus_name: str | None = None
    corpus_fingerprint: str | None = None
    tokenizer: str | None = None
    final: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    error: str | None = None
    pid: int | None = None
    heartbeat: float = 0.0

    @property
    def display_status(self) -> str:
        """'failed (process died)' for a run whose process vanished, else the status."""
        if self.status == "failed" and self.error == DIED:
            return f"failed ({DIED})"
        return self.status

    def row(self) -> dict[str, Any]:
        """A flat dict for tables: id, name, status, when, corpus, tokenizer, final numbers."""
        d = {"id": self.id, "name": self.name, "status": self.display_status,
             "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created)),
             "corpus": self.corpus_name, "tokenizer": self.tokenizer}
        for k, v in self.final.items():
            if isinstance(v, int | float | str) or v is None:
                d[k] = v
        return d


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None, tuples lists, unknown objects strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(_clean(value), allow_nan=False)


_SCHEMA_LOCK = threading.Lock()  # one schema set-up at a time in this process


class RunStore:
    """The run database at `path` (default `$LMCORE_HOME/runs.sqlite`)."""

    def __init__(self, path: str | Path | None = None, stale_s: float = 600.0):
        if path is None:
            path = Path(get_settings().home).expanduser() / "runs.sqlite"
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError, PermissionError) as exc:
            raise RunStoreError(
                f"cannot keep the run store in {self.path.parent}: "
                f"{'permission denied' if isinstance(exc, PermissionError) else 'a file is in the way'}"
                " (set LMCORE_HOME to a folder you can write)") from None
        if self.path.is_dir():
            raise RunStoreError(f"{self.path} is a folder, not a run database (set LMCORE_HOME "
                                "to another folder)")
        self.stale_s = stale_s
        self._create_schema()

    def _create_schema(self, wait_s: float = 30.0) -> None:
        """WAL mode and the tables, once, however many threads or processes open it together.

        Switching a new database to WAL takes an exclusive lock, and SQLite answers "database
        is locked" at once (its busy timeout does not cover it) when another connection is
        doing the same, e.g. two jobs of one page opening a fresh store: retry briefly.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with _SCHEMA_LOCK, self._db() as con:
                    if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        con.execute("PRAGMA journal_mode=WAL")
                    con.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as con:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA foreign_keys=ON")
            with con:  # one transaction: commit or roll back
                yield con

    # --- writing -------------------------------------------------------------------------
    def create(self, name: str, config: dict[str, Any], *, corpus_name: str | None = None,
               corpus_fingerprint: str | None = None, tokenizer: str | None = None,
               session: str | None = None, checkpoint: str | None = None,
               pid: int | None = None) -> str:
        """Record a new run in status 'running' owned by this process; return its id."""
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        pid = os.getpid() if pid is None else pid
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            started = None
        with self._db() as con:
            con.execute(
                "INSERT INTO runs (id, name, session, status, created, updated, heartbeat, pid,"
                " host, proc_started, config, corpus_name, corpus_fingerprint, tokenizer,"
                " checkpoint) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, name, session, now, now, now, pid, socket.gethostname(), started,
                 _dumps(config), corpus_name, corpus_fingerprint, tokenizer, checkpoint))
        return run_id

    def log(self, run_id: str, series: str, step: int, **values: Any) -> None:
        """Append one metric point (and beat the heart)."""
        self.log_many(run_id, [(series, step, values)])

    def log_many(self, run_id: str, points: Iterable[tuple[str, int, dict[str, Any]]]) -> None:
        """Append many (series, step, values) points in one transaction."""
        rows = [(run_id, s, int(step), _dumps(v)) for s, step, v in points]
        now = time.time()
        with self._db() as con:
            if rows:
                con.executemany("INSERT INTO metrics (run_id, series, step, data) "
                                "VALUES (?, ?, ?, ?)", rows)
            con.execute("UPDATE runs SET heartbeat=?, updated=? WHERE id=?", (now, now, run_id))

    def heartbeat(self, run_id: str) -> None:
        self.log_many(run_id, [])

    def finish(self, run_id: str, status: str, final: dict[str, Any] | None = None,
               checkpoint: str | None = None, error: str | None = None) -> None:
        """Mark a run done, stopped or failed with its final numbers."""
        if status not in STATUSES[1:]:
            raise ValueError(f"a finished run's status is one of {STATUSES[1:]}, got {status!r}")
        now = time.time()
        with self._db() as con:
            cur = con.execute(
                "UPDATE runs SET status=?, final=?, checkpoint=COALESCE(?, checkpoint),"
                " error=?, updated=?, heartbeat=? WHERE id=?",
                (status, _dumps(final or {}), checkpoint, error, now, now, run_id))
            if cur.rowcount == 0:
                raise KeyError(f"no run {run_id!r}")

    def update(self, run_id: str, *, checkpoint: str | None = None,
               final: dict[str, Any] | None = None) -> None:
        """Set the checkpoint path or final numbers of a run after the fact."""
        with self._db() as con:
            if checkpoint is not None:
                con.execute("UPDATE runs SET checkpoint=? WHERE id=?", (checkpoint, run_id))
            if final is not None:
                con.execute("UPDATE runs SET final=? WHERE id=?", (_dumps(final), run_id))

    def delete(self, run_id: str, session: str | None = None,
               remove_model: bool = False) -> bool:
        """Delete a run and its metrics; True if it existed (and belonged to `session`).

        With `remove_model`, the run's checkpoint folder goes too, but only when it lies
        under `$LMCORE_HOME/models` (where lmcore put it); a folder chosen elsewhere (`--out`)
        is never touched.
        """
        with self._db() as con:
            sql, args = "DELETE FROM runs WHERE id=?", [run_id]
            if session is not None:
                sql += " AND session=?"
                args.append(session)
            row = con.execute("SELECT checkpoint FROM runs WHERE id=?"
                              + (" AND session=?" if session is not None else ""),
                              args).fetchone()
            con.execute("DELETE FROM metrics WHERE run_id IN (SELECT id FROM runs WHERE id=?"
                        + (" AND session=?" if session is not None else "") + ")", args)
            deleted = con.execute(sql, args).rowcount > 0
            others = [r["checkpoint"] for r in con.execute(
                "SELECT checkpoint FROM runs WHERE checkpoint IS NOT NULL")]
        if deleted and remove_model and row is not None and row["checkpoint"]:
            folder = managed_model_dir(row["checkpoint"])
            shared = folder is not None and any(managed_model_dir(c) == folder for c in others)
            if folder is not None and not shared:  # a resumed run may share the folder
                shutil.rmtree(folder, ignore_errors=True)
        return deleted

    # --- crash recovery ------------------------------------------------------------------
    def recover(self) -> int:
        """Mark runs whose process died as failed; return how many were fixed."""
        host = socket.gethostname()
        now = time.time()
        dead = []
        with self._db() as con:
            for r in con.execute("SELECT id, pid, host, proc_started, heartbeat FROM runs "
                                 "WHERE status='running'"):
                if now - r["heartbeat"] > self.stale_s:
                    dead.append(r["id"])
                elif r["host"] == host and not _alive(r["pid"], r["proc_started"]):
                    dead.append(r["id"])
            for run_id in dead:
                con.execute("UPDATE runs SET status='failed', error=?, updated=? WHERE id=? "
                            "AND status='running'", (DIED, now, run_id))
        return len(dead)

    # --- reading -------------------------------------------------------------------------
    def get(self, run_id: str, session: str | None = None) -> Run:
        """One run by id (a unique prefix is enough); KeyError when there is none.

        The id is plain characters: `_` and `%` match only themselves (a SQL LIKE pattern
        here once let `runs delete _` delete whichever run there was).
        """
        if not run_id:
            raise KeyError("no run id given")
        self.recover()
        sql = "SELECT * FROM runs WHERE substr(id, 1, ?) = ?"
        args: list[Any] = [len(run_id), run_id]
        if session is not None:
            sql += " AND session=?"
            args.append(session)
        with self._db() as con:
            rows = con.execute(sql, args).fetchall()
        exact = [r for r in rows if r["id"] == run_id]
        if exact:
            rows = exact
        if not rows:
            raise KeyError(f"no run {run_id!r}")
        if len(rows) > 1:
            raise KeyError(f"{run_id!r} matches {len(rows)} runs; give more of the id")
        return _run(rows[0])

    def list(self, session: str | None = None, limit: int | None = None) -> list[Run]:
        """Runs newest first; only `session`'s runs when a session is given."""
        self.recover()
        sql, args = "SELECT * FROM runs", []
        if session is not None:
            sql += " WHERE session=?"
            args.append(session)
        sql += " ORDER BY created DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._db() as con:
            return [_run(r) for r in con.execute(sql, args)]

    def metrics(self, run_id: str) -> dict[str, dict[str, list]]:
        """A run's history as {series: {'step': [...], field: [...]}} (columns aligned)."""
        out: dict[str, dict[str, list]] = {}
        with self._db() as con:
            rows = con.execute("SELECT series, step, data FROM metrics WHERE run_id=? "
                               "ORDER BY rowid", (run_id,)).fetchall()
        for r in rows:
            cols = out.setdefault(r["series"], {"step": []})
            n = len(cols["step"])
            values = json.loads(r["data"])
            for k in values:
                if k not in cols:
                    cols[k] = [None] * n
            cols["step"].append(r["step"])
            for k, col in cols.items():
                if k != "step":
                    col.append(values.get(k))
        return out

    def compare(self, run_ids: Iterable[str], session: str | None = None) -> list[dict]:
        """One flat row per run: identity, key config values and final numbers."""
        rows = []
        for rid in run_ids:
            run = self.get(rid, session)
            row = run.row()
            for k, v in run.config.items():
                if isinstance(v, int | float | str | bool) or v is None:
                    row.setdefault(f"config.{k}", v)
            rows.append(row)
        return rows

    # --- export --------------------------------------------------------------------------
    def export_json(self, run_id: str, session: str | None = None) -> str:
        """The whole run (fields + metric history) as JSON."""
        run = self.get(run_id, session)
        d = asdict(run)
        d["display_status"] = run.display_status
        d["metrics"] = self.metrics(run.id)
        return json.dumps(_clean(d), indent=1, allow_nan=False)

    def export_csv(self, run_id: str, session: str | None = None) -> str:
        """The metric history as long CSV: series, step, then one column per field."""
        run = self.get(run_id, session)
        metrics = self.metrics(run.id)
        names: list[str] = []
        for cols in metrics.values():
            names += [k for k in cols if k != "step" and k not in names]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["run_id", "series", "step", *names])
        for series, cols in metrics.items():
            for i, step in enumerate(cols["step"]):
                w.writerow([run.id, series, step,
                            *[_cell(cols.get(k, [None] * (i + 1))[i]) for k in names]])
        return buf.getvalue()

    def export_runs_json(self, session: str | None = None) -> str:
        """Every run (fields + metric history, as `export_json`) as one JSON list."""
        out = []
        for run in self.list(session):
            d = asdict(run)
            d["display_status"] = run.display_status
            d["metrics"] = self.metrics(run.id)
            out.append(d)
        return json.dumps(_clean(out), indent=1, allow_nan=False)

    def export_runs_csv(self, session: str | None = None) -> str:
        """The run list (one row per run, final numbers as columns) as CSV."""
        rows = [r.row() for r in self.list(session)]
        names: list[str] = []
        for r in rows:
            names += [k for k in r if k not in names]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
        return buf.getvalue()


def models_root() -> Path:
    """`$LMCORE_HOME/models`: a trained run's model is saved in `models_root() / run_id`."""
    return Path(get_settings().home).expanduser() / "models"


def managed_model_dir(checkpoint: str | Path) -> Path | None:
    """`checkpoint` resolved, if it is a folder strictly inside `$LMCORE_HOME/models`, else None.

    Symlinks and `..` are resolved first, so a recorded path can never lead outside.
    """
    root = models_root().resolve()
    path = Path(checkpoint).expanduser()
    if path.is_symlink():
        return None
    target = path.resolve()
    if target == root or not target.is_relative_to(root) or not target.is_dir():
        return None
    return target


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v)
    return "" if v is None else v


def _alive(pid: int | None, started: float | None) -> bool:
    """Is process `pid` (created at `started`) still running on this host?"""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False  # the pid was reused by another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _run(r: sqlite3.Row) -> Run:
    return Run(id=r["id"], name=r["name"], session=r["session"], status=r["status"],
               created=r["created"], updated=r["updated"], config=json.loads(r["config"]),
               corpus_name=r["corpus_name"], corpus_fingerprint=r["corpus_fingerprint"],
               tokenizer=r["tokenizer"], final=json.loads(r["final"] or "{}"),
               checkpoint=r["checkpoint"], error=r["error"], pid=r["pid"],
               heartbeat=r["heartbeat"])
