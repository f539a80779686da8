"""bench/longtext.py --quick runs in a subprocess and prints both tables with sound numbers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_longtext", ROOT / "bench" / "longtext.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_timings_run_after_every_peak_pass_with_the_big_mmap_threshold(monkeypatch):
    """The peak pass sets glibc's threshold to 64 KiB; no timed call may run under it."""
    bench = _bench_module()
    events = []
    state = {"threshold": None}

    def fake_call(lm, ids, bounds, key):
        events.append(("call", key, state["threshold"]))
        return key

    def fake_peak(fn, warmup=True):
        state["threshold"] = 65536
        events.append(("peak",))
        fn()
        return 1

    def fake_set(nbytes):
        state["threshold"] = nbytes
        events.append(("mmap", nbytes))
        return True

    monkeypatch.setattr(bench, "_call", fake_call)
    monkeypatch.setattr(bench, "peak_bytes", fake_peak)
    monkeypatch.setattr(bench, "set_mmap_threshold", fake_set)
    rows = [("truncation", "tiled", 8, None), ("full", "tiled", 32, None)]
    out = bench.run(None, [], [], rows, repeats=3)
    assert all(len(out[k]["times"]) == 3 and out[k]["peak"] == 1 for k in rows)
    reset = events.index(("mmap", bench.BIG_MMAP))
    assert max(i for i, e in enumerate(events) if e[0] == "peak") < reset
    timed = events[reset + 1:]
    assert len(timed) == 3 * len(rows)
    assert all(e[0] == "call" and e[2] == bench.BIG_MMAP for e in timed)


def _rows(out: str, header: str) -> list[list[str]]:
    lines = out.splitlines()
    start = lines.index(header) + 2  # skip the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.mark.timeout(300)
def test_bench_longtext_quick_prints_tables():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "longtext.py"), "--quick"],
                          capture_output=True, text=True, timeout=290, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    header = ("| strategy | attention | window | stride | windows | tokens scored | bits/char | "
              "time ms | time vs full tiled | peak MiB | peak vs full tiled |")
    rows = _rows(out, header)
    assert [(r[0], r[1]) for r in rows] == [
        ("truncation", "tiled"), ("disjoint", "tiled"), ("sliding", "tiled"),
        ("sliding", "tiled"), ("full", "tiled"), ("full", "sdpa"), ("full", "naive")]
    by = {(r[0], r[1], r[3]): r for r in rows}
    T = int(by[("full", "tiled", "-")][5])
    assert int(by[("truncation", "tiled", "-")][5]) == int(rows[0][2]) < T
    assert all(int(r[5]) == T for r in rows[1:])  # every other strategy scores every token
    bpc = [float(r[6]) for r in rows]
    assert all(0 < b < 10 for b in bpc)
    full = [float(r[6]) for r in rows if r[0] == "full"]
    assert max(full) - min(full) < 1e-3  # tiled, sdpa and naive agree
    assert by[("full", "tiled", "-")][8] == "1.00x" and by[("full", "tiled", "-")][10] == "1.00x"
    sweep = _rows(out, "| stride | context per token (min) | windows | bits/char | "
                       "bits/char vs disjoint | time vs disjoint |")
    assert len(sweep) >= 3 and sweep[0][4] == "+0.0000"
    assert [int(r[0]) for r in sweep] == sorted((int(r[0]) for r in sweep), reverse=True)
