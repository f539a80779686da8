"""Limits for a hosted demo, in one object read from `LMCORE_*` environment variables.

Every request that a limit stops names the limit and the variable that raises it, so a person
running their own copy knows what to change.
"""

from __future__ import annotations

import os
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
    if isinstance(value, int | float) and value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


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
    home: str = str(Path.home() / ".lmcore")  # LMCORE_HOME: run store and checkpoints
    llm_url: str = ""  # LMCORE_LLM_URL: optional OpenAI-compatible endpoint for summaries
    # LMCORE_ALLOW_LLM_URL: let visitors type their own endpoint URL. Off for a hosted demo,
    # where a free URL would let any visitor make the server send requests anywhere.
    allow_llm_url: bool = False
    # LMCORE_SHARED_RUNS: the app lists every run in the store (CLI runs, earlier sessions).
    # Off for a hosted demo, where each session sees only its own runs; `make run` turns it on.
    shared_runs: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        """Read every limit from its `LMCORE_<NAME>` variable, falling back to the default."""
        values = {}
        for f in fields(cls):
            default = getattr(cls, f.name) if f.name != "home" else str(Path.home() / ".lmcore")
            cast = type(default)
            values[f.name] = _env(f"LMCORE_{f.name.upper()}", default, cast)
        return cls(**values)

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
