"""Attention profiling: peak-memory method, naive T² prediction, sweep stopping, saved bytes."""

from __future__ import annotations

import torch

from lmcore.models.attention import tiled_attention
from lmcore.models.attention_profile import (
    SMALL_MMAP,
    measure_cell_subprocess,
    peak_bytes,
    predict_naive_peak,
    predict_peak,
    saved_for_backward,
    set_mmap_threshold,
    sweep,
)

MIB = 2**20


def test_peak_bytes_sees_a_temporary_allocation():
    def alloc():
        x = torch.ones(16 * MIB // 4)  # 16 MiB, touched, then freed
        return float(x[-1])

    try:
        peak = peak_bytes(alloc)
    finally:
        set_mmap_threshold(32 * MIB)
    assert 15 * MIB <= peak <= 24 * MIB


def test_naive_prediction_recovers_a_quadratic_and_falls_back_to_the_t2_term():
    pts = [(T, 3 * T * T + 1000 * T) for T in (64, 128, 256)]
    assert abs(predict_naive_peak(1024, measured=pts) - (3 * 1024**2 + 1000 * 1024)) < 10
    assert predict_naive_peak(100) == 5 * 1 * 4 * 100 * 100 * 4  # 5 live T×T float32, H=4
    assert predict_peak("tiled", 2048, [(512, 1000), (1024, 2000)]) == 4000
    assert predict_peak("sdpa", 2048, []) == 0


def test_sweep_stops_naive_before_its_predicted_peak_passes_the_limit():
    events = sweep(
        [32, 64, 128], ["naive", "tiled"], limit_bytes=300_000, fresh_process=False, repeats=1
    )
    set_mmap_threshold(32 * MIB)
    stopped = [e for e in events if e.kind == "stopped" and e.impl == "naive"]
    assert stopped and stopped[0].predicted > 300_000
    assert "exceeds the limit" in stopped[0].message
    ran = {(e.impl, e.T) for e in events if e.kind == "cell"}
    assert ("naive", 32) in ran and ("naive", 128) not in ran
    assert all(e.cell.fwd_ms > 0 for e in events if e.kind == "cell")


def test_saved_for_backward_counts_distinct_storages():
    q, k, v = (torch.randn(1, 2, 64, 8, requires_grad=True) for _ in range(3))
    rep = saved_for_backward(lambda: tiled_attention(q, k, v, causal=True))
    per = 2 * 64 * 8 * 4
    assert rep.total_bytes == 4 * per + 2 * 64 * 4  # q, k, v, O and the LSE
    assert rep.largest_numel == 2 * 64 * 8


def test_subprocess_cell_reports_json_measurements():
    cell = measure_cell_subprocess("tiled", 64, repeats=1, timeout=120)
    assert cell.impl == "tiled" and cell.T == 64
    assert cell.fwd_ms > 0 and cell.fwdbwd_ms > 0
    # the fresh gradients of q, k, v alone are 3 × 64 KiB; far below 8 MiB
    assert 3 * 4 * 64 * 64 * 4 <= cell.fwdbwd_peak < 8 * MIB
    assert SMALL_MMAP == 65536
