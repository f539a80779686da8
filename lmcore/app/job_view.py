"""The page side of background jobs: the session's registry, the job panel, and `follow`.

`follow(job, key, figure)` is the one polling helper every page uses: while the job runs, a
fragment redraws its panel (progress, ETA, Stop) each second and another its plotly figure
(fixed key, bounded point count) every few seconds; the page reruns once when the job ends
so the code after it picks up `job.result`. The jobs themselves run in worker processes (`jobs.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import streamlit as st

from lmcore.app.jobs import Job, JobRegistry, warm_up

REDRAW_S = 1.0  # the job's panel (progress, ETA, Stop) redraws once a second
# and its live figure every 5 s, with at most about MAX_POINTS points per series. Measured
# with Chromium on the same 2 cores (bench/app_jobs.py): each redraw of the 4-panel training
# figure costs Chromium about 0.22 CPU-s, each panel tick on the Transformer page about 0.07,
# and a 2-thread job slows by about the fraction of time anything else runs (its other
# thread waits at every barrier: plain training beside a 20% busy loop ran at 0.78x). The
# figure every second ran the job at 0.6x of plain Python, every 3 s at 0.8x.
FIGURE_S = 5.0
MAX_POINTS = 400  # and shows at most about this many points per series


def _release(reg: JobRegistry) -> None:
    """Session closed or expired: kill its jobs now (the hook a hosted server relies on)."""
    reg.release(wait=0)


@st.cache_resource(scope="session", on_release=_release, show_spinner=False)
def registry() -> JobRegistry:
    """This session's registry; closing the tab (or its expiry) releases it: jobs killed."""
    threading.Thread(target=warm_up, name="lmcore-forkserver-warm-up", daemon=True).start()
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


Figure = Callable[[dict[str, dict[str, list]]], Any]


def _figure(job: Job, build: Figure, key: str, max_points: int) -> Any:
    """The figure for the job's series now; rebuilt only when the job reported something
    (or the page made a new `build`: another figure setting)."""
    memo = st.session_state.get(f"{key}.memo")
    version = job.version
    if memo is not None and memo[0] == job.id and memo[1] == version and memo[2] is build:
        return memo[3]
    fig = build(job.snapshot(max_points=max_points))
    st.session_state[f"{key}.memo"] = (job.id, version, build, fig)
    return fig


def follow(job: Job, key: str, figure: Figure | None = None, *,
           body: Callable[[Job], None] | None = None, run_every: float = REDRAW_S,
           figure_every: float = FIGURE_S, max_points: int = MAX_POINTS,
           panel: bool = True) -> None:
    """Show a job while it runs and hand the page its end: the one polling helper.

    Two fragments while the job is active: the panel (progress, ETA, Stop/Cancel, the end
    state) and `body(job)` every `run_every` seconds; `figure(snapshot)`, one plotly chart
    with the fixed `key` (series thinned to about `max_points`), every `figure_every`
    seconds. When the job ends the whole page reruns once, so the code after this call sees
    `job.result`.
    """
    was_active = job.active

    @st.fragment(run_every=run_every if was_active else None)
    def _panel() -> None:
        if panel:
            job_panel(job, key=f"{key}.panel")
        if body is not None:
            body(job)
        if was_active and job.done:
            st.rerun()

    @st.fragment(run_every=figure_every if was_active else None)
    def _chart() -> None:
        fig = _figure(job, figure, key, max_points)
        if fig is not None:
            st.plotly_chart(fig, key=key)

    _panel()
    if figure is not None:
        _chart()


def follow_all(jobs: dict[str, Job], key: str,
               figure: Callable[[dict[str, dict[str, dict[str, list]]]], Any] | None = None,
               *, run_every: float = REDRAW_S, figure_every: float = FIGURE_S,
               max_points: int = MAX_POINTS) -> None:
    """`follow` for jobs shown together: their panels side by side, one figure built from
    {name: snapshot}; the page reruns once when the last of them ends."""
    was_active = any(j.active for j in jobs.values())

    @st.fragment(run_every=run_every if was_active else None)
    def _panels() -> None:
        for col, (name, job) in zip(st.columns(len(jobs)), jobs.items(), strict=True):
            with col:
                job_panel(job, key=f"{key}.panel.{name}")
        if was_active and all(j.done for j in jobs.values()):
            st.rerun()

    @st.fragment(run_every=figure_every if was_active else None)
    def _chart() -> None:
        fig = figure({n: j.snapshot(max_points=max_points) for n, j in jobs.items()})
        if fig is not None:
            st.plotly_chart(fig, key=key)

    _panels()
    if figure is not None:
        _chart()


def live_chart(job: Job, build_figure: Figure, key: str, run_every: float = REDRAW_S,
               panel: bool = True) -> None:
    """`follow` with a figure (the name pages used before `follow` existed)."""
    follow(job, key, build_figure, run_every=run_every, panel=panel)
