"""Long-text strategies on the built-in corpus: bits/char, time and peak memory side by side.

A tiny character-level Transformer (2 layers, width 64) with positions for T tokens is trained
briefly on the training split of Python's reference docs, then the first T tokens of the
held-out test split are scored every way, in one run:

- truncation, disjoint chunks and the sliding window at strides C/2 and C/8, with windows of
  C tokens (C << T), through the tiled attention;
- one full pass over all T tokens with the tiled, sdpa and naive attention (naive
  materialises the T x T scores, the other two do not).

Time: median of `--repeats` calls, strategies interleaved round by round, timed apart from the
peak pass with glibc's mmap threshold back at 32 MiB (heap reuse, no page faults per call).
Peak memory
(DESIGN.md's method): VmHWM minus the VmRSS read just before the call, after a warm-up and
writing 5 to /proc/self/clear_refs, in one fresh process per row started with
MALLOC_MMAP_THRESHOLD_=65536 so freed tensors go back to the OS (with --quick or
--in-process: in this process, the threshold set through mallopt). A second table sweeps the
stride.

    .venv/bin/python bench/longtext.py           # T=2048, C=256, 600 steps (~4 min)
    .venv/bin/python bench/longtext.py --quick   # CI: T=512, C=64, < 60 s
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmcore.data.builtin import pydoc_corpus  # noqa: E402
from lmcore.data.tokenizers import train_tokenizer  # noqa: E402
from lmcore.longtext.strategies import char_bounds, evaluate_ids  # noqa: E402
from lmcore.models.checkpoint import load_model, save_model  # noqa: E402
from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM  # noqa: E402
from lmcore.train.data import TokenData  # noqa: E402
from lmcore.train.memory import BIG_MMAP, peak_bytes, set_mmap_threshold  # noqa: E402
from lmcore.train.objectives import CausalLM  # noqa: E402
from lmcore.train.trainer import TrainConfig, train  # noqa: E402

COLUMNS = ("strategy", "attention", "window", "stride", "windows", "tokens scored",
           "bits/char", "time ms", "time vs full tiled", "peak MiB", "peak vs full tiled")


def build(T: int, steps: int, batch: int, seed: int = 0):
    """Tokenizer, trained tiny model (context T) and the held-out ids/bounds of T tokens."""
    corpus = pydoc_corpus()
    split = corpus.split()
    tok = train_tokenizer("char", split.train)
    torch.manual_seed(seed)
    net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=T, n_layer=2,
                                        n_head=4, n_embd=64, attention="sdpa"))
    data = TokenData.from_text(tok, split.train, split.valid)
    res = train(net, CausalLM(), data, TrainConfig(
        steps=steps, batch_size=batch, lr=3e-3, warmup_steps=5, eval_every=0,
        eval_tokens=T + 1, memory_every=0, seed=seed))
    if res.status != "done":
        raise SystemExit(f"training failed: {res.error}")
    text = split.test
    ids, offsets = tok.encode_offsets(text)
    ids, offsets = ids[:T], offsets[:T]
    text = text[: offsets[-1][1]]
    return TransformerLM(net, tok), ids, char_bounds(offsets, len(text)), res


def cases(C: int, T: int) -> list[tuple[str, str, int, int | None]]:
    """(strategy, attention, window, stride) of each row."""
    return [("truncation", "tiled", C, None), ("disjoint", "tiled", C, None),
            ("sliding", "tiled", C, C // 2), ("sliding", "tiled", C, max(1, C // 8)),
            ("full", "tiled", T, None), ("full", "sdpa", T, None), ("full", "naive", T, None)]


def _call(lm, ids, bounds, key):
    name, att, w, s = key
    return evaluate_ids(lm, ids, bounds, name, window=w, stride=s, attention=att,
                        sample_interval=0.05)


def run(lm, ids, bounds, rows, repeats: int, fresh_dir: Path | None = None) -> dict:
    """Per row: the result, the peak bytes, then `repeats` timings (interleaved rounds).

    With `fresh_dir` (a saved model and text) each peak is measured in a fresh process
    started with MALLOC_MMAP_THRESHOLD_=65536 (exact); otherwise here, in a call of its own.
    The peak pass needs glibc's mmap threshold at 64 KiB (freed tensors unmapped at once);
    timing with it would add page faults to every call, so the threshold goes back to
    BIG_MMAP (ordinary heap reuse) before any timed call, as `measure_cell` does.
    """
    out = {}
    for key in rows:
        call = functools.partial(_call, lm, ids, bounds, key)
        out[key] = {"result": call(), "times": []}  # also the warm-up
        out[key]["peak"] = (fresh_peak(fresh_dir, key) if fresh_dir is not None
                            else peak_bytes(call, warmup=False))
    set_mmap_threshold(BIG_MMAP)
    for _ in range(repeats):
        for key in rows:
            t0 = time.perf_counter()
            _call(lm, ids, bounds, key)
            out[key]["times"].append(time.perf_counter() - t0)
    return out


def save_case(folder: Path, lm, ids, bounds) -> Path:
    """The model and the scored text, for the fresh measuring processes."""
    save_model(folder, lm)
    (folder / "case.json").write_text(json.dumps({"ids": list(ids),
                                                  "bounds": [int(b) for b in bounds]}))
    return folder


def fresh_peak(folder: Path, key: tuple) -> int:
    """Peak bytes of one strategy call in a fresh interpreter (DESIGN.md's exact method)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    proc = subprocess.run([sys.executable, __file__, "--child", str(folder), "--row",
                           json.dumps(list(key)), "--threads", str(torch.get_num_threads())],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"measuring {key} failed: {proc.stderr.strip()[-1500:]}")
    return int(json.loads(proc.stdout.strip().splitlines()[-1])["peak"])


def child(folder: str, row: str) -> None:
    """In a fresh process: load the case, warm up, reset the high-water mark, measure."""
    lm = load_model(folder).lm()
    case = json.loads((Path(folder) / "case.json").read_text())
    key = tuple(json.loads(row))
    call = functools.partial(_call, lm, case["ids"], np.array(case["bounds"]), key)
    print(json.dumps({"peak": peak_bytes(call, warmup=True)}))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def table(out: dict) -> str:
    ref = out[("full", "tiled", *next(k[2:] for k in out if k[:2] == ("full", "tiled")))]
    ref_t, ref_m = statistics.median(ref["times"]), ref["peak"]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for (name, att, w, s), cell in out.items():
        r = cell["result"]
        t = statistics.median(cell["times"])
        lines.append(
            f"| {name} | {att} | {w} | {s if s is not None else '-'} | {len(r.windows)} | "
            f"{r.tokens_scored} | {r.bits_per_char:.4f} | {1000 * t:.1f} | "
            f"{_ratio(t, ref_t)} | {cell['peak'] / 2**20:.1f} | {_ratio(cell['peak'], ref_m)} |")
    return "\n".join(lines)


def sweep_table(lm, ids, bounds, C: int, repeats: int) -> str:
    """Sliding window at strides C, C/2, C/4, C/8: bits/char and median time vs disjoint."""
    strides = sorted({max(1, C >> k) for k in range(0, 4)}, reverse=True)
    keys = [("sliding", "tiled", C, s) for s in strides]
    results = {k: _call(lm, ids, bounds, k) for k in keys}
    times: dict = {k: [] for k in keys}
    for _ in range(repeats):
        for k in keys:
            t0 = time.perf_counter()
            _call(lm, ids, bounds, k)
            times[k].append(time.perf_counter() - t0)
    base, base_t = results[keys[0]], statistics.median(times[keys[0]])
    lines = ["| stride | context per token (min) | windows | bits/char | "
             "bits/char vs disjoint | time vs disjoint |", "|---:|---:|---:|---:|---:|---:|"]
    for k in keys:
        r = results[k]
        lines.append(f"| {k[3]} | {C - k[3]} | {len(r.windows)} | {r.bits_per_char:.4f} | "
                     f"{r.bits_per_char - base.bits_per_char:+.4f} | "
                     f"{_ratio(statistics.median(times[k]), base_t)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="long-text strategies: bits/char, time, memory")
    ap.add_argument("--quick", action="store_true", help="T=512, C=64, few steps (< 60 s)")
    ap.add_argument("--T", type=int, default=None, help="tokens of held-out text")
    ap.add_argument("--C", type=int, default=None, help="window of the chunked strategies")
    ap.add_argument("--steps", type=int, default=None, help="training steps")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--in-process", action="store_true",
                    help="measure peaks in this process (default with --quick)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared, oversubscribed CPU a "
                         "descheduled worker thread stalls every op and ruins timings)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--row", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    if a.child:
        child(a.child, a.row)
        return
    T = a.T or (512 if a.quick else 2048)
    C = a.C or (64 if a.quick else 256)
    steps = a.steps or (15 if a.quick else 600)
    repeats = a.repeats or (1 if a.quick else 3)
    fresh = not (a.quick or a.in_process)
    t0 = time.perf_counter()
    lm, ids, bounds, res = build(T, steps, batch=2)
    trained = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="lmcore-bench-longtext-") as tmp:
        folder = save_case(Path(tmp), lm, ids, bounds) if fresh else None
        out = run(lm, ids, bounds, cases(C, len(ids)), repeats, folder)
    print(f"## Long-text strategies: {len(ids)} held-out tokens ({int(bounds[-1])} chars) of "
          f"the pydoc corpus, window C={C}, char Transformer 2x64 trained {steps} steps "
          f"({res.bits_per_char:.3f} bits/char on validation)\n")
    print(table(out), end="\n\n")
    print(f"### Stride sweep (sliding window, C={C}, tiled)\n")
    print(sweep_table(lm, ids, bounds, C, repeats), end="\n\n")
    where = ("one fresh process per row, MALLOC_MMAP_THRESHOLD_=65536" if fresh
             else "in-process, mmap threshold 64 KiB via mallopt")
    print(f"Time: median of {repeats} interleaved round(s) after the peak pass, mmap "
          f"threshold {BIG_MMAP // 2**20} MiB, {torch.get_num_threads()} torch "
          f"thread(s). Peak: VmHWM - VmRSS after "
          f"clear_refs ({where}). Training {trained:.0f} s, total "
          f"{time.perf_counter() - t0:.0f} s.")


if __name__ == "__main__":
    main()
