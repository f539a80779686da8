"""N-gram bench: lmcore vs NLTK (fit, scoring, perplexity) and order-5 KN on 1M tokens.

Table 1, side by side in one run on the KenLM fixture corpus (../shared/fixtures/kenlm):
lmcore's KN and Laplace against NLTK's `KneserNeyInterpolated` and `Laplace`, same training
sentences, same scored tokens (each word and </s> of each test sentence, contexts padded with
<s>). NLTK's KN scoring is very slow, so it scores a slice of the test set; every model scores
that same slice. Ratios are NLTK time / lmcore time for the same smoothing (lmcore timings are
medians of several runs; NLTK runs once).

Table 2: order-5 KN fit on one million tokens in a fresh subprocess, peak memory measured the
DESIGN.md way (MALLOC_MMAP_THRESHOLD_=65536, warm up, reset VmHWM via /proc/self/clear_refs,
peak = VmHWM - VmRSS before the call).

Usage: python bench/ngram.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmcore.models.ngram import NGramLM, Vocab  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "kenlm"
LN2 = math.log(2.0)


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _ppl(log2_probs: list[float] | np.ndarray, oov: np.ndarray) -> tuple[float, float]:
    lp = np.asarray(log2_probs, dtype=np.float64)
    with np.errstate(over="ignore"):
        both = [float(2.0 ** (-x.mean())) if len(x) and np.all(np.isfinite(x)) else math.inf
                for x in (lp, lp[~oov])]
    return both[0], both[1]


def _nltk_row(cls, order: int, train: list[list[str]], test: list[list[str]],
              known: set[str]) -> dict:
    from nltk.lm.preprocessing import padded_everygram_pipeline

    t = time.perf_counter()
    data, vocab = padded_everygram_pipeline(order, train)
    lm = cls(order)
    lm.fit(data, vocab)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    scores, oov = [], []
    for sent in test:
        padded = ["<s>"] * (order - 1) + sent + ["</s>"]
        for i in range(order - 1, len(padded)):
            scores.append(lm.logscore(padded[i], padded[i - order + 1:i]))
            oov.append(padded[i] not in known)
    score_s = time.perf_counter() - t
    ppl, ppl_known = _ppl(scores, np.array(oov))
    return dict(fit=fit_s, score=score_s, ppl=ppl, ppl_known=ppl_known, tokens=len(scores))


def _lmcore_row(smoothing: str, order: int, train_lines: list[str], test_lines: list[str],
                repeats: int) -> dict:
    fit_s, model = _median_time(
        lambda: NGramLM.from_sentences(train_lines, order=order, smoothing=smoothing), repeats)
    score_s, ev = _median_time(lambda: model.score_lines(test_lines), repeats)
    return dict(fit=fit_s, score=score_s, ppl=ev.perplexity, ppl_known=ev.perplexity_no_oov,
                tokens=ev.tokens)


def _fmt(x: float, digits: int = 3) -> str:
    if x == math.inf:
        return "inf"
    return f"{x:.{digits}g}" if x < 1000 else f"{x:,.0f}"


def comparison_table(quick: bool) -> str:
    """Table 1: lmcore vs NLTK on the fixture corpus."""
    from nltk.lm import KneserNeyInterpolated, Laplace

    train_lines = (FIXTURE / "train.txt").read_text().splitlines()
    test_lines = (FIXTURE / "test.txt").read_text().splitlines()
    orders = (2, 3) if quick else (2, 3, 4, 5)
    if quick:
        train_lines, test_lines = train_lines[:1500], test_lines[:15]
    else:
        test_lines = test_lines[:100]
    train = [s.split() for s in train_lines]
    test = [s.split() for s in test_lines]
    known = {w for s in train for w in s} | {"</s>"}
    repeats = 3 if quick else 5
    header = ["order", "model", "fit s", "score s", "tokens/s scored", "perplexity",
              "ppl excl. OOV", "fit × (NLTK/lmcore)", "score × (NLTK/lmcore)"]
    rows, fit_x_min, score_kn_min = [], math.inf, math.inf
    for order in orders:
        results = {
            ("lmcore", "KN"): _lmcore_row("kn", order, train_lines, test_lines, repeats),
            ("lmcore", "Laplace"): _lmcore_row("addk", order, train_lines, test_lines, repeats),
            ("NLTK", "KN"): _nltk_row(KneserNeyInterpolated, order, train, test, known),
            ("NLTK", "Laplace"): _nltk_row(Laplace, order, train, test, known),
        }
        for (tool, smooth), r in results.items():
            base = results[("lmcore", smooth)]
            if tool == "NLTK":
                fit_x_min = min(fit_x_min, r["fit"] / base["fit"])
                if smooth == "KN":
                    score_kn_min = min(score_kn_min, r["score"] / base["score"])
            fit_x = "1" if tool == "lmcore" else f"{r['fit'] / base['fit']:.0f}"
            score_x = "1" if tool == "lmcore" else f"{r['score'] / base['score']:.0f}"
            rows.append([str(order), f"{tool} {smooth}", f"{r['fit']:.3f}", f"{r['score']:.4f}",
                         f"{r['tokens'] / r['score']:,.0f}", _fmt(r["ppl"], 5),
                         _fmt(r["ppl_known"], 5), fit_x, score_x])
    info = (f"Fixture corpus: {sum(len(s) for s in train):,} training tokens "
            f"({len(train_lines):,} sentences); every model scores the same "
            f"{rows[0] and results[('lmcore', 'KN')]['tokens']:,} test tokens "
            f"({len(test_lines)} sentences, </s> included). NLTK's KN gives <UNK> probability 0, "
            "hence its inf perplexity with OOV tokens.")
    targets = (f"Targets: scoring at least 100x faster than NLTK's KN: "
               f"{'met' if score_kn_min >= 100 else 'MISSED'} (lowest ratio {score_kn_min:,.0f}x); "
               f"fitting at least 5x faster than NLTK: {'met' if fit_x_min >= 5 else 'MISSED'} "
               f"(lowest ratio {fit_x_min:,.0f}x).")
    return info + "\n\n" + _markdown(header, rows) + "\n\n" + targets


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- 1M tokens


def _million_corpus(kind: str, n_tokens: int) -> tuple[list[np.ndarray], Vocab]:
    """Sentences of `n_tokens` ids: the fixture shuffled and repeated, or Zipfian words."""
    rng = np.random.default_rng(0)
    if kind == "fixture":
        lines = (FIXTURE / "train.txt").read_text().splitlines()
        vocab = Vocab.empty()
        seqs = vocab.add_sentences(lines)
        out, total = [], 0
        while total < n_tokens:
            for i in rng.permutation(len(seqs)):
                out.append(seqs[i])
                total += len(seqs[i])
                if total >= n_tokens:
                    break
        return out, vocab
    V = 30_000
    vocab = Vocab(words=["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(V)], bos=1, eos=2,
                  unk=0)
    ids = (rng.zipf(1.2, size=n_tokens) % V) + 3
    cuts = np.cumsum(rng.integers(5, 40, size=n_tokens // 5))
    return np.split(ids, cuts[cuts < n_tokens]), vocab


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_child(kind: str, n_tokens: int, order: int) -> dict:
    """Run in a fresh process: fit order-`order` KN on `n_tokens` tokens, time and peak RSS."""
    seqs, vocab = _million_corpus(kind, n_tokens)
    NGramLM.fit(seqs[:200], vocab, order=order, smoothing="kn")  # warm up imports and numpy
    before = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        reset = False
    t = time.perf_counter()
    model = NGramLM.fit(seqs, vocab, order=order, smoothing="kn")
    fit_s = time.perf_counter() - t
    hwm = _status_kb("VmHWM")
    t = time.perf_counter()
    model.score_sequences(seqs[:5000])
    score_s = time.perf_counter() - t
    scored = sum(len(s) + 1 for s in seqs[:5000])
    return dict(kind=kind, tokens=int(sum(len(s) for s in seqs)), order=order, fit_s=fit_s,
                peak_mb=(hwm - before) / 1024 if reset else float("nan"), hwm_mb=hwm / 1024,
                score_tok_s=scored / score_s, ngrams=sum(model.ngram_counts()))


def million_table(n_tokens: int = 1_000_000, order: int = 5) -> str:
    """Table 2: each corpus in a fresh subprocess (so the peak belongs to this fit alone)."""
    header = ["corpus", "tokens", "order", "n-grams stored", "fit s", "peak RSS of fit MB",
              "process VmHWM MB", "scoring tokens/s", "target"]
    rows = []
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    for kind, label in (("fixture", "fixture sentences, shuffled and repeated"),
                        ("zipf", "Zipf(1.2) i.i.d. words, V=30k (mostly distinct n-grams)")):
        proc = subprocess.run([sys.executable, __file__, "--memory-child", kind, str(n_tokens),
                               str(order)], capture_output=True, text=True, env=env, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        ok = r["fit_s"] < 20 and (r["hwm_mb"] < 1536)
        rows.append([label, f"{r['tokens']:,}", str(r["order"]), f"{r['ngrams']:,}",
                     f"{r['fit_s']:.2f}", f"{r['peak_mb']:.0f}", f"{r['hwm_mb']:.0f}",
                     f"{r['score_tok_s']:,.0f}", "met (< 20 s, < 1.5 GB)" if ok else "MISSED"])
    return _markdown(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small slice, orders 2-3 (< 60 s)")
    ap.add_argument("--memory-child", nargs=3, metavar=("KIND", "TOKENS", "ORDER"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        kind, n, order = args.memory_child
        print(json.dumps(memory_child(kind, int(n), int(order))))
        return
    if not (FIXTURE / "train.txt").exists():
        sys.exit(f"fixture corpus not found at {FIXTURE}")
    print("## N-gram models: lmcore vs NLTK" + (" (quick)" if args.quick else ""))
    print()
    print(comparison_table(args.quick))
    print()
    print("## Order-5 Kneser-Ney on one million tokens (fresh subprocess each)")
    print()
    print(million_table())


if __name__ == "__main__":
    main()
