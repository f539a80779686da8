"""Background jobs: long work runs in a thread per job, never in the script thread.

A page submits `fn(ctx)` to its session's `JobRegistry`; the thread reports through the
`JobContext` (progress, metric series, values) into lock-protected state that the page polls
from an `@st.fragment(run_every=...)`. Threads never call streamlit. A process-wide cap
(`LMCORE_MAX_JOBS`) bounds how many jobs run at once; extra jobs wait in status 'waiting' and
say why. `LMCORE_MAX_JOB_SECONDS` stops a job that runs too long, naming the limit.

Only `registry()`, `job_panel()` and `live_chart()` use streamlit; `JobRegistry` is plain
Python and is tested without a running app.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import streamlit as st

from lmcore.settings import LimitError, get_settings

log = logging.getLogger("lmcore.jobs")

TERMINAL = ("done", "stopped", "failed")
_ids = itertools.count(1)


class Slots:
    """A counting cap on concurrently running jobs; the limit is re-read on every acquire."""

    def __init__(self, limit: int | Callable[[], int] | None = None):
        self._limit = limit
        self._running = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        if self._limit is None:
            return int(get_settings().max_jobs)
        return int(self._limit() if callable(self._limit) else self._limit)

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def acquire(self, stop: threading.Event) -> bool:
        """Block until a slot is free (True) or `stop` is set first (False)."""
        with self._cond:
            while self._running >= self.limit:
                if stop.is_set():
                    return False
                self._cond.wait(timeout=0.05)
            self._running += 1
            return True

    def release(self) -> None:
        with self._cond:
            self._running = max(0, self._running - 1)
            self._cond.notify_all()


_process_slots = Slots()  # shared by every session's registry in this process


class Job:
    """One background task: status, progress, ETA, metric series and a stop switch.

    `status` is 'waiting' (for a slot), 'running', then 'done', 'stopped' or 'failed'.
    All fields are read through properties guarded by one lock, so a page can poll safely.
    """

    def __init__(self, name: str):
        self.id = f"job-{next(_ids)}"
        self.name = name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._status = "waiting"
        self._progress = 0.0
        self._message = ""
        self._error: str | None = None
        self._result: Any = None
        self._series: dict[str, dict[str, list]] = {}
        self._values: dict[str, Any] = {}
        self._created = time.monotonic()
        self._started: float | None = None
        self._ended: float | None = None
        self._stop_reason: str | None = None
        self.thread: threading.Thread | None = None

    # --- read side (pages) -------------------------------------------------------------
    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def progress(self) -> float:
        with self._lock:
            return self._progress

    @property
    def message(self) -> str:
        with self._lock:
            return self._message

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    @property
    def result(self) -> Any:
        with self._lock:
            return self._result

    @property
    def stop_reason(self) -> str | None:
        """Why the job stopped: 'requested', or the limit that stopped it."""
        with self._lock:
            return self._stop_reason

    @property
    def done(self) -> bool:
        """True once the job reached a terminal status (done, stopped or failed)."""
        return self._finished.is_set()

    @property
    def active(self) -> bool:
        return not self._finished.is_set()

    @property
    def elapsed_s(self) -> float:
        """Seconds spent running (0 while waiting for a slot)."""
        with self._lock:
            if self._started is None:
                return 0.0
            return (self._ended or time.monotonic()) - self._started

    @property
    def eta_s(self) -> float | None:
        """Estimated seconds left, from progress so far; None until there is progress."""
        with self._lock:
            if self._status != "running" or self._started is None or self._progress <= 0:
                return None
            el = time.monotonic() - self._started
            return max(0.0, el * (1.0 - self._progress) / self._progress)

    def snapshot(self) -> dict[str, dict[str, list]]:
        """A copy of every metric series: {series: {field: [values...]}} (columns aligned)."""
        with self._lock:
            return {name: {k: list(v) for k, v in cols.items()}
                    for name, cols in self._series.items()}

    def values(self) -> dict[str, Any]:
        """A copy of the key/values set by the job with `ctx.set`."""
        with self._lock:
            return dict(self._values)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get(key, default)

    def stop(self, reason: str = "requested") -> None:
        """Ask the job to stop at its next check of `ctx.stop` (also cancels a waiting job)."""
        with self._lock:
            if self._stop_reason is None and not self._finished.is_set():
                self._stop_reason = reason
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished; True if it did within `timeout` seconds."""
        return self._finished.wait(timeout)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {self.name!r}, status={self.status!r})"

    # --- write side (the worker thread) -----------------------------------------------
    def _set(self, **fields: Any) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(self, f"_{k}", v)


class JobContext:
    """What a job function gets: a stop Event and lock-protected ways to report."""

    def __init__(self, job: Job):
        self._job = job
        self.stop: threading.Event = job._stop

    @property
    def job_id(self) -> str:
        return self._job.id

    def progress(self, frac: float, message: str = "") -> None:
        """Report progress in [0, 1] with an optional message (drives the bar and ETA)."""
        frac = min(1.0, max(0.0, float(frac)))
        with self._job._lock:
            self._job._progress = frac
            if message:
                self._job._message = message

    def log(self, series: str, **values: Any) -> None:
        """Append one point to metric series `series`; missing fields are padded with None."""
        job = self._job
        with job._lock:
            cols = job._series.setdefault(series, {})
            n = len(next(iter(cols.values()))) if cols else 0
            for k in values:
                if k not in cols:
                    cols[k] = [None] * n
            for k, col in cols.items():
                col.append(values.get(k))

    def set(self, key: str, value: Any) -> None:
        """Publish one value (e.g. the latest sample text) for the page to read."""
        with self._job._lock:
            self._job._values[key] = value


class JobRegistry:
    """The jobs of one session; submits threads and enforces the process-wide limits."""

    def __init__(self, slots: Slots | None = None, max_seconds: float | None = None):
        self._slots = slots or _process_slots
        self._max_seconds = max_seconds
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, name: str, fn: Callable[[JobContext], Any]) -> Job:
        """Start `fn(ctx)` in a background thread (after waiting for a slot); return its Job."""
        job = Job(name)
        with self._lock:
            self._jobs[job.id] = job
        job._set(message="waiting for a free job slot")
        t = threading.Thread(target=self._run, args=(job, fn), name=f"lmcore-{job.id}",
                             daemon=True)
        job.thread = t
        t.start()
        return job

    def _limit_seconds(self) -> float:
        return float(self._max_seconds or get_settings().max_job_seconds)

    def _run(self, job: Job, fn: Callable[[JobContext], Any]) -> None:
        ctx = JobContext(job)
        if not self._slots.acquire(job._stop):
            job._set(status="stopped", message="stopped before it started", ended=time.monotonic())
            job._finished.set()
            return
        limit = self._limit_seconds()
        timer = threading.Timer(limit, self._time_limit, args=(job, limit))
        timer.daemon = True
        try:
            job._set(status="running", started=time.monotonic(), message="")
            timer.start()
            result = fn(ctx)
            status = "stopped" if job._stop.is_set() else "done"
            with job._lock:
                job._result = result
                job._status = status
                if status == "done":
                    job._progress = 1.0
                else:
                    job._message = self._stopped_message(job)
        except Exception as exc:  # becomes a readable error on the page, never a traceback
            if job._stop.is_set():  # a cooperative loop gave up because it was asked to stop
                log.info("job %s stopped (%s: %s)", job.name, type(exc).__name__, exc)
                with job._lock:
                    job._status = "stopped"
                    job._message = self._stopped_message(job)
            else:
                log.error("job %s failed:\n%s", job.name,
                          "".join(traceback.format_exception(exc)))
                if isinstance(exc, LimitError | ValueError):
                    msg = str(exc)
                else:
                    msg = f"{type(exc).__name__}: {exc}"
                job._set(status="failed", error=msg)
        finally:
            timer.cancel()
            job._set(ended=time.monotonic())
            self._slots.release()
            job._finished.set()

    @staticmethod
    def _stopped_message(job: Job) -> str:
        """The limit that stopped `job`, or 'stopped by request' (call under the job's lock)."""
        reason = job._stop_reason
        return reason if reason and reason != "requested" else "stopped by request"

    @staticmethod
    def _time_limit(job: Job, limit: float) -> None:
        job.stop(f"stopped: reached the time limit max_job_seconds={limit:g} "
                 "(set LMCORE_MAX_JOB_SECONDS to raise it)")

    def jobs(self) -> list[Job]:
        """Every job of this session, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def latest(self, name: str) -> Job | None:
        """The most recently submitted job called `name` (how a page finds its job again)."""
        with self._lock:
            for job in reversed(list(self._jobs.values())):
                if job.name == name:
                    return job
        return None

    def forget(self, job_id: str) -> None:
        """Drop a finished job from the list (a running one is stopped first)."""
        job = self.get(job_id)
        if job is not None:
            job.stop()
            with self._lock:
                self._jobs.pop(job_id, None)

    def stop_all(self, wait: float = 0.0) -> None:
        """Stop every job of this session (a closed tab); optionally wait for the threads."""
        jobs = self.jobs()
        for job in jobs:
            job.stop()
        deadline = time.monotonic() + wait
        for job in jobs:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            job.wait(left)

    def waiting_reason(self) -> str:
        """A sentence for the page when a job waits for a slot."""
        return (f"Waiting for a free job slot: {self._slots.running} of {self._slots.limit} "
                "jobs are running on this server (LMCORE_MAX_JOBS).")


# --- streamlit side (pages only) -------------------------------------------------------

def _release(reg: JobRegistry) -> None:
    reg.stop_all()


@st.cache_resource(scope="session", on_release=_release, show_spinner=False)
def registry() -> JobRegistry:
    """This session's registry; closing the tab releases it and stops its jobs."""
    return JobRegistry()


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def job_panel(job: Job, key: str) -> None:
    """Draw a job's status, progress bar with ETA, error, and a Stop button (key-prefixed)."""
    status = job.status
    if status == "waiting":
        st.info(registry().waiting_reason() if not job.done else "Waiting.", icon="⏳")
        if st.button("Cancel", key=f"{key}.cancel"):
            job.stop()
        return
    if status == "running":
        eta = job.eta_s
        text = f"{job.message or job.name} · {100 * job.progress:.0f}%"
        text += f" · ETA {_fmt_seconds(eta)}" if eta is not None else ""
        text += f" · {_fmt_seconds(job.elapsed_s)} elapsed"
        st.progress(job.progress, text=text)
        if st.button("Stop", key=f"{key}.stop"):
            job.stop()
    elif status == "done":
        st.success(f"{job.name}: done in {_fmt_seconds(job.elapsed_s)}.")
    elif status == "stopped":
        st.warning(f"{job.name}: {job.message or 'stopped'} after "
                   f"{_fmt_seconds(job.elapsed_s)} ({100 * job.progress:.0f}% done).")
    elif status == "failed":
        st.error(f"{job.name} failed: {job.error}", icon="⚠️")


def live_chart(job: Job, build_figure: Callable[[dict[str, dict[str, list]]], Any], key: str,
               run_every: float = 0.5, panel: bool = True) -> None:
    """Redraw one plotly figure (fixed `key`) from `job.snapshot()` while the job runs.

    The fragment polls every `run_every` seconds only while the job is active; when the job
    ends it triggers one full rerun so the rest of the page sees the result.
    """
    was_active = job.active

    @st.fragment(run_every=run_every if was_active else None)
    def _draw() -> None:
        if panel:
            job_panel(job, key=f"{key}.panel")
        fig = build_figure(job.snapshot())
        if fig is not None:
            st.plotly_chart(fig, key=key)
        if was_active and job.done:
            st.rerun()

    _draw()
