"""Background jobs: long work runs in a worker PROCESS per job, never in the server's process.

A page submits `fn` to its session's `JobRegistry`: a picklable callable taking `ctx` (a
module-level function, or `functools.partial` of one with plain arguments). The job runs in a
process forked from a forkserver that has already imported torch and lmcore, so it starts in
tens of milliseconds. It reports through `ctx` (progress, series points, values); the worker
batches those into plain event records and sends them over a pipe. In the server, one small
thread per job drains the pipe into lock-protected state that the page polls, and enforces the
limits:

- Stop asks (`ctx.stop` is set) and kills the process if it has not ended after a grace period;
- the time limit (`LMCORE_MAX_JOB_SECONDS`) asks the same way, so a cooperative job keeps what
  it finished, and kills after the grace period; a released session (closed or expired) kills
  at once;
- the memory cap (`LMCORE_MAX_JOB_MB`) kills a job whose resident memory, its children
  included, goes over it (a watchdog reading RSS, not RLIMIT_AS: torch reserves gigabytes of
  address space it never touches, so an address-space limit fails imports, not big jobs);
- a process-wide cap (`LMCORE_MAX_JOBS`) bounds how many jobs run at once; extra jobs wait.

Why processes: a training thread in the server process shared the GIL with every rerun of the
page watching it and ran several times slower (issue 12). Workers never import streamlit: only
`lmcore/app/job_view.py` does: pages take `registry`, `job_panel`, `live_chart`, `follow` and
`follow_all` from there (this module never imports it: no import circle).
"""

from __future__ import annotations

import functools
import io
import itertools
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from typing import Any

from lmcore.settings import LimitError, get_settings

log = logging.getLogger("lmcore.jobs")

TERMINAL = ("done", "stopped", "failed")
ENDED = "stopped: the session ended"
STOP_GRACE_S = 10.0  # seconds a job asked to stop may take to wind down before it is killed
FLUSH_S = 0.1  # a worker sends its events at most this often (and when it ends)
POLL_S = 0.1  # the server's job thread checks the limits this often
# Imported once by the forkserver, so that a job's process starts with them loaded.
PRELOAD = ["lmcore.app.jobs", "torch", "lmcore.models.transformer", "lmcore.train.trainer",
           "lmcore.data.tokenizers", "lmcore.data.corpus", "lmcore.runs.store"]
_ids = itertools.count(1)


# --- events --------------------------------------------------------------------------------
# A job's whole report is a list of plain tuples, the same in a worker and in-process:
#   ("progress", frac, message)   ("log", series, {field: value})   ("set", key, value)
#   ("result", value)             ("error", message)             ("started",)


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

    def acquire(self, stop: Any) -> bool:
        """Block until a slot is free (True) or `stop` is set first (False)."""
        with self._cond:
            while not stop.is_set():
                if self._running < self.limit:
                    self._running += 1
                    return True
                self._cond.wait(timeout=0.05)
            return False

    def release(self) -> None:
        with self._cond:
            self._running = max(0, self._running - 1)
            self._cond.notify_all()


_process_slots = Slots()  # shared by every session's registry in this process


def downsample(cols: dict[str, list], max_points: int | None) -> dict[str, list]:
    """Every 2**k-th point of aligned columns (and the last), at most about `max_points`.

    The stride is a power of two so the points kept stay the same as a series grows: a live
    chart does not shimmer, and its size stays bounded however long the job runs.
    """
    n = len(next(iter(cols.values()), []))
    if max_points is None or n <= max_points:
        return {k: list(v) for k, v in cols.items()}
    stride = 2 ** math.ceil(math.log2(n / max_points))
    idx = list(range(0, n, stride))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return {k: [v[i] for i in idx] for k, v in cols.items()}


class Job:
    """One background task: status, progress, ETA, metric series and a stop switch.

    `status` is 'waiting' (for a slot), 'running', then 'done', 'stopped' or 'failed'.
    All fields are read through properties guarded by one lock, so a page can poll safely.
    """

    def __init__(self, name: str, workdir: str | None = None, stop: Any = None,
                 ask: Any = None):
        self.id = f"job-{next(_ids)}"
        self.name = name
        self.workdir = workdir  # private temp folder of this job (files it hands back)
        self._lock = threading.Lock()
        self._stop = stop if stop is not None else threading.Event()  # the server's flag
        # what the job's own code sees as ctx.stop: set by a Stop or a limit (it stops and
        # saves), never by a kill, so a killed job does not start writing a checkpoint of
        # a session whose runs are being deleted; one event for a job run in this process
        self._ask = ask if ask is not None else self._stop
        self._kill = threading.Event()  # kill at once (a released session)
        self._finished = threading.Event()
        self._status = "waiting"
        self._progress = 0.0
        self._first: tuple[float, float] | None = None  # (time, progress) of the first report
        self._message = ""
        self._error: str | None = None
        self._result: Any = None
        self._series: dict[str, dict[str, list]] = {}
        self._values: dict[str, Any] = {}
        self._version = 0  # bumped by every change: a chart redraws only when it moved
        self._created = time.monotonic()
        self._started: float | None = None
        self._ended: float | None = None
        self._stop_reason: str | None = None
        self.pid: int | None = None  # the worker process (None in-process or before start)
        self.start_s: float | None = None  # seconds from submit to the worker running fn
        self.peak_rss_mb: float = 0.0  # the worker's largest resident memory seen
        self.thread: threading.Thread | None = None  # the server-side thread following it

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
    def version(self) -> int:
        """A counter that changes whenever anything the page shows changed."""
        with self._lock:
            return self._version

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
        """Estimated seconds left at the rate since the job's first progress report (its
        start-up, a process and its imports, is not work still to come: counted in, the
        first ETAs of a 40 s training read 28 min, then 1 min 44 s); from the whole elapsed
        time when one report is all there is. None while too little is done to tell."""
        with self._lock:
            p = self._progress
            if self._status != "running" or self._started is None or p <= 0:
                return None
            now = time.monotonic()
            if self._first is not None and p - self._first[1] >= 0.02:
                rate = (p - self._first[1]) / max(now - self._first[0], 1e-9)
                return max(0.0, (1.0 - p) / rate)
            if p < 0.05:
                return None
            return max(0.0, (now - self._started) * (1.0 - p) / p)

    def snapshot(self, max_points: int | None = None) -> dict[str, dict[str, list]]:
        """A copy of every metric series: {series: {field: [values...]}} (columns aligned),
        each thinned to about `max_points` points when given (see `downsample`)."""
        with self._lock:
            return {name: downsample(cols, max_points) for name, cols in self._series.items()}

    def values(self) -> dict[str, Any]:
        """A copy of the key/values set by the job with `ctx.set`."""
        with self._lock:
            return dict(self._values)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get(key, default)

    def stop(self, reason: str = "requested", kill: bool = False) -> None:
        """Ask the job to stop at its next check of `ctx.stop` (also cancels a waiting job);
        it is killed if it has not ended after the grace period, or at once with `kill`."""
        with self._lock:
            if self._stop_reason is None and not self._finished.is_set():
                self._stop_reason = reason
        if kill:
            self._kill.set()
        else:
            self._ask.set()
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (its events all read); True if within `timeout`."""
        return self._finished.wait(timeout)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {self.name!r}, status={self.status!r})"

    # --- write side (the server's job thread, or `run_here`) ----------------------------
    def _set(self, **fields: Any) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(self, f"_{k}", v)
            self._version += 1

    def _apply(self, events: list[tuple]) -> tuple | None:
        """Fold a batch of event records into the state; return its 'result'/'error' event."""
        outcome = None
        with self._lock:
            for ev in events:
                kind = ev[0]
                if kind == "progress":
                    self._progress = min(1.0, max(0.0, float(ev[1])))
                    if self._first is None and self._progress > 0:
                        self._first = (time.monotonic(), self._progress)
                    if ev[2]:
                        self._message = ev[2]
                elif kind == "log":
                    cols = self._series.setdefault(ev[1], {})
                    n = len(next(iter(cols.values()))) if cols else 0
                    for k in ev[2]:
                        if k not in cols:
                            cols[k] = [None] * n
                    for k, col in cols.items():
                        col.append(ev[2].get(k))
                elif kind == "set":
                    self._values[ev[1]] = ev[2]
                elif kind in ("result", "error"):
                    outcome = ev
                # "started" only marks the time the worker came up
            self._version += 1
        return outcome

    def _settle(self, outcome: tuple | None, killed: str | None = None) -> None:
        """Set the terminal status from the job's last word (or how its process ended)."""
        with self._lock:
            asked = self._stop.is_set() or self._ask.is_set()  # the job may set its own
            reason = self._stop_reason
            stopped_msg = reason if reason and reason != "requested" else "stopped by request"
            if outcome is not None and outcome[0] == "result":
                self._result = outcome[1]
                self._status = "stopped" if asked else "done"
                if asked:
                    self._message = stopped_msg
                else:
                    self._progress = 1.0
            elif outcome is not None and asked:  # a loop gave up because it was asked to stop
                self._status, self._message = "stopped", stopped_msg
            elif outcome is not None:
                self._status, self._error = "failed", outcome[1]
            elif killed is not None and killed.startswith("memory:"):
                self._status, self._error = "failed", killed.removeprefix("memory:")
            elif asked:
                self._status = "stopped"
                self._message = f"{stopped_msg} ({killed or 'its process ended'})"
            else:
                self._status, self._error = "failed", killed or "the job's process ended"
            self._ended = time.monotonic()
            self._version += 1


def _error_event(exc: BaseException) -> tuple:
    """The readable error a page shows: limits and bad input as is, else the exception."""
    if isinstance(exc, LimitError | ValueError):
        return ("error", str(exc))
    return ("error", f"{type(exc).__name__}: {exc}")


class JobContext:
    """What a job function gets: `stop` (check `stop.is_set()` often), `workdir` (a private
    folder for files it hands back), and ways to report: `progress`, `log`, `set`.

    This one writes straight into a `Job` in this process (see `run_here`); a worker gets a
    `WorkerContext`, which sends the same event records to the server instead.
    """

    def __init__(self, job: Job | None = None, *, stop: Any = None, workdir: str | None = None):
        self._job = job
        self.stop = stop if stop is not None else (job._stop if job else threading.Event())
        self.workdir = workdir if workdir is not None else (job.workdir if job else None)

    @property
    def job_id(self) -> str | None:
        return self._job.id if self._job else None

    def progress(self, frac: float, message: str = "") -> None:
        """Report progress in [0, 1] with an optional message (drives the bar and ETA)."""
        self._emit(("progress", min(1.0, max(0.0, float(frac))), message))

    def log(self, series: str, **values: Any) -> None:
        """Append one point to metric series `series`; missing fields are padded with None."""
        self._emit(("log", series, values))

    def set(self, key: str, value: Any) -> None:
        """Publish one value (e.g. the latest sample text) for the page to read."""
        self._emit(("set", key, value))

    def _emit(self, event: tuple) -> None:
        if self._job is not None:
            self._job._apply([event])


class WorkerContext(JobContext):
    """The context inside a worker process: events are batched and sent at most every
    `FLUSH_S` (by the job's own calls, or by a small flusher thread when it goes quiet)."""

    def __init__(self, conn: multiprocessing.connection.Connection, stop: Any,
                 workdir: str | None, job_id: str):
        super().__init__(None, stop=stop, workdir=workdir)
        self._conn = conn
        self._id = job_id
        self._lock = threading.Lock()
        self._events: list[tuple] = []
        self._progress: tuple | None = None  # only the latest progress matters
        self._sent = time.monotonic()
        threading.Thread(target=self._flusher, name="lmcore-events", daemon=True).start()

    @property
    def job_id(self) -> str:
        return self._id

    def _emit(self, event: tuple) -> None:
        with self._lock:
            if event[0] == "progress":
                if not event[2] and self._progress is not None:  # keep the last message
                    event = (event[0], event[1], self._progress[2])
                self._progress = event
            else:
                self._events.append(event)
            if time.monotonic() - self._sent >= FLUSH_S:
                self._flush()

    def _flusher(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            with self._lock:
                if (self._events or self._progress) and \
                        time.monotonic() - self._sent >= FLUSH_S:
                    self._flush()

    def _flush(self, last: tuple | None = None) -> None:
        batch = self._events + ([self._progress] if self._progress else [])
        if last is not None:
            batch.append(last)
        self._events, self._progress = [], None
        if batch:  # plain pickle: tensors by value (the ForkingPickler that Connection.send
            # uses would pass torch tensors as shared-memory handles, dead once we exit)
            self._conn.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        self._sent = time.monotonic()

    def flush(self, last: tuple | None = None) -> None:
        """Send what is pending now, with `last` (the job's result or error) at the end."""
        with self._lock:
            self._flush(last)


# --- the worker process --------------------------------------------------------------------

class _Popen(popen_forkserver.Popen):
    """The forkserver's Popen, minus re-running the parent's `__main__` in the child.

    Streamlit sets `sys.modules['__main__']` to the page script it is running; the standard
    Popen would have the worker re-run that file, importing streamlit and drawing the page in
    the worker. (The body is the standard `_launch` of Python 3.11-3.13 otherwise.)
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        multiprocessing.context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            multiprocessing.context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


_MP = multiprocessing.get_context("forkserver")
_MP.set_forkserver_preload(PRELOAD)


class _WorkerProcess(_MP.Process):  # type: ignore[name-defined]
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


def warm_up(wait: bool = False) -> None:
    """Start the forkserver now (it imports torch and lmcore once: seconds, a minute on a
    loaded machine), so that the first job does not pay for it. Safe from any thread, any
    number of times; `wait=True` returns only once a job's process could start at once."""
    forkserver.ensure_running()
    if wait:
        job = JobRegistry(slots=Slots(1)).submit("warm-up", _noop)
        job.wait()


def _noop(ctx: JobContext) -> None:
    return None


def _worker_main(conn: Any, stop: Any, payload: bytes, env: dict[str, str],
                 threads: int | None, workdir: str | None, job_id: str, nice: int = 0) -> None:
    """Entry point of a job's process: run `fn(ctx)` and send its events and its last word."""
    os.setpgid(0, 0)  # its own process group: a kill reaches any process the job started
    if nice > 0:  # LMCORE_JOB_NICE: page loads before jobs (hosted)
        os.nice(nice)
    parent = multiprocessing.parent_process()
    if parent is not None:  # the server died without killing us: do not run on as an orphan
        threading.Thread(target=lambda: (multiprocessing.connection.wait([parent.sentinel]),
                                         os._exit(3)), daemon=True).start()
    for k in [k for k in os.environ if k.startswith("LMCORE_")]:
        del os.environ[k]
    os.environ.update(env)  # the settings in force when the job was submitted
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    ctx = WorkerContext(conn, stop, workdir, job_id)
    conn.send_bytes(pickle.dumps([("started",)]))  # the server times the start-up to here
    try:
        fn = pickle.loads(payload)  # written by the server that started us, never user data
        last: tuple = ("result", fn(ctx))
    except BaseException as exc:  # the page shows a readable error, the log the traceback
        if not stop.is_set():
            log.error("job %s failed:\n%s", job_id, "".join(traceback.format_exception(exc)))
        last = _error_event(exc)
    try:
        ctx.flush(last)
    except Exception as exc:  # e.g. a result that cannot be pickled
        conn.send_bytes(pickle.dumps([("error", f"the job's result could not be sent back: "
                                                f"{type(exc).__name__}: {exc}")]))
    conn.close()


def _tree_rss(pid: int) -> int:
    """Resident bytes of process `pid` and all its descendants (0 once it is gone)."""
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total


def _kill(proc: Any) -> None:
    """SIGKILL the worker's process group (itself and anything it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except (ProcessLookupError, AttributeError, ValueError):
        pass


def _fmt_s(s: float) -> str:
    return f"{s:g} s"


class JobRegistry:
    """The jobs of one session: starts worker processes and enforces every limit."""

    def __init__(self, slots: Slots | None = None, max_seconds: float | None = None,
                 max_mb: float | None = None, grace_s: float = STOP_GRACE_S):
        self._slots = slots or _process_slots
        self._max_seconds = max_seconds
        self._max_mb = max_mb
        self.grace_s = grace_s
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._released = False  # the session ended: a job submitted now never starts

    def submit(self, name: str, fn: Callable[[JobContext], Any]) -> Job:
        """Run `fn(ctx)` in a worker process (after waiting for a slot); return its Job.

        `fn` must pickle: a module-level function or a functools.partial of one with plain
        arguments (a lambda or closure is refused here, with this explanation).
        """
        try:
            _check_importable(fn)
            payload = pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"job {name!r}: its function must be picklable (a module-level "
                            f"function or functools.partial of one with plain arguments): "
                            f"{exc}") from exc
        workdir = tempfile.mkdtemp(prefix="lmcore-job-")  # mode 0700: this session's only
        job = Job(name, workdir=workdir, stop=threading.Event(), ask=_MP.Event())
        weakref.finalize(job, shutil.rmtree, workdir, ignore_errors=True)
        return self._start(job, self._run, payload)

    def _start(self, job: Job, target: Callable[..., None], arg: Any) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            released = self._released
        job._set(message="waiting for a free job slot")
        if released:  # a page run still going when its tab closed: never start the job
            job.stop(ENDED, kill=True)
            threading.Thread(target=_remove_after, args=(job,), daemon=True).start()
        t = threading.Thread(target=target, args=(job, arg), name=f"lmcore-{job.id}",
                             daemon=True)
        job.thread = t
        t.start()
        return job

    def _limit_seconds(self) -> float:
        return float(self._max_seconds or get_settings().max_job_seconds)

    def _limit_mb(self) -> float:
        return float(self._max_mb or get_settings().max_job_mb)

    def _run(self, job: Job, payload: bytes) -> None:
        if not self._slots.acquire(job._stop):
            job._set(status="stopped", message="stopped before it started",
                     ended=time.monotonic())
            job._finished.set()
            return
        try:
            self._supervise(job, payload)
        except Exception as exc:  # the engine itself failed: say so, never hang the page
            log.error("job %s: supervisor failed:\n%s", job.name,
                      "".join(traceback.format_exception(exc)))
            job._settle(_error_event(exc))
        finally:
            self._slots.release()
            job._finished.set()

    def _supervise(self, job: Job, payload: bytes) -> None:
        """Start the worker, fold its events into `job`, and enforce the limits until it ends."""
        limit_s, limit_mb, grace = self._limit_seconds(), self._limit_mb(), self.grace_s
        env = {k: v for k, v in os.environ.items() if k.startswith("LMCORE_")}
        settings = get_settings()
        torch = sys.modules.get("torch")
        threads = (settings.threads_per_job(running=self._slots.running)
                   if torch is not None else None)
        recv, send = _MP.Pipe(duplex=False)
        proc = _WorkerProcess(target=_worker_main, name=f"lmcore-{job.id}", daemon=True,
                              args=(send, job._ask, payload, env, threads, job.workdir, job.id,
                                    settings.job_nice))
        t0 = time.monotonic()
        job._set(status="running", started=t0, message="starting…")
        proc.start()
        send.close()
        job.pid = proc.pid
        outcome: tuple | None = None
        killed: str | None = None
        kill_at: float | None = None
        timed_out = False
        first, next_mem = True, 0.0
        while True:
            ready = multiprocessing.connection.wait([recv, proc.sentinel], timeout=POLL_S)
            if recv in ready:
                outcome = self._drain(job, recv) or outcome
                if first:
                    job.start_s, first = time.monotonic() - t0, False
            if proc.sentinel in ready:
                proc.join()
                outcome = self._drain(job, recv, to_eof=True) or outcome
                break
            if killed is not None:
                continue  # killed: wait for the process to be gone
            now = time.monotonic()
            if not timed_out and now - t0 > limit_s:
                timed_out = True
                job.stop(f"stopped: reached the time limit max_job_seconds={limit_s:g} "
                         "(set LMCORE_MAX_JOB_SECONDS to raise it)")
            if (job._stop.is_set() or job._ask.is_set()) and kill_at is None:
                kill_at = now + grace
            rss = 0.0
            if now >= next_mem:  # a /proc walk: four times a second is enough
                rss, next_mem = _tree_rss(proc.pid) / 2**20, now + 0.25
                job.peak_rss_mb = max(job.peak_rss_mb, rss)
            if rss > limit_mb:
                killed = (f"memory:killed: the job used {rss:,.0f} MB, over the limit "
                          f"max_job_mb={limit_mb:g} (set LMCORE_MAX_JOB_MB to raise it)")
            elif job._kill.is_set():
                killed = "killed: its session ended"
            elif kill_at is not None and now >= kill_at:
                killed = f"killed: it did not stop within {_fmt_s(grace)}"
            if killed is not None:
                _kill(proc)
        recv.close()
        if outcome is None and killed is None:
            code = proc.exitcode
            killed = (f"the job's process was killed by signal {-code}" if code and code < 0
                      else f"the job's process exited with code {code} without a result")
        job._settle(outcome, killed)

    @staticmethod
    def _drain(job: Job, recv: Any, to_eof: bool = False) -> tuple | None:
        """Apply every batch waiting in the pipe (all of them, to EOF, once the worker ended)."""
        outcome = None
        while to_eof or recv.poll():
            try:
                data = recv.recv_bytes()
            except (EOFError, OSError):
                break
            try:
                batch = pickle.loads(data)  # from the worker this server started
            except Exception as exc:
                log.error("job %s: unreadable event batch (%s: %s)", job.name,
                          type(exc).__name__, exc)
                batch = [("error", f"the job's report could not be read: "
                                   f"{type(exc).__name__}: {exc}")]
            outcome = job._apply(batch) or outcome
        return outcome

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
        """Drop a job from the list (a running one is killed) and delete its private folder."""
        job = self.get(job_id)
        if job is not None:
            job.stop(kill=True)
            with self._lock:
                self._jobs.pop(job_id, None)
            threading.Thread(target=_remove_after, args=(job,), daemon=True).start()

    def stop_all(self, wait: float = 0.0, kill: bool = False,
                 reason: str = "requested") -> None:
        """Stop every job of this session (ask; `kill=True` kills at once); optionally wait
        up to `wait` seconds for them to end."""
        jobs = self.jobs()
        for job in jobs:
            job.stop(reason, kill=kill)
        deadline = time.monotonic() + wait
        for job in jobs:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            job.wait(left)

    def release(self, wait: float = 5.0) -> None:
        """The session ended (tab closed or expired): kill its jobs, delete their folders.
        A job submitted later (by a page run that was still going) is stopped unstarted."""
        with self._lock:
            self._released = True
        self.stop_all(wait=wait, kill=True, reason=ENDED)
        for job in self.jobs():
            if job.done and job.workdir:
                shutil.rmtree(job.workdir, ignore_errors=True)
            elif job.workdir:  # still being killed: remove its folder once it is gone
                threading.Thread(target=_remove_after, args=(job,), daemon=True).start()

    def waiting_reason(self) -> str:
        """A sentence for the page when a job waits for a slot."""
        return (f"Waiting for a free job slot: {self._slots.running} of {self._slots.limit} "
                "jobs are running on this server (LMCORE_MAX_JOBS).")


def _check_importable(fn: Any) -> None:
    """Refuse a function a worker could not import: one defined in a page script (Streamlit
    runs it as `__main__`, so it pickles by a name that means nothing in the worker)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None)
    if module in ("__main__", "__mp_main__"):
        raise TypeError(f"{getattr(fn, '__qualname__', fn)!r} is defined in a script "
                        "(module __main__), which a worker process cannot import")


def _remove_after(job: Job, timeout: float = 30.0) -> None:
    if job.wait(timeout) and job.workdir:
        shutil.rmtree(job.workdir, ignore_errors=True)


def run_here(fn: Callable[[JobContext], Any], name: str = "job",
             workdir: str | None = None) -> Job:
    """Run `fn(ctx)` in this thread, with no server and no worker, and return the finished
    Job (same statuses, series and errors as a submitted one): plain Python, a notebook, the
    benchmark's baseline, and tests that patch the function's module."""
    job = Job(name, workdir=workdir)
    job._set(status="running", started=time.monotonic())
    try:
        outcome: tuple = ("result", fn(JobContext(job)))
    except Exception as exc:
        log.info("job %s ended with %s: %s", name, type(exc).__name__, exc)
        outcome = _error_event(exc)
    job._settle(outcome)
    job._finished.set()
    return job

