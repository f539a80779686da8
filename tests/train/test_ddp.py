"""Data-parallel training under torchrun (gloo, 2 CPU ranks): the same losses as one process,
rank 0 records the run with its world size, --resume, a dying rank, two nodes on loopback.

Tolerance: losses agree within 1e-5 relative. The two ranks compute the same global batch
(each its half of the rows) and DDP averages their gradients, so the only difference from one
process is float32 rounding in a different summation order (two half-batch means and an
all-reduce instead of one mean): about 1 ulp of the loss per step, which Adam's normalised
steps carry forward but do not amplify over a few steps (measured: 5e-7 absolute).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from lmcore.runs.store import RunStore

pytestmark = pytest.mark.slow
WORDS = "the cat sat on mat dog ran far away and then came back home".split()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def corpus(tmp_path) -> Path:
    import random

    rng = random.Random(0)
    f = tmp_path / "c.txt"
    f.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(12))
                           for _ in range(3000)), encoding="utf-8")
    return f


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", LMCORE_DDP_TIMEOUT_S="30",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    env.update(extra)
    return env


def _args(corpus: Path, log: Path, out: Path, steps: int = 6, *more: str) -> list[str]:
    return ["-m", "lmcore", "train", "--corpus", str(corpus), "--layers", "1", "--heads", "2",
            "--width", "32", "--context", "32", "--batch-size", "8", "--steps", str(steps),
            "--eval-every", "0", "--quiet", "--log-json", str(log), "--out", str(out), *more]


def _torchrun(n: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
            "--master-addr", "127.0.0.1", "--master-port", str(_port()), *args]


def _losses(log: Path) -> dict[int, float]:
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return {e["step"]: e["loss"] for e in events if e["event"] == "step"}


def _run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


def test_two_ranks_match_one_process_and_rank0_records(corpus, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    r1 = _run([sys.executable, *_args(corpus, one, tmp_path / "m1")])
    assert r1.returncode == 0, r1.stderr
    r2 = _run(_torchrun(2, *_args(corpus, two, tmp_path / "m2")))
    assert r2.returncode == 0, r2.stderr
    a, b = _losses(one), _losses(two)
    assert sorted(a) == sorted(b) == list(range(1, 7))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-5), step
    runs = RunStore().list()
    assert len(runs) == 2  # one per launch: rank 1 records nothing
    ddp = next(r for r in runs if r.config["world_size"] == 2)
    assert ddp.status == "done" and Path(ddp.checkpoint, "model.safetensors").is_file()
    assert "on 2 ranks" in r2.stdout


def test_resume_under_ddp_continues_with_the_same_losses(corpus, tmp_path):
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    assert _run(_torchrun(2, *_args(corpus, full, tmp_path / "a", 6))).returncode == 0
    r = _run(_torchrun(2, *_args(corpus, part, tmp_path / "b", 3)))
    assert r.returncode == 0, r.stderr
    r = _run(_torchrun(2, *_args(corpus, part, tmp_path / "b", 6, "--resume")))
    assert r.returncode == 0, r.stderr
    a, b = _losses(full), _losses(part)
    for step in (4, 5, 6):
        assert b[step] == pytest.approx(a[step], rel=1e-5), step


def test_a_dying_rank_stops_the_others_and_the_run_is_failed(corpus, tmp_path):
    log = tmp_path / "log.jsonl"
    proc = subprocess.Popen(_torchrun(2, *_args(corpus, log, tmp_path / "m", 5000)),
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and (not log.exists() or len(_losses(log)) < 2):
            time.sleep(0.5)
        assert log.exists() and len(_losses(log)) >= 2, "training never started"
        victims = [p for p in psutil.Process(proc.pid).children(recursive=True)
                   if p.environ().get("RANK") == "1"]
        assert victims, "no rank-1 process found"
        victims[0].send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    [run] = RunStore().list()
    assert run.status == "failed", (run.status, run.error, err[-2000:])
    assert run.error and ("rank" in run.error or "SIGTERM" in run.error
                          or "process died" in run.error)


def test_two_nodes_on_loopback_make_one_world(corpus, tmp_path):
    port = _port()
    cmds = [[sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
             "--nproc-per-node", "1", "--rdzv-backend", "c10d",
             "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "lmcore-test",
             *_args(corpus, tmp_path / f"n{i}.jsonl", tmp_path / "m")] for i in range(2)]
    procs = [subprocess.Popen(c, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for c in cmds]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-1500:] for r in results]
    [run] = RunStore().list()
    assert run.status == "done" and run.config["world_size"] == 2
