"""Limits for a hosted demo, in one object read from `LMCORE_*` environment variables.

Every request that a limit stops names the limit and the variable that raises it, so a person
running their own copy knows what to change. `LMCORE_PROFILE=hosted` switches every default to
the limits of a public demo on a 2-CPU, 2 GB box (`HOSTED`); an explicit `LMCORE_<NAME>` still
overrides any one of them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, fields
from pathlib import Path


class LimitError(ValueError):
    """A request exceeded one of the configured limits; the message names the limit."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _env(name: str, default: float | int | str | bool, cast: type) -> float | int | str | bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if cast is bool:
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(f"{name}={raw!r} is not a yes/no value (use 1 or 0)")
        return word in _TRUE
    try:
        value = cast(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a valid {cast.__name__}") from exc
    if isinstance(value, int | float) and value <= 0 and not (value == 0 and name in _ZERO_OK):
        raise ValueError(f"{name} must be positive, got {raw!r}")
    if name == "LMCORE_JOB_NICE" and value > 19:
        raise ValueError(f"{name} must lie in 0..19 (Unix niceness), got {raw!r}")
    return value


# 0 = sessions never expire for being idle; 0 = a job's thread count is chosen for the machine
_ZERO_OK = {"LMCORE_IDLE_SECONDS", "LMCORE_JOB_THREADS", "LMCORE_JOB_NICE"}
PROFILES = ("local", "hosted")

# A public demo on a box of 2 CPUs and 2 GB (Community Cloud, a small Space or container):
# two jobs at once (one per core) of at most 700 MB and 3 minutes each (the time limit is what
# bounds a job's CPU; 5,000 steps let the Scaling page's few-shot (4,500) and induction (4,000)
# defaults run as they do locally: at 2,000 the few-shot model is still on its plateau), a
# text small enough that 8 visitors' corpora and models fit beside the server, and sessions
# that free their memory after 15 idle minutes (900 s). `home` is a private temp folder of the
# server process (`hosted_home`), so nothing a visitor trained lands on a shared disk.
HOSTED = {
    "upload_mb": 2,
    "max_chars": 1_000_000,
    "max_params": 2_000_000,
    "max_steps": 5_000,
    "max_job_seconds": 180,
    "max_jobs": 2,
    "max_job_mb": 700,
    "job_nice": 10,
    "idle_seconds": 900,
    "allow_llm_url": False,
    "shared_runs": False,
}

_home_lock = threading.Lock()


def hosted_home() -> str:
    """A private (0700) temp folder for this server's run store and checkpoints.

    Made once per process and exported as `LMCORE_HOME`, so job processes started later use
    the same folder; removed when the process exits. Each session's runs and checkpoints are
    deleted earlier, when the session ends (`lmcore.app.session_life`).
    """
    with _home_lock:
        made = os.environ.get("LMCORE_HOSTED_HOME_MADE")
        if made and Path(made).is_dir():
            return made
        path = tempfile.mkdtemp(prefix="lmcore-hosted-")  # mode 0700
        os.environ["LMCORE_HOSTED_HOME_MADE"] = path
        os.environ["LMCORE_HOME"] = path
        atexit.register(shutil.rmtree, path, True)
        return path


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    """Safe defaults for a shared demo; raise them with environment variables for local use."""

    upload_mb: int = 20  # LMCORE_UPLOAD_MB
    max_chars: int = 5_000_000  # LMCORE_MAX_CHARS
    max_params: int = 20_000_000  # LMCORE_MAX_PARAMS
    max_steps: int = 20_000  # LMCORE_MAX_STEPS
    max_job_seconds: int = 1_800  # LMCORE_MAX_JOB_SECONDS
    max_jobs: int = 2  # LMCORE_MAX_JOBS: concurrent background jobs per process
    max_job_mb: int = 4096  # LMCORE_MAX_JOB_MB: resident memory of one job's process
    # LMCORE_JOB_THREADS: torch threads of one job's process; 0 = `threads_per_job()` (the
    # cores shared among the jobs running when it starts)
    job_threads: int = 0
    # LMCORE_JOB_NICE: the Unix niceness (0-19) of a job's process. A hosted demo runs jobs at
    # 10, so the server answers page loads first and jobs take the CPU time left over; a
    # local lab keeps 0, where a job should not yield to its own watcher's browser.
    job_nice: int = 0
    # LMCORE_IDLE_SECONDS: a session with no page run for this long is closed and its
    # corpus, models, runs and jobs freed; 0 = never (a local lab).
    idle_seconds: int = 0
    home: str = str(Path.home() / ".lmcore")  # LMCORE_HOME: run store and checkpoints
    llm_url: str = ""  # LMCORE_LLM_URL: optional OpenAI-compatible endpoint for summaries
    # LMCORE_ALLOW_LLM_URL: let visitors type their own endpoint URL. Off for a hosted demo,
    # where a free URL would let any visitor make the server send requests anywhere.
    allow_llm_url: bool = False
    # LMCORE_SHARED_RUNS: the app lists every run in the store (CLI runs, earlier sessions).
    # Off for a hosted demo, where each session sees only its own runs; `make run` turns it on.
    shared_runs: bool = False
    profile: str = "local"  # LMCORE_PROFILE: 'local' or 'hosted' (the defaults in HOSTED)

    @classmethod
    def from_env(cls) -> Settings:
        """Read every limit from its `LMCORE_<NAME>` variable, falling back to the profile's
        default (LMCORE_PROFILE=hosted: `HOSTED`; otherwise the class defaults)."""
        profile = os.environ.get("LMCORE_PROFILE", "").strip().lower() or "local"
        if profile not in PROFILES:
            raise ValueError(f"LMCORE_PROFILE={os.environ['LMCORE_PROFILE']!r} is not a "
                             f"profile (use {' or '.join(PROFILES)})")
        base = HOSTED if profile == "hosted" else {}
        values: dict = {"profile": profile}
        for f in fields(cls):
            if f.name == "profile":
                continue
            if f.name == "home":
                raw = os.environ.get("LMCORE_HOME", "").strip()
                values["home"] = raw or (hosted_home() if profile == "hosted"
                                         else str(Path.home() / ".lmcore"))
                continue
            default = base.get(f.name, getattr(cls, f.name))
            values[f.name] = _env(f"LMCORE_{f.name.upper()}", default, type(default))
        return cls(**values)

    def threads_per_job(self, cpus: int | None = None, running: int = 1) -> int:
        """Torch threads a job's process runs on: `job_threads`, or when 0, the cores shared
        among the jobs running when it starts (`running`, this one included), at least 1.

        A lone job gets every core. With its page open in Chromium on the same 2 cores, a
        2-thread job loses about the share of time the browser runs (its other thread waits
        at every barrier): 0.5x with the live figure redrawn every second, 0.8x every 3 s,
        0.89-0.95x for the page's default 200 steps and 0.83-0.90x over 1,000 steps with the
        figure every 5 s and a still progress bar (bench/app_jobs.py; the browser then takes
        ~0.12 of a core). A 1-thread job cannot get there: plain Python on 2 threads is
        ~1.4x faster than on 1.
        """
        if self.job_threads > 0:
            return self.job_threads
        cpus = available_cores() if cpus is None else cpus
        return max(1, cpus // max(1, running))

    @property
    def hosted(self) -> bool:
        return self.profile == "hosted"

    def overridden(self) -> list[str]:
        """The `LMCORE_*` variables set in the environment that change one of this profile's
        limits (the banner names them, so a visitor knows the host changed a default)."""
        base = HOSTED if self.hosted else {}
        out = []
        for f in fields(self):
            if f.name in ("profile", "home", "llm_url"):
                continue
            default = base.get(f.name, getattr(type(self), f.name))
            if getattr(self, f.name) != default:
                out.append(f"LMCORE_{f.name.upper()}")
        return out

    @property
    def upload_bytes(self) -> int:
        return self.upload_mb * 1024 * 1024

    def check(self, name: str, value: float) -> None:
        """Raise LimitError naming the limit when `value` exceeds limit `name`."""
        limit = getattr(self, name)
        if value > limit:
            raise LimitError(
                f"{value:,} exceeds the limit {name}={limit:,} "
                f"(set LMCORE_{name.upper()} to raise it)"
            )


def get_settings() -> Settings:
    """The settings in force now (re-read each call so tests can change the environment)."""
    return Settings.from_env()
