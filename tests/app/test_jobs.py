"""The job engine without a running app: jobs run in worker processes that report events,
Stop asks then kills, the time limit and a released session kill, memory is capped, the cap on
concurrent jobs makes others wait, and no worker imports streamlit."""

from __future__ import annotations

import functools
import os
import stat
import sys
import threading
import time
import types
from pathlib import Path

import psutil
import pytest
import sample_jobs as sj

from lmcore.app import job_view
from lmcore.app.jobs import Job, JobContext, JobRegistry, Slots, downsample, run_here

WAIT = 60  # the first job of a test run also starts the forkserver (imports torch)


def _wait_for(cond, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert cond()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_submit_runs_in_a_worker_process_and_reports():
    reg = JobRegistry(slots=Slots(2))
    job = reg.submit("train", functools.partial(sj.report, n=5))
    assert job.wait(WAIT)
    assert job.status == "done" and job.error is None, job.error
    assert job.result["pid"] != os.getpid() and job.result["pid"] == job.pid
    assert job.progress == 1.0 and job.eta_s is None
    snap = job.snapshot()
    assert snap["loss"]["step"] == [0, 1, 2, 3, 4, 5]
    assert snap["loss"]["train"] == [10.0, 9.0, 8.0, 7.0, 6.0, None]
    assert snap["loss"]["valid"] == [None] * 5 + [4.5]
    assert job.get("sample") == "hello" and job.values() == {"sample": "hello"}
    assert job.message == "step 5"
    assert reg.latest("train") is job and reg.jobs() == [job]
    snap["loss"]["step"].append(99)  # a snapshot is a copy
    assert len(job.snapshot()["loss"]["step"]) == 6
    assert job.start_s is not None and _gone(job.pid)


def test_no_streamlit_in_the_worker_even_when_main_is_a_page_script(tmp_path, monkeypatch):
    """Streamlit sets __main__ to the page it runs; the worker must not re-run that file."""
    assert "streamlit" in sys.modules  # this process has it
    marker = tmp_path / "page-ran"
    page = tmp_path / "page.py"
    page.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake)
    job = JobRegistry(slots=Slots(1)).submit("r", sj.report)
    assert job.wait(WAIT) and job.status == "done", job.error
    assert job.result["streamlit"] is False
    assert job.result["main"] != str(page) and not marker.exists()


def test_every_event_arrives_in_order():
    job = JobRegistry(slots=Slots(1)).submit("many", functools.partial(sj.many_points, n=20_000))
    assert job.wait(WAIT) and job.result == 20_000
    assert job.snapshot()["s"]["i"] == list(range(20_000))


def test_a_lambda_is_refused_at_submit_with_the_contract():
    with pytest.raises(TypeError, match="module-level function or functools.partial"):
        JobRegistry(slots=Slots(1)).submit("bad", lambda ctx: 1)


def test_eta_from_progress():
    reg = JobRegistry(slots=Slots(1))
    job = reg.submit("eta", functools.partial(sj.half_then_wait, seconds=3))
    _wait_for(lambda: job.progress >= 0.5)
    before = job.elapsed_s
    eta = job.eta_s
    after = job.elapsed_s
    assert eta is not None and before >= 0.1  # halfway: as long again as it took so far
    assert before - 1e-3 <= eta <= after + 1e-3
    assert job.wait(WAIT) and job.status == "done" and job.result == "ok"


def test_eta_leaves_the_start_up_out():
    """2 s of start-up, then 40 steps of 0.05 s: at a quarter done about 1.5 s are left, not
    the 6+ s that counting the start-up as work would say; nothing is shown at the first step."""
    reg = JobRegistry(slots=Slots(1))
    job = reg.submit("slow start", functools.partial(sj.slow_start, startup=2.0, steps=40,
                                                     step_s=0.05))
    _wait_for(lambda: job.progress > 0)
    assert job.progress > 0.04 or job.eta_s is None  # one report of 2.5%: too little to tell
    _wait_for(lambda: job.progress >= 0.25)
    eta = job.eta_s
    assert eta is not None and 0.5 < eta < 5.0, eta  # the rate since the first report
    assert job.wait(WAIT) and job.result == "ok"


def test_stop_asks_and_a_cooperative_job_keeps_its_result():
    reg = JobRegistry(slots=Slots(1))
    job = reg.submit("loop", sj.until_stopped)
    _wait_for(lambda: job.progress > 0)
    assert job.status == "running"
    job.stop()
    assert job.wait(WAIT)
    assert job.status == "stopped" and job.stop_reason == "requested"
    assert job.message == "stopped by request"
    assert job.result > 0 and _gone(job.get("pid"))


def test_stop_kills_a_job_that_does_not_stop_within_the_grace_period():
    reg = JobRegistry(slots=Slots(1), grace_s=0.5)
    job = reg.submit("stubborn", sj.ignores_stop)
    _wait_for(lambda: job.get("pid") is not None)
    t0 = time.monotonic()
    job.stop()
    assert job.wait(WAIT)
    assert 0.4 <= time.monotonic() - t0 < 10
    assert job.status == "stopped" and "did not stop within 0.5 s" in job.message
    assert _gone(job.get("pid"))


def test_time_limit_kills_a_job_that_ignores_stop_and_names_the_limit():
    reg = JobRegistry(slots=Slots(1), max_seconds=0.5, grace_s=0.5)
    job = reg.submit("slow", sj.ignores_stop)
    assert job.wait(WAIT)
    assert job.status == "stopped"
    assert "max_job_seconds=0.5" in job.message and "LMCORE_MAX_JOB_SECONDS" in job.message
    assert "killed" in job.message and _gone(job.get("pid"))


def test_time_limit_asks_first_so_a_cooperative_job_keeps_what_it_did():
    reg = JobRegistry(slots=Slots(1), max_seconds=0.3)
    job = reg.submit("slow", sj.until_stopped)
    assert job.wait(WAIT)
    assert job.status == "stopped" and "max_job_seconds" in job.message
    assert job.result > 0


def test_release_kills_the_sessions_jobs_at_once_and_removes_their_folders():
    reg = JobRegistry(slots=Slots(2), grace_s=60)  # a Stop would wait a minute; release won't
    jobs = [reg.submit(f"j{i}", sj.ignores_stop) for i in range(2)]
    for j in jobs:
        _wait_for(lambda j=j: j.get("pid") is not None)
    t0 = time.monotonic()
    job_view._release(reg)  # what Streamlit calls when the session is closed or expires
    for j in jobs:
        assert j.wait(10)
    assert time.monotonic() - t0 < 5
    for j in jobs:
        assert j.status == "stopped" and "session ended" in j.message, j.message
        assert _gone(j.get("pid"))
    _wait_for(lambda: not any(Path(j.workdir).exists() for j in jobs), timeout=10)


def test_a_job_submitted_after_its_session_ended_never_starts():
    """A page run still going when its tab closed submits after the release: that job must not
    start (the load test once found such a job alive 5 s after every tab had closed)."""
    reg = JobRegistry(slots=Slots(2))
    job_view._release(reg)
    late = reg.submit("late", sj.report)
    assert late.wait(WAIT)
    assert late.status == "stopped" and late.pid is None
    assert late.stop_reason == "stopped: the session ended"
    _wait_for(lambda: not Path(late.workdir).exists(), timeout=10)


def test_a_job_stopped_while_a_slot_is_free_never_starts():
    stop = threading.Event()
    stop.set()
    slots = Slots(1)
    assert not slots.acquire(stop) and slots.running == 0


def test_a_killed_job_is_not_asked_to_stop_so_it_writes_nothing(tmp_path):
    """A Stop lets a job save its work; a released session's kill must not: its runs are being
    deleted, and a checkpoint written after that would be left on disk (seen once in CI)."""
    reg = JobRegistry(slots=Slots(2), grace_s=60)
    asked, killed = tmp_path / "asked", tmp_path / "killed"
    a = reg.submit("asked", functools.partial(sj.saves_when_stopped, marker=str(asked)))
    k = reg.submit("killed", functools.partial(sj.saves_when_stopped, marker=str(killed)))
    for j in (a, k):
        _wait_for(lambda j=j: j.get("pid") is not None)
    a.stop()
    k.stop(kill=True)
    assert a.wait(10) and k.wait(10)
    assert a.status == "stopped" and a.result == "saved" and asked.read_text() == "saved"
    assert k.status == "stopped" and _gone(k.get("pid"))
    time.sleep(0.3)
    assert not killed.exists()


def test_stop_all_kill_also_kills_processes_the_job_started(tmp_path):
    reg = JobRegistry(slots=Slots(1))
    marker = tmp_path / "child.pid"
    job = reg.submit("parent", functools.partial(sj.spawns_child, marker=str(marker)))
    _wait_for(lambda: marker.exists() and marker.read_text())
    child = int(marker.read_text())
    reg.stop_all(wait=10, kill=True)
    assert job.done and job.status == "stopped"
    _wait_for(lambda: _gone(child), timeout=10)


def test_memory_cap_kills_the_job_and_names_the_limit():
    reg = JobRegistry(slots=Slots(1), max_mb=600)
    job = reg.submit("hog", functools.partial(sj.allocates, mb=900))
    assert job.wait(WAIT)
    assert job.status == "failed"
    assert "max_job_mb=600" in job.error and "LMCORE_MAX_JOB_MB" in job.error
    assert job.peak_rss_mb > 600
    ok = reg.submit("small", functools.partial(sj.allocates, mb=10, hold=0))
    assert ok.wait(WAIT) and ok.status == "done"  # under the cap: runs to the end


def test_exception_becomes_failed_with_readable_error_and_frees_the_slot():
    reg = JobRegistry(slots=Slots(1))
    job = reg.submit("bad", functools.partial(sj.fails, message="the model diverged (loss is NaN)"))
    assert job.wait(WAIT)
    assert job.status == "failed"
    assert job.error == "RuntimeError: the model diverged (loss is NaN)"
    bad = reg.submit("input", sj.bad_input)  # bad input reads as the message alone
    assert bad.wait(WAIT) and bad.error == "the corpus is empty: load a longer text"


def test_a_worker_that_dies_is_a_failed_job_saying_so():
    job = JobRegistry(slots=Slots(1)).submit("dies", sj.kills_itself)
    assert job.wait(WAIT)
    assert job.status == "failed" and "killed by signal 9" in job.error


def test_cap_makes_extra_jobs_wait_for_a_slot():
    slots = Slots(1)
    a_reg, b_reg = JobRegistry(slots=slots), JobRegistry(slots=slots)  # two sessions
    first = a_reg.submit("first", sj.until_stopped)
    _wait_for(lambda: first.progress > 0)
    second = b_reg.submit("second", sj.report)
    time.sleep(0.2)
    assert second.status == "waiting" and second.pid is None
    assert "1 of 1" in b_reg.waiting_reason()
    first.stop()
    assert second.wait(WAIT) and second.status == "done"


def test_waiting_job_can_be_cancelled():
    slots = Slots(1)
    reg = JobRegistry(slots=slots)
    first = reg.submit("first", sj.until_stopped)
    _wait_for(lambda: first.progress > 0)
    second = reg.submit("second", sj.report)
    second.stop()
    assert second.wait(WAIT) and second.status == "stopped" and second.pid is None
    first.stop()
    assert first.wait(WAIT)
    assert slots.running == 0


def test_the_worker_sees_the_settings_in_force_at_submit(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCORE_MAX_STEPS", "7")
    job = JobRegistry(slots=Slots(1)).submit("s", sj.settings_seen)
    assert job.wait(WAIT) and job.result == {"max_steps": 7,
                                             "home": os.environ["LMCORE_HOME"]}


def test_the_worker_runs_on_the_settings_thread_count(monkeypatch):
    from lmcore.settings import get_settings

    monkeypatch.setenv("LMCORE_JOB_THREADS", "3")
    job = JobRegistry(slots=Slots(1)).submit("t", sj.torch_threads)
    assert job.wait(WAIT) and job.result == 3
    monkeypatch.delenv("LMCORE_JOB_THREADS")  # auto: a lone job gets every core
    job = JobRegistry(slots=Slots(1)).submit("t", sj.torch_threads)
    assert job.wait(WAIT) and job.result == get_settings().threads_per_job()


def test_the_worker_runs_at_the_settings_niceness(monkeypatch):
    """LMCORE_JOB_NICE lowers a job's priority (hosted: 10), so the server's page loads come
    first; 0 leaves it at the server's own."""
    base = os.nice(0)
    monkeypatch.setenv("LMCORE_JOB_NICE", "7")
    job = JobRegistry(slots=Slots(1)).submit("n", sj.niceness)
    assert job.wait(WAIT) and job.result == min(19, base + 7)
    assert os.nice(0) == base  # the server's own priority is untouched
    monkeypatch.setenv("LMCORE_JOB_NICE", "0")
    job = JobRegistry(slots=Slots(1)).submit("n", sj.niceness)
    assert job.wait(WAIT) and job.result == base


def test_a_job_started_beside_another_gets_a_share_of_the_cores(monkeypatch):
    """A lone job runs on every core; one that starts while another runs gets its share
    (two jobs on all cores each would wait on each other's OpenMP threads)."""
    from lmcore.settings import get_settings

    monkeypatch.delenv("LMCORE_JOB_THREADS", raising=False)
    reg = JobRegistry(slots=Slots(2))
    first = reg.submit("first", sj.until_stopped)
    try:
        deadline = time.monotonic() + WAIT
        while first.status != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        job = reg.submit("t", sj.torch_threads)
        assert job.wait(WAIT) and job.result == get_settings().threads_per_job(running=2)
    finally:
        first.stop()
        first.wait(WAIT)
    alone = reg.submit("t", sj.torch_threads)
    assert alone.wait(WAIT) and alone.result == get_settings().threads_per_job(running=1)


def test_workdir_is_private_and_holds_what_the_job_hands_back():
    reg = JobRegistry(slots=Slots(1))
    job = reg.submit("w", functools.partial(sj.writes_file, text="weights"))
    assert job.wait(WAIT) and job.status == "done"
    assert Path(job.result).read_text() == "weights"
    assert Path(job.result).parent == Path(job.workdir)
    assert stat.S_IMODE(os.stat(job.workdir).st_mode) == 0o700
    reg.forget(job.id)
    _wait_for(lambda: not Path(job.workdir).exists(), timeout=10)
    assert reg.jobs() == []


def test_process_cap_reads_settings(monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_JOBS", "3")
    assert Slots().limit == 3


@pytest.mark.parametrize("frac,expected", [(-1, 0.0), (0.25, 0.25), (7, 1.0)])
def test_progress_is_clamped(frac, expected):
    job = run_here(functools.partial(sj.clamped, frac=frac))
    assert job.status == "done" and job.progress == 1.0  # done: full bar
    ctx_job = Job("p")
    JobContext(ctx_job).progress(frac)
    assert ctx_job.progress == expected


def test_exception_raised_because_of_stop_is_stopped_not_failed():
    reg = JobRegistry(slots=Slots(1))
    job = reg.submit("coop", sj.raises_when_stopped)
    _wait_for(lambda: job.progress > 0)
    job.stop()
    assert job.wait(WAIT)
    assert job.status == "stopped" and job.error is None
    assert job.message == "stopped by request"
    bad = reg.submit("bad", sj.raises_stopped_unasked)  # the same without a stop request
    assert bad.wait(WAIT) and bad.status == "failed" and "no stop was asked" in bad.error


def test_run_here_gives_the_same_job_without_a_worker():
    job = run_here(functools.partial(sj.report, n=5), name="here")
    assert job.done and job.status == "done" and job.result["pid"] == os.getpid()
    assert job.snapshot()["loss"]["train"] == [10.0, 9.0, 8.0, 7.0, 6.0, None]
    failed = run_here(sj.bad_input)
    assert failed.status == "failed" and failed.error.startswith("the corpus is empty")


def test_downsample_keeps_a_bounded_stable_subset_with_the_last_point():
    cols = {"step": list(range(1000)), "loss": [float(i) for i in range(1000)]}
    small = downsample(cols, 100)
    assert 50 <= len(small["step"]) <= 101 and small["step"][-1] == 999
    assert small["step"][:3] == [0, 16, 32] and small["loss"][1] == 16.0  # columns aligned
    grown = downsample({k: v + [None] for k, v in cols.items()}, 100)
    assert grown["step"][:-1] == small["step"][:-1]  # the same points as the series grows
    assert downsample(cols, 2000) == cols


def test_a_killed_server_takes_its_workers_with_it(tmp_path):
    """If the server process dies without cleaning up, its jobs do not run on as orphans."""
    import subprocess

    marker = tmp_path / "worker.pid"
    script = (
        "import functools, os, sys, time\n"
        f"sys.path[:0] = [{str(Path(sj.__file__).parent)!r}]\n"
        "import sample_jobs as sj\n"
        "from lmcore.app.jobs import JobRegistry, Slots\n"
        f"job = JobRegistry(slots=Slots(1)).submit('x', functools.partial(sj.ignores_stop, "
        f"marker={str(marker)!r}))\n"
        "while not os.path.exists(" + repr(str(marker)) + "): time.sleep(0.01)\n"
        "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    pid = int(marker.read_text())
    _wait_for(lambda: _gone(pid), timeout=10)


def test_a_page_thread_may_submit(monkeypatch):
    """Streamlit runs scripts in threads: submitting from one works like from the main one."""
    out = {}

    def page():
        out["job"] = JobRegistry(slots=Slots(1)).submit("t", sj.report)

    t = threading.Thread(target=page)
    t.start()
    t.join()
    assert out["job"].wait(WAIT) and out["job"].status == "done"


def test_a_function_from_a_script_is_refused_at_submit():
    """A page is run as __main__: its functions pickle by a name a worker cannot import."""
    def body(ctx):
        return 1

    body.__module__ = "__main__"
    body.__qualname__ = "body"
    with pytest.raises(TypeError, match="defined in a script"):
        JobRegistry(slots=Slots(1)).submit("page", functools.partial(body))


def test_torch_results_come_back_by_value_after_the_worker_exited():
    import torch

    job = JobRegistry(slots=Slots(1)).submit("t", sj.returns_torch)
    assert job.wait(WAIT) and job.status == "done", job.error
    t, lin = job.result
    assert torch.equal(t, torch.arange(6.0).reshape(2, 3))
    torch.manual_seed(0)
    assert torch.equal(lin.weight, torch.nn.Linear(3, 2).weight)
