"""Attention profiling: peak-memory method, naive T² prediction, sweep stopping, saved bytes."""

from __future__ import annotations

import pytest
import torch

from lmcore.train import attention_profile
from lmcore.train.attention_profile import (
    SMALL_MMAP,
    CellResult,
    DeviceError,
    check_device,
    measure_cell_subprocess,
    measure_peaks,
    measure_times,
    measure_times_subprocess,
    predict_naive_peak,
    predict_peak,
    sweep,
)
from lmcore.train.memory import set_mmap_threshold

MIB = 2**20


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


def test_subprocess_cell_reports_json_measurements():
    cell = measure_cell_subprocess("tiled", 64, repeats=1, timeout=120)
    assert cell.impl == "tiled" and cell.T == 64
    assert cell.fwd_ms > 0 and cell.fwdbwd_ms > 0
    # the fresh gradients of q, k, v alone are 3 × 64 KiB; far below 8 MiB
    assert 3 * 4 * 64 * 64 * 4 <= cell.fwdbwd_peak < 8 * MIB
    assert SMALL_MMAP == 65536


def _fake_cell(peaks):
    """measure_cell stand-in: the forward+backward peak per (impl, T) from `peaks`."""

    def cell(impl, T, **kw):
        return CellResult(impl, T, 1.0, 2.0, peaks[(impl, T)] // 2, peaks[(impl, T)])

    return cell


def test_sweep_progress_counts_cells_skipped_after_a_stop(monkeypatch):
    """naive is stopped after its measured peak at T=64 passes the limit: its cells at 128
    and 256 are skipped, and progress still reaches 1 (6 of 8 cells measured)."""
    Ts = [32, 64, 128, 256]
    # predicted before measuring (5 T×T float32 at H=4): 80 KiB at 32, 320 KiB at 64
    peaks = {("naive", 32): 100, ("naive", 64): 10**6}
    peaks.update({("tiled", T): T for T in Ts})
    monkeypatch.setattr(attention_profile, "measure_cell", _fake_cell(peaks))
    seen = []
    events = sweep(Ts, ["naive", "tiled"], limit_bytes=400_000, fresh_process=False,
                   on_event=seen.append)
    assert seen == events
    assert [(e.kind, e.impl, e.T) for e in events if e.impl == "naive"] == [
        ("cell", "naive", 32), ("cell", "naive", 64), ("stopped", "naive", 64)]
    assert all(e.total == 8 for e in events)
    done = [e.done for e in events]
    assert done == sorted(done) and events[-1].progress == 1.0
    stop = next(e for e in events if e.kind == "stopped")
    assert stop.done == 2 + 1 + 2  # naive 32, 64, tiled 32, plus naive's 128 and 256 skipped


def test_sweep_progress_counts_cells_skipped_before_a_stop(monkeypatch):
    """A predicted stop (before measuring) skips that T too; progress ends at 1."""
    Ts = [32, 64, 128]
    peaks = {("naive", 32): 80_000, ("naive", 64): 320_000}  # quadratic: 1.28 MB at 128
    peaks.update({("sdpa", T): T for T in Ts})
    monkeypatch.setattr(attention_profile, "measure_cell", _fake_cell(peaks))
    events = sweep(Ts, ["naive", "sdpa"], limit_bytes=400_000, fresh_process=False)
    stopped = [e for e in events if e.kind == "stopped"]
    assert [(e.impl, e.T) for e in stopped] == [("naive", 128)]
    assert stopped[0].predicted > 400_000
    assert events[-1].progress == 1.0 and events[-1].done == events[-1].total == 6
    # a sweep stopped by the user ends below 1
    calls = iter([False, False, True])
    part = sweep(Ts, ["naive", "sdpa"], limit_bytes=400_000, fresh_process=False,
                 stop=lambda: next(calls))
    assert part[-1].progress == 2 / 6


def test_cuda_asked_for_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match=r"CUDA was asked for but torch.cuda.is_available\(\)"):
        check_device("cuda")
    for call in (
        lambda: measure_peaks("tiled", 64, device="cuda"),
        lambda: measure_times(["tiled"], 64, device="cuda"),
        lambda: measure_times_subprocess(["tiled"], 64, device="cuda"),
        lambda: sweep([64], ["tiled"], limit_bytes=MIB, device="cuda"),
    ):
        with pytest.raises(DeviceError, match="Leave the device at 'cpu'"):
            call()
    with pytest.raises(DeviceError, match="device must be one of cpu, cuda"):
        check_device("tpu")
    assert check_device("cpu") == torch.device("cpu")


def test_cpu_times_and_peaks_with_an_explicit_device():
    times = measure_times(["sdpa", "tiled"], 64, repeats=1, device="cpu")
    assert set(times) == {"sdpa", "tiled"} and all(f > 0 and b > 0 for f, b in times.values())
    fwd, fwdbwd = measure_peaks("tiled", 64, device="cpu")
    set_mmap_threshold(32 * MIB)
    assert 0 <= fwd < 8 * MIB and 3 * 64 * 64 * 4 * 4 <= fwdbwd < 8 * MIB
