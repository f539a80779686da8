"""The job registry without a running app: submit, progress, series, stop, failure, cap, limit."""

from __future__ import annotations

import threading
import time

import pytest

from lmcore.app.jobs import JobRegistry, Slots


def _wait_status(job, status, timeout=5.0):
    deadline = time.monotonic() + timeout
    while job.status != status and time.monotonic() < deadline:
        time.sleep(0.005)
    assert job.status == status


def test_submit_runs_in_background_and_reports():
    reg = JobRegistry(slots=Slots(2))
    main = threading.get_ident()

    def work(ctx):
        assert threading.get_ident() != main
        for i in range(5):
            ctx.log("loss", step=i, train=10.0 - i)
            ctx.progress((i + 1) / 5, f"step {i + 1}")
        ctx.log("loss", step=5, valid=4.5)  # a new field pads older points with None
        ctx.set("sample", "hello")
        return 42

    job = reg.submit("train", work)
    assert job.wait(5)
    assert job.status == "done" and job.result == 42 and job.error is None
    assert job.progress == 1.0 and job.eta_s is None
    snap = job.snapshot()
    assert snap["loss"]["step"] == [0, 1, 2, 3, 4, 5]
    assert snap["loss"]["train"] == [10.0, 9.0, 8.0, 7.0, 6.0, None]
    assert snap["loss"]["valid"] == [None] * 5 + [4.5]
    assert job.get("sample") == "hello"
    assert reg.latest("train") is job and reg.jobs() == [job]
    snap["loss"]["step"].append(99)  # a snapshot is a copy
    assert len(job.snapshot()["loss"]["step"]) == 6


def test_eta_from_progress():
    reg = JobRegistry(slots=Slots(1))
    go = threading.Event()

    def work(ctx):
        time.sleep(0.05)
        ctx.progress(0.5)
        go.wait(5)

    job = reg.submit("eta", work)
    deadline = time.monotonic() + 5
    while job.progress < 0.5 and time.monotonic() < deadline:
        time.sleep(0.005)
    before = job.elapsed_s
    eta = job.eta_s
    after = job.elapsed_s
    assert eta is not None and before >= 0.05  # halfway: as long again as it took so far
    assert before - 1e-3 <= eta <= after + 1e-3
    go.set()
    assert job.wait(5) and job.status == "done"


def test_stop_sets_event_and_status_stopped():
    reg = JobRegistry(slots=Slots(1))
    steps = []

    def work(ctx):
        while not ctx.stop.is_set():
            steps.append(1)
            time.sleep(0.002)
        return len(steps)

    job = reg.submit("loop", work)
    deadline = time.monotonic() + 5
    while not steps and time.monotonic() < deadline:  # the loop is running
        time.sleep(0.002)
    assert job.status == "running"
    job.stop()
    assert job.wait(5)
    assert job.status == "stopped" and job.stop_reason == "requested"
    assert job.result == len(steps) > 0


def test_exception_becomes_failed_with_readable_error():
    reg = JobRegistry(slots=Slots(1))

    def boom(ctx):
        raise RuntimeError("the model diverged (loss is NaN)")

    job = reg.submit("bad", boom)
    assert job.wait(5)
    assert job.status == "failed"
    assert job.error == "RuntimeError: the model diverged (loss is NaN)"
    # a failed job frees its slot: the next one runs
    ok = reg.submit("good", lambda ctx: "fine")
    assert ok.wait(5) and ok.result == "fine"


def test_cap_makes_extra_jobs_wait_for_a_slot():
    slots = Slots(1)
    a_reg, b_reg = JobRegistry(slots=slots), JobRegistry(slots=slots)  # two sessions
    release = threading.Event()
    first = a_reg.submit("first", lambda ctx: release.wait(5))
    _wait_status(first, "running")
    second = b_reg.submit("second", lambda ctx: "ran")
    time.sleep(0.1)
    assert second.status == "waiting"
    assert "1 of 1" in b_reg.waiting_reason()
    release.set()
    assert second.wait(5) and second.status == "done" and second.result == "ran"


def test_waiting_job_can_be_cancelled():
    slots = Slots(1)
    reg = JobRegistry(slots=slots)
    release = threading.Event()
    first = reg.submit("first", lambda ctx: release.wait(5))
    _wait_status(first, "running")
    ran = []
    second = reg.submit("second", lambda ctx: ran.append(1))
    second.stop()
    assert second.wait(5) and second.status == "stopped" and not ran
    release.set()
    assert first.wait(5)
    assert slots.running == 0


def test_time_limit_stops_job_and_names_the_limit():
    reg = JobRegistry(slots=Slots(1), max_seconds=0.1)

    def forever(ctx):
        while not ctx.stop.is_set():
            time.sleep(0.005)

    job = reg.submit("slow", forever)
    assert job.wait(5)
    assert job.status == "stopped"
    assert "max_job_seconds" in job.message and "LMCORE_MAX_JOB_SECONDS" in job.message


def test_process_cap_reads_settings(monkeypatch):
    monkeypatch.setenv("LMCORE_MAX_JOBS", "3")
    assert Slots().limit == 3


def test_stop_all_stops_every_job():
    reg = JobRegistry(slots=Slots(4))

    def loop(ctx):
        while not ctx.stop.is_set():
            time.sleep(0.002)

    jobs = [reg.submit(f"j{i}", loop) for i in range(3)]
    for j in jobs:
        _wait_status(j, "running")
    reg.stop_all(wait=5)
    assert [j.status for j in jobs] == ["stopped"] * 3


@pytest.mark.parametrize("frac,expected", [(-1, 0.0), (0.25, 0.25), (7, 1.0)])
def test_progress_is_clamped(frac, expected):
    reg = JobRegistry(slots=Slots(1))
    seen = []

    def work(ctx):
        ctx.progress(frac)
        seen.append(reg.latest("p").progress)

    assert reg.submit("p", work).wait(5)
    assert seen == [expected]


class Stopped(Exception):
    """What a cooperative loop raises when it notices its stop event."""


def test_exception_raised_because_of_stop_is_stopped_not_failed():
    reg = JobRegistry(slots=Slots(1))
    running = threading.Event()

    def loop(ctx):
        running.set()
        while True:
            if ctx.stop.is_set():
                raise Stopped("gave up at the next check")
            time.sleep(0.002)

    job = reg.submit("coop", loop)
    assert running.wait(5)
    job.stop()
    assert job.wait(5)
    assert job.status == "stopped" and job.error is None
    assert job.message == "stopped by request"
    # the same exception without a stop request is a failure
    bad = reg.submit("bad", lambda ctx: (_ for _ in ()).throw(Stopped("no stop was asked")))
    assert bad.wait(5) and bad.status == "failed" and "no stop was asked" in bad.error


def test_exception_after_the_time_limit_names_the_limit():
    reg = JobRegistry(slots=Slots(1), max_seconds=0.05)

    def loop(ctx):
        while not ctx.stop.is_set():
            time.sleep(0.002)
        raise Stopped("out of time")

    job = reg.submit("slow", loop)
    assert job.wait(5)
    assert job.status == "stopped" and "max_job_seconds" in job.message
