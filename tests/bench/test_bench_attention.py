"""bench/attention.py --quick runs in a subprocess and prints its tables with the right columns;
the targets table says met / missed by how much, with a why note per miss."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TARGETS = (
    "forward time, tiled/sdpa",
    "forward memory, tiled/sdpa",
    "forward+backward time, tiled/sdpa",
    "forward+backward memory, tiled/sdpa",
    "forward+backward memory, tiled/naive",
    "forward+backward memory growth per doubling, tiled",
)


def _bench(*args: str, timeout: float = 170) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "attention.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_attention", ROOT / "bench/attention.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.timeout(180)
def test_bench_attention_quick_prints_tables():
    proc = _bench("--quick")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for title in (
        "Forward time",
        "Forward+backward time",
        "Forward peak memory",
        "Forward+backward peak memory",
        "Tiled growth per doubling of T",
        "Targets for lmcore's tiled attention",
    ):
        assert f"### {title}" in out
    assert out.count("| T | sdpa ms | tiled ms | naive ms | tiled/sdpa | naive/sdpa |") == 2
    assert out.count("| T | sdpa MiB | tiled MiB | naive MiB | tiled/sdpa | naive/sdpa |") == 2
    rows = [line for line in out.splitlines() if line.startswith(("| 256 |", "| 512 |"))]
    assert len(rows) == 8
    for row in rows:  # every cell measured: numbers, positive
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(float(c) > 0 for c in cells[1:]), row
    # every target has a row; quick mode's T list cannot check the long-T ones, and says so
    targets = [line for line in out.splitlines() if line.startswith(TARGETS, 2)]
    assert [t.split(" | ")[0][2:] for t in targets] == list(TARGETS)
    assert sum("not measured (no T ≥ 2048 in this run)" in t for t in targets) == 2
    assert sum("not measured (T=4096 not in this run)" in t for t in targets) == 3
    growth = targets[-1]
    assert "256→512" in growth and ("met" in growth or "missed by" in growth)
    assert "thread(s)" in out.splitlines()[0]


@pytest.mark.timeout(120)
def test_bench_says_on_stdout_why_naive_was_skipped():
    proc = _bench("--T", "256", "--repeats", "1", "--naive-limit-mib", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Note: naive skipped at T=256: its predicted forward+backward peak 5 MiB" in out
    assert out.index("Note: naive skipped") > out.index("### Targets")  # under the tables
    assert "| 256 |" in out and "| — |" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_bench_refuses_cuda_without_a_gpu_with_a_clear_message():
    proc = _bench("--quick", "--device", "cuda", timeout=60)
    assert proc.returncode != 0
    assert "CUDA was asked for but torch.cuda.is_available() is False" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def _cells(fwd_ms, fwdbwd_ms, fwd_mib, fwdbwd_mib):
    return dict(fwd_ms=fwd_ms, fwdbwd_ms=fwdbwd_ms, fwd_mib=fwd_mib, fwdbwd_mib=fwdbwd_mib)


def test_targets_say_met_or_missed_by_how_much_and_why():
    bench = _load_bench()
    results = {
        2048: {"sdpa": _cells(10, 40, 3, 12), "tiled": _cells(12, 50, 4, 16), "naive": None},
        4096: {
            "sdpa": _cells(50, 200, 5, 20),
            "tiled": _cells(100, 400, 6, 30),  # forward 2.0x: missed by 33%
            "naive": _cells(800, 1700, 530, 800),
        },
        8192: {"sdpa": _cells(200, 800, 9, 40), "tiled": _cells(220, 900, 25, 70), "naive": None},
    }
    ctx = bench.Context("cpu", 2, 2, (0.5, 0.7), None, None)
    verdicts = {(v.target, v.T): v for v in bench.targets(results, [], ctx)}
    fwd = verdicts[("forward time, tiled/sdpa", "4096")]
    assert fwd.measured == 2.0 and fwd.verdict() == "missed by 33%"
    assert verdicts[("forward time, tiled/sdpa", "2048")].verdict() == "met"
    assert verdicts[("forward memory, tiled/sdpa", "8192")].verdict() == "missed by 39%"
    assert verdicts[("forward+backward time, tiled/sdpa", "4096")].verdict() == "met"
    assert verdicts[("forward+backward memory, tiled/sdpa", "4096")].verdict() == "met"
    naive = verdicts[("forward+backward memory, tiled/naive", "4096")]
    assert naive.measured == 30 / 800 and naive.verdict() == "met"
    growth = verdicts[("forward+backward memory growth per doubling, tiled", "4096→8192")]
    assert growth.measured == 70 / 30 and growth.verdict() == "missed by 6%"
    text = bench.targets_table(list(verdicts.values()))
    assert "| forward time, tiled/sdpa | 4096 | 2.000 | ≤ 1.5 | missed by 33% |" in text
    whys = [line for line in text.splitlines() if line.startswith("- why ")]
    assert len(whys) == 3  # one per miss
    assert any("tiles at T=4096" in w for w in whys)  # a quiet machine: the per-tile ops
    # on a loaded machine the why note names the load instead
    busy = bench.Context("cpu", 2, 2, (5.0, 6.5), None, None)
    assert "load average up to 6.5 on 2 cores" in bench._why_time(4096, "forward", busy)
    # naive skipped at 4096: its ratio is not measured, and the note says why
    results[4096]["naive"] = None
    notes = ["naive skipped at T=4096: its predicted peak ..."]
    naive = next(v for v in bench.targets(results, notes, ctx) if v.target.endswith("naive"))
    assert naive.verdict() == "not measured (naive skipped at T=4096)"
