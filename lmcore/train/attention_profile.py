"""What attention costs: median time, exact peak memory and bytes saved for backward, per impl.

Memory is measured by `lmcore.train.memory` (DESIGN.md's method: VmHWM − VmRSS before, the
high-water mark reset, glibc's mmap threshold at 64 KiB): `measure_cell_subprocess` runs it in a
fresh process started with MALLOC_MMAP_THRESHOLD_=65536 (exact), `measure_cell` in this one
(good enough for a live plot; other threads add noise). On a CUDA GPU (`device="cuda"`, only
when asked and one exists) peaks come from torch's caching allocator and every timing is
bracketed by `torch.cuda.synchronize()` (kernels run asynchronously).
Run as `python -m lmcore.train.attention_profile --impl tiled --T 4096` to measure one cell.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from lmcore.models.attention import attention
from lmcore.train.memory import (
    BIG_MMAP,
    SMALL_MMAP,
    peak_bytes,
    set_mmap_threshold,
    synchronize,
)

DEVICES = ("cpu", "cuda")


class DeviceError(ValueError):
    """A measurement was asked for on a device this machine does not have."""


def check_device(device: str | torch.device) -> torch.device:
    """The torch device for 'cpu' or 'cuda'; a clear DeviceError when CUDA is asked for but absent."""
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    if kind not in DEVICES:
        raise DeviceError(f"device must be one of {', '.join(DEVICES)}, got {str(device)!r}")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:  # e.g. 'cuda:x'
        raise DeviceError(f"not a device name: {str(device)!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        built = torch.version.cuda
        why = (
            f"this PyTorch ({torch.__version__}) is built without CUDA"
            if built is None
            else f"this PyTorch (CUDA {built}) sees no GPU (driver, CUDA_VISIBLE_DEVICES?)"
        )
        raise DeviceError(
            f"CUDA was asked for but torch.cuda.is_available() is False: {why}. "
            "Leave the device at 'cpu' (the default) to measure on the CPU."
        )
    return dev


@dataclass(frozen=True)
class CellResult:
    """One (implementation, T) measurement: medians in ms, peaks in bytes."""

    impl: str
    T: int
    fwd_ms: float
    fwdbwd_ms: float
    fwd_peak: int
    fwdbwd_peak: int


def make_inputs(
    T: int,
    *,
    B: int = 1,
    H: int = 4,
    D: int = 64,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random q, k, v shaped (B, H, T, D), reproducible by seed (drawn on the CPU, then moved)."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, T, D, generator=g, dtype=dtype).to(device) for _ in range(3))


def _calls(
    impl: str,
    T: int,
    *,
    B: int,
    H: int,
    D: int,
    causal: bool,
    device: torch.device = torch.device("cpu"),
    **kwargs,
) -> tuple[Callable[[], object], Callable[[], None], Callable[[], None]]:
    """(forward, forward+backward, clear_grads) closures on fresh random inputs."""
    if impl != "tiled":  # tile sizes only mean something to the tiled implementation
        kwargs = {k: v for k, v in kwargs.items() if k not in ("block_q", "block_k")}
    q, k, v = make_inputs(T, B=B, H=H, D=D, device=device)
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    dout = torch.randn(B, H, T, D, generator=torch.Generator().manual_seed(1)).to(device)

    def fwd():
        with torch.no_grad():
            return attention(q, k, v, impl=impl, causal=causal, **kwargs)

    def clear_grads():
        for t in (qg, kg, vg):
            t.grad = None

    def fwdbwd():
        clear_grads()
        attention(qg, kg, vg, impl=impl, causal=causal, **kwargs).backward(dout)

    return fwd, fwdbwd, clear_grads


def measure_peaks(
    impl: str,
    T: int,
    *,
    B: int = 1,
    H: int = 4,
    D: int = 64,
    causal: bool = True,
    backward: bool = True,
    device: str | torch.device = "cpu",
    **kwargs,
) -> tuple[int, int]:
    """Peak bytes of one forward and of one forward+backward (0 when backward is False).

    CPU: process RSS; CUDA: torch's allocator peak (both `lmcore.train.memory.peak_bytes`).
    """
    dev = check_device(device)
    fwd, fwdbwd, clear = _calls(impl, T, B=B, H=H, D=D, causal=causal, device=dev, **kwargs)
    fwd_peak = peak_bytes(fwd, device=dev)
    return fwd_peak, (peak_bytes(fwdbwd, setup=clear, device=dev) if backward else 0)


def measure_times(
    impls: list[str],
    T: int,
    *,
    B: int = 1,
    H: int = 4,
    D: int = 64,
    causal: bool = True,
    repeats: int = 5,
    backward: bool = True,
    device: str | torch.device = "cpu",
    **kwargs,
) -> dict[str, tuple[float, float]]:
    """Median ms of forward and forward+backward per impl, interleaved so load hits all alike.

    On a GPU each call is bracketed by `torch.cuda.synchronize()`, so the time covers the
    kernels and not only their launch.
    """
    dev = check_device(device)
    calls = {i: _calls(i, T, B=B, H=H, D=D, causal=causal, device=dev, **kwargs) for i in impls}
    times: dict[str, tuple[list[float], list[float]]] = {i: ([], []) for i in impls}
    for r in range(max(1, repeats) + 1):  # round 0 warms up
        for i, (fwd, fwdbwd, _) in calls.items():
            for j, fn in enumerate((fwd, fwdbwd) if backward else (fwd,)):
                synchronize(dev)
                t0 = time.perf_counter()
                fn()
                synchronize(dev)
                if r:
                    times[i][j].append(time.perf_counter() - t0)
    return {
        i: (statistics.median(f) * 1e3, statistics.median(b) * 1e3 if b else float("nan"))
        for i, (f, b) in times.items()
    }


def measure_cell(
    impl: str, T: int, *, repeats: int = 5, backward: bool = True, **kwargs
) -> CellResult:
    """Peak memory, then median time, of forward and forward+backward for one impl and T."""
    fwd_peak, fwdbwd_peak = measure_peaks(impl, T, backward=backward, **kwargs)
    set_mmap_threshold(BIG_MMAP)  # time with ordinary heap reuse, not page faults per call
    (fwd_ms, fwdbwd_ms) = measure_times([impl], T, repeats=repeats, backward=backward, **kwargs)[
        impl
    ]
    return CellResult(impl, T, fwd_ms, fwdbwd_ms, fwd_peak, fwdbwd_peak)


def _run_json(args: list[str], *, small_mmap: bool, timeout: float) -> list[dict]:
    """Run this module in a fresh interpreter; return its JSON lines."""
    cmd = [sys.executable, "-m", "lmcore.train.attention_profile", *args]
    env = dict(os.environ)
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if small_mmap:
        env["MALLOC_MMAP_THRESHOLD_"] = str(SMALL_MMAP)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {args} failed: {proc.stderr.strip()[-2000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _opts(kwargs: dict) -> list[str]:
    """Command-line options for the subprocess side: numbers as ints, names (device) as is."""
    return [
        a
        for key, value in kwargs.items()
        for a in (f"--{key}", value if isinstance(value, str) else str(int(value)))
    ]


def measure_cell_subprocess(impl: str, T: int, *, timeout: float = 600.0, **kwargs) -> CellResult:
    """`measure_cell` in a fresh Python process started with MALLOC_MMAP_THRESHOLD_=65536."""
    if "device" in kwargs:
        kwargs["device"] = str(check_device(kwargs["device"]))
    args = ["--mode", "cell", "--impl", impl, "--T", str(T), *_opts(kwargs)]
    return CellResult(**_run_json(args, small_mmap=True, timeout=timeout)[0])


def measure_peaks_subprocess(
    impl: str, T: int, *, timeout: float = 600.0, **kwargs
) -> tuple[int, int]:
    """`measure_peaks` in a fresh process with MALLOC_MMAP_THRESHOLD_=65536 (exact peaks)."""
    if "device" in kwargs:
        kwargs["device"] = str(check_device(kwargs["device"]))  # refuse here, not in the child
    args = ["--mode", "peaks", "--impl", impl, "--T", str(T), *_opts(kwargs)]
    row = _run_json(args, small_mmap=True, timeout=timeout)[0]
    return row["fwd_peak"], row["fwdbwd_peak"]


def measure_times_subprocess(
    impls: list[str], T: int, *, timeout: float = 600.0, **kwargs
) -> dict[str, tuple[float, float]]:
    """`measure_times` in a fresh process with glibc's default heap behaviour.

    `threads=N` among the keyword arguments sets torch's intra-op threads in that process.
    """
    if "device" in kwargs:
        kwargs["device"] = str(check_device(kwargs["device"]))
    args = ["--mode", "times", "--impl", ",".join(impls), "--T", str(T), *_opts(kwargs)]
    rows = _run_json(args, small_mmap=False, timeout=timeout)
    return {r["impl"]: (r["fwd_ms"], r["fwdbwd_ms"]) for r in rows}


def predict_naive_peak(
    T: int,
    *,
    B: int = 1,
    H: int = 4,
    elem: int = 4,
    backward: bool = True,
    measured: list[tuple[int, int]] | None = None,
) -> int:
    """Predict naive attention's peak bytes at T from its T² term.

    With two or more measured (T, peak) points, fit peak ≈ a·T² + b·T by least squares;
    otherwise assume 3 (forward) or 5 (forward+backward) live T×T tensors per head.
    """
    pts = [(t, p) for t, p in (measured or []) if t > 0]
    if len(pts) >= 2:
        s44 = sum(t**4 for t, _ in pts)
        s33 = sum(t**3 for t, _ in pts)
        s22 = sum(t**2 for t, _ in pts)
        y2 = sum(p * t**2 for t, p in pts)
        y1 = sum(p * t for t, p in pts)
        det = s44 * s22 - s33 * s33
        if det > 0:
            a = (y2 * s22 - y1 * s33) / det
            b = (s44 * y1 - s33 * y2) / det
            if a > 0:
                return int(a * T * T + max(b, 0.0) * T)
    return int((5 if backward else 3) * B * H * T * T * elem)


@dataclass(frozen=True)
class SweepEvent:
    """One step of a sequence-length sweep: a measured cell, or an implementation stopped.

    `done` of `total` (implementation, T) cells are settled after this event: measured, or
    skipped because their implementation was stopped, so `progress` reaches 1 at the end.
    """

    kind: str  # 'cell' | 'stopped'
    impl: str
    T: int
    cell: CellResult | None = None
    predicted: int | None = None  # predicted forward+backward peak, bytes
    message: str = ""
    done: int = 0
    total: int = 0

    @property
    def progress(self) -> float:
        """Fraction of the sweep's cells settled, in [0, 1]."""
        return self.done / self.total if self.total else 1.0


def predict_peak(
    impl: str, T: int, points: list[tuple[int, int]], *, B: int = 1, H: int = 4, elem: int = 4
) -> int:
    """Predicted forward+backward peak at T: naive from its T² fit, the others linear in T."""
    if impl == "naive":
        return predict_naive_peak(T, B=B, H=H, elem=elem, measured=points)
    if not points:
        return 0
    t0, p0 = max(points)
    return int(p0 * T / t0)


def sweep(
    Ts: list[int],
    impls: list[str],
    *,
    limit_bytes: int,
    fresh_process: bool = True,
    repeats: int = 3,
    B: int = 1,
    H: int = 4,
    D: int = 64,
    device: str = "cpu",
    stop: Callable[[], bool] | None = None,
    on_event: Callable[[SweepEvent], None] | None = None,
) -> list[SweepEvent]:
    """Measure every impl at every T (ascending), stopping an impl before it would pass the limit.

    Before each cell the forward+backward peak is predicted from the cells measured so far
    (naive: fit a·T² + b·T; sdpa and tiled: linear); an implementation whose prediction, or
    measured peak, exceeds `limit_bytes` is stopped for this and every longer T, and those
    cells count as settled in each event's `done` / `progress`.
    """
    device = str(check_device(device))
    events: list[SweepEvent] = []
    points: dict[str, list[tuple[int, int]]] = {i: [] for i in impls}
    active = list(impls)
    Ts = sorted(set(Ts))
    total, done = len(Ts) * len(impls), 0

    def emit(ev: SweepEvent) -> None:
        events.append(ev)
        if on_event is not None:
            on_event(ev)

    def stopped(impl: str, T: int, predicted: int, when: str, what: str, peak: int) -> None:
        emit(SweepEvent("stopped", impl, T, predicted=predicted, done=done, total=total,
                        message=f"{impl} stopped {when} T={T}: its {what} peak "
                                f"{peak / 2**20:,.1f} MiB exceeds the limit "
                                f"{limit_bytes / 2**20:,.1f} MiB"))

    for n, T in enumerate(Ts):
        for impl in list(active):
            if stop is not None and stop():
                return events
            predicted = predict_peak(impl, T, points[impl], B=B, H=H)
            if predicted > limit_bytes:
                active.remove(impl)
                done += len(Ts) - n  # this T and every longer one are skipped
                stopped(impl, T, predicted, "before", "predicted", predicted)
                continue
            kw = {"B": B, "H": H, "D": D, "repeats": repeats, "device": device}
            measure = measure_cell_subprocess if fresh_process else measure_cell
            cell = measure(impl, T, **kw)
            points[impl].append((T, cell.fwdbwd_peak))
            done += 1
            emit(SweepEvent("cell", impl, T, cell=cell, predicted=predicted or None, done=done,
                            total=total))
            if cell.fwdbwd_peak > limit_bytes:
                active.remove(impl)
                done += len(Ts) - n - 1  # every longer T is skipped
                stopped(impl, T, predicted, "after", "measured", cell.fwdbwd_peak)
    return events


def main(argv: list[str] | None = None) -> None:
    """Measure in this process and print JSON lines (the subprocess side of the helpers above)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("cell", "peaks", "times"), default="cell")
    ap.add_argument("--impl", required=True, help="one impl, or several comma-separated (times)")
    ap.add_argument("--T", type=int, required=True)
    for name, default in (("B", 1), ("H", 4), ("D", 64), ("repeats", 5), ("backward", 1)):
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--causal", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--block_q", type=int, default=None)
    ap.add_argument("--block_k", type=int, default=None)
    ap.add_argument("--device", choices=DEVICES, default="cpu")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)  # a fresh process: nothing else is affected
    kw = {key: getattr(a, key) for key in ("block_q", "block_k") if getattr(a, key)}
    kw.update(B=a.B, H=a.H, D=a.D, causal=bool(a.causal), backward=bool(a.backward))
    kw["device"] = a.device
    if a.mode == "times":
        for impl, (f, b) in measure_times(a.impl.split(","), a.T, repeats=a.repeats, **kw).items():
            print(json.dumps({"impl": impl, "fwd_ms": f, "fwdbwd_ms": b}))
    elif a.mode == "peaks":
        f, b = measure_peaks(a.impl, a.T, **kw)
        print(json.dumps({"impl": a.impl, "fwd_peak": f, "fwdbwd_peak": b}))
    else:
        print(json.dumps(asdict(measure_cell(a.impl, a.T, repeats=a.repeats, **kw))))


if __name__ == "__main__":
    main()
