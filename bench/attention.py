"""Attention cost, side by side: naive vs torch sdpa vs lmcore's tiled FlashAttention on the CPU.

B=1, H=4, D=64, causal, float32. For each T: median forward and forward+backward time, measured
in one fresh process per T with the three implementations interleaved round by round (so load
from other processes hits them alike), and peak memory measured in a fresh process per
(implementation, T) cell with the DESIGN.md method (MALLOC_MMAP_THRESHOLD_=65536, warm up,
write 5 to /proc/self/clear_refs, VmHWM − VmRSS before). Naive is skipped where its T² term
predicts more than --naive-limit-mib.

    .venv/bin/python bench/attention.py            # T = 512 ... 8192
    .venv/bin/python bench/attention.py --quick    # T = 256, 512, few repeats (CI)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lmcore.models.attention_profile import (  # noqa: E402
    measure_peaks_subprocess,
    measure_times_subprocess,
    predict_naive_peak,
)

IMPLS = ("sdpa", "tiled", "naive")
MIB = 2**20


def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b <= 0 else f"{a / b:.2f}"


def run(
    Ts: list[int],
    repeats: int,
    naive_limit_mib: float,
    block_q: int | None,
    block_k: int | None,
    threads: int | None = None,
) -> dict:
    """Measure every cell; return {T: {impl: {fwd_ms, fwdbwd_ms, fwd_mib, fwdbwd_mib}}}."""
    blocks = {k: v for k, v in (("block_q", block_q), ("block_k", block_k)) if v}
    results: dict[int, dict[str, dict[str, float] | None]] = {}
    naive_points: list[tuple[int, int]] = []
    for T in Ts:
        predicted = predict_naive_peak(T, measured=naive_points)
        impls = [i for i in IMPLS if i != "naive" or predicted <= naive_limit_mib * MIB]
        extra = {"threads": threads} if threads else {}
        times = measure_times_subprocess(impls, T, repeats=repeats, **blocks, **extra)
        row: dict[str, dict[str, float] | None] = {}
        for impl in IMPLS:
            if impl not in impls:
                row[impl] = None
                continue
            fwd_peak, fwdbwd_peak = measure_peaks_subprocess(impl, T, **blocks)
            if impl == "naive":
                naive_points.append((T, fwdbwd_peak))
            row[impl] = {
                "fwd_ms": times[impl][0],
                "fwdbwd_ms": times[impl][1],
                "fwd_mib": fwd_peak / MIB,
                "fwdbwd_mib": fwdbwd_peak / MIB,
            }
        results[T] = row
        if row["naive"] is None:
            print(
                f"note: naive skipped at T={T}: predicted peak {predicted / MIB:,.0f} MiB > "
                f"--naive-limit-mib {naive_limit_mib:,.0f}",
                file=sys.stderr,
            )
    return results


def table(results: dict, key: str, title: str, unit: str) -> str:
    """One Markdown table: the three implementations and the two ratios against sdpa."""
    lines = [
        f"### {title}",
        "",
        f"| T | sdpa {unit} | tiled {unit} | naive {unit} | tiled/sdpa | naive/sdpa |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for T, row in results.items():
        v = {i: (row[i][key] if row[i] else None) for i in IMPLS}
        lines.append(
            f"| {T} | {_fmt(v['sdpa'])} | {_fmt(v['tiled'])} | {_fmt(v['naive'])} | "
            f"{_ratio(v['tiled'], v['sdpa'])} | {_ratio(v['naive'], v['sdpa'])} |"
        )
    return "\n".join(lines)


def growth(results: dict) -> str:
    """How tiled forward+backward time and memory grow from one T to the next (×2 = linear)."""
    Ts = list(results)
    lines = [
        "### Tiled growth per doubling of T",
        "",
        "| T | fwd+bwd time × | fwd+bwd memory × |",
        "|---:|---:|---:|",
    ]
    for a, b in zip(Ts, Ts[1:], strict=False):
        ra, rb = results[a]["tiled"], results[b]["tiled"]
        lines.append(
            f"| {a}→{b} | {_ratio(rb['fwdbwd_ms'], ra['fwdbwd_ms'])} | "
            f"{_ratio(rb['fwdbwd_mib'], ra['fwdbwd_mib'])} |"
        )
    lines.append("")
    lines.append(
        "Exact attention does T² work in every implementation, so time grows ~4× per doubling; "
        "tiled memory is O(T·d), so it grows ≤ 2× (fixed buffers make it less at small T)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="naive vs sdpa vs tiled attention on the CPU")
    ap.add_argument("--quick", action="store_true", help="T=256,512 and 2 repeats (< 60 s)")
    ap.add_argument("--T", type=int, nargs="*", default=None, help="sequence lengths")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--naive-limit-mib", type=float, default=6144.0)
    ap.add_argument("--block-q", type=int, default=None)
    ap.add_argument("--block-k", type=int, default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for the timings (1 = robust when cores are shared)",
    )
    a = ap.parse_args(argv)
    Ts = a.T or ([256, 512] if a.quick else [512, 1024, 2048, 4096, 8192])
    repeats = a.repeats or (2 if a.quick else 5)
    t0 = time.perf_counter()
    results = run(Ts, repeats, a.naive_limit_mib, a.block_q, a.block_k, a.threads)
    threads = f", {a.threads} thread(s)" if a.threads else ""
    print(
        f"## Attention on the CPU: B=1, H=4, D=64, causal, float32 "
        f"(medians of {repeats}{threads})\n"
    )
    print(table(results, "fwd_ms", "Forward time", "ms"), end="\n\n")
    print(table(results, "fwdbwd_ms", "Forward+backward time", "ms"), end="\n\n")
    print(table(results, "fwd_mib", "Forward peak memory", "MiB"), end="\n\n")
    print(table(results, "fwdbwd_mib", "Forward+backward peak memory", "MiB"), end="\n\n")
    if len(Ts) > 1:
        print(growth(results), end="\n\n")
    print(
        "Time: one fresh process per T, implementations interleaved per round. Memory: one "
        "fresh process per cell, MALLOC_MMAP_THRESHOLD_=65536, VmHWM − VmRSS after "
        f"clear_refs. Total {time.perf_counter() - t0:.0f} s."
    )


if __name__ == "__main__":
    main()
