"""N-gram bench: lmcore vs NLTK and KenLM (fit, scoring, perplexity), order-5 KN on 1M tokens.

Table 1, side by side in one run on the KenLM fixture corpus (../shared/fixtures/kenlm):
lmcore's KN and Laplace against NLTK's `KneserNeyInterpolated` and `Laplace`, same training
sentences, same scored tokens (each word and </s> of each test sentence, contexts padded with
<s>). NLTK's KN scoring is very slow, so it scores a slice of the test set; every model scores
that same slice. Ratios are NLTK time / lmcore time for the same smoothing (lmcore timings are
medians of several runs; NLTK runs once). When KenLM's `lmplz` is built in the bench cache
(`make bench-kenlm`, or `--build-kenlm`: apt-get installs the Boost/Eigen/zlib dev packages and
cmake if missing, pip downloads the `kenlm` sdist from PyPI, cmake + make build lmplz into
.bench-cache/kenlm/bin), its fit time (median, the whole process: read the text, estimate,
write the ARPA) is the column "lmplz fit s" on lmcore's KN rows, and a cross-check table
rescores lmplz's ARPA with lmcore: its perplexity must equal lmcore's own model's. The full run
builds lmplz when it is missing; --quick never builds it (CI) but uses it when it is there.

Table 2: order-5 KN fit on one million tokens (100,000 with --quick) in a fresh subprocess, peak memory measured the
DESIGN.md way by `lmcore.train.memory.PeakRSS` (MALLOC_MMAP_THRESHOLD_=65536, warm up, reset
VmHWM via /proc/self/clear_refs, peak = VmHWM - VmRSS before the call).

Usage: python bench/ngram.py [--quick] [--build-kenlm]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmcore.models.arpa import read_arpa  # noqa: E402
from lmcore.models.ngram import NGramLM  # noqa: E402
from lmcore.models.ngram_vocab import Vocab  # noqa: E402
from lmcore.train.memory import PeakRSS  # noqa: E402

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
                tokens=ev.tokens, oov=ev.oov)


def _lmplz_row(lmplz: Path, order: int, train_file: Path, test_lines: list[str],
               repeats: int, work: Path) -> dict:
    """lmplz's fit time (median of whole runs) and its ARPA rescored by lmcore."""
    arpa = work / f"lmplz{order}.arpa"

    def fit() -> None:
        with open(train_file, "rb") as fin, open(arpa, "wb") as fout:
            subprocess.run([str(lmplz), "-o", str(order), "-S", "100M", "-T", str(work),
                            "--discount_fallback"], stdin=fin, stdout=fout,
                           stderr=subprocess.DEVNULL, check=True)

    fit_s, _ = _median_time(fit, repeats)
    ev = read_arpa(arpa).score_lines(test_lines)
    return dict(fit=fit_s, ppl=ev.perplexity, ppl_known=ev.perplexity_no_oov, oov=ev.oov,
                tokens=ev.tokens)


def _fmt(x: float, digits: int = 3) -> str:
    if x == math.inf:
        return "inf"
    return f"{x:.{digits}g}" if x < 1000 else f"{x:,.0f}"


def _lines(path: Path) -> list[str]:
    """Sentences of a file the way lmplz reads it (LF ends a line; not str.splitlines)."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def comparison_table(quick: bool, lmplz: Path | None, work: Path) -> str:
    """Table 1: lmcore vs NLTK (and lmplz's fit time) on the fixture corpus, plus the
    cross-check of lmplz's ARPA rescored by lmcore when lmplz is there."""
    from nltk.lm import KneserNeyInterpolated, Laplace

    train_lines = _lines(FIXTURE / "train.txt")
    test_lines = _lines(FIXTURE / "test.txt")
    orders = (2, 3) if quick else (2, 3, 4, 5)
    if quick:
        train_lines, test_lines = train_lines[:1500], test_lines[:15]
    else:
        test_lines = test_lines[:100]
    train_file = work / "train.txt"
    train_file.write_text("".join(s + "\n" for s in train_lines), encoding="utf-8")
    train = [s.split() for s in train_lines]
    test = [s.split() for s in test_lines]
    known = {w for s in train for w in s} | {"</s>"}
    repeats = 3 if quick else 5
    header = ["order", "model", "fit s", "lmplz fit s", "score s", "tokens/s scored",
              "perplexity", "ppl excl. OOV", "fit × (NLTK/lmcore)", "score × (NLTK/lmcore)"]
    check_header = ["order", "lmcore KN fit s", "lmplz fit s", "lmplz / lmcore fit",
                    "lmcore KN perplexity", "lmplz ARPA perplexity (rescored by lmcore)",
                    "relative difference", "OOV (lmcore, lmplz)", "same model"]
    rows, check_rows, fit_x_min, score_kn_min = [], [], math.inf, math.inf
    worst = 0.0
    for order in orders:
        results = {
            ("lmcore", "KN"): _lmcore_row("kn", order, train_lines, test_lines, repeats),
            ("lmcore", "Laplace"): _lmcore_row("addk", order, train_lines, test_lines, repeats),
            ("NLTK", "KN"): _nltk_row(KneserNeyInterpolated, order, train, test, known),
            ("NLTK", "Laplace"): _nltk_row(Laplace, order, train, test, known),
        }
        kn = results[("lmcore", "KN")]
        ken = None
        if lmplz is not None:
            ken = _lmplz_row(lmplz, order, train_file, test_lines, repeats, work)
            rel = max(abs(ken["ppl"] / kn["ppl"] - 1), abs(ken["ppl_known"] / kn["ppl_known"] - 1))
            same = rel < 1e-4 and ken["oov"] == kn["oov"] and ken["tokens"] == kn["tokens"]
            worst = max(worst, rel if same else math.inf)
            check_rows.append([str(order), f"{kn['fit']:.3f}", f"{ken['fit']:.3f}",
                               f"{ken['fit'] / kn['fit']:.2f}", _fmt(kn["ppl"], 7),
                               _fmt(ken["ppl"], 7), f"{rel:.1e}", f"{kn['oov']}, {ken['oov']}",
                               "yes" if same else "NO"])
        for (tool, smooth), r in results.items():
            base = results[("lmcore", smooth)]
            if tool == "NLTK":
                fit_x_min = min(fit_x_min, r["fit"] / base["fit"])
                if smooth == "KN":
                    score_kn_min = min(score_kn_min, r["score"] / base["score"])
            fit_x = "1" if tool == "lmcore" else f"{r['fit'] / base['fit']:.0f}"
            score_x = "1" if tool == "lmcore" else f"{r['score'] / base['score']:.0f}"
            lmplz_fit = f"{ken['fit']:.3f}" if ken and (tool, smooth) == ("lmcore", "KN") else "—"
            rows.append([str(order), f"{tool} {smooth}", f"{r['fit']:.3f}", lmplz_fit,
                         f"{r['score']:.4f}",
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
    out = info + "\n\n" + _markdown(header, rows) + "\n\n" + targets
    if check_rows:
        verdict = ("lmplz's ARPA rescored by lmcore gives lmcore's perplexity at every order "
                   f"(largest relative difference {worst:.1e}; KenLM stores float32)"
                   if worst < 1e-4 else "MISMATCH: lmplz's model differs from lmcore's")
        out += ("\n\n### Cross-check against KenLM's lmplz (same training file, "
                "`lmplz -o N -S 100M --discount_fallback`)\n\n" + _markdown(check_header, check_rows)
                + "\n\n" + verdict + ". lmplz's time is the whole process (read the text, "
                "estimate, write the ARPA; it pipelines with several threads), lmcore's is the "
                "fit in memory.")
    return out


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- 1M tokens


def _million_corpus(kind: str, n_tokens: int) -> tuple[list[np.ndarray], Vocab]:
    """Sentences of `n_tokens` ids: the fixture shuffled and repeated, or Zipfian words."""
    rng = np.random.default_rng(0)
    if kind == "fixture":
        lines = _lines(FIXTURE / "train.txt")
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


def memory_child(kind: str, n_tokens: int, order: int) -> dict:
    """Run in a fresh process: fit order-`order` KN on `n_tokens` tokens, time and peak RSS."""
    seqs, vocab = _million_corpus(kind, n_tokens)
    NGramLM.fit(seqs[:200], vocab, order=order, smoothing="kn")  # warm up imports and numpy
    with PeakRSS() as peak:
        t = time.perf_counter()
        model = NGramLM.fit(seqs, vocab, order=order, smoothing="kn")
        fit_s = time.perf_counter() - t
    t = time.perf_counter()
    model.score_sequences(seqs[:5000])
    score_s = time.perf_counter() - t
    scored = sum(len(s) + 1 for s in seqs[:5000])
    return dict(kind=kind, tokens=int(sum(len(s) for s in seqs)), order=order, fit_s=fit_s,
                peak_mb=peak.bytes / 2**20 if peak.reset else float("nan"), hwm_mb=peak.hwm / 2**20,
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
        verdict = "met (< 20 s, < 1.5 GB)" if ok else "MISSED"
        if n_tokens < 1_000_000:
            verdict = "not checked (target is for 1M tokens)"
        rows.append([label, f"{r['tokens']:,}", str(r["order"]), f"{r['ngrams']:,}",
                     f"{r['fit_s']:.2f}", f"{r['peak_mb']:.0f}", f"{r['hwm_mb']:.0f}",
                     f"{r['score_tok_s']:,.0f}", verdict])
    return _markdown(header, rows)


# ----------------------------------------------------------------------------- KenLM's lmplz

KENLM_VERSION = "0.3.0"
# LMCORE_BENCH_CACHE moves the cache (the tests point it at an empty folder)
CACHE = Path(os.environ.get("LMCORE_BENCH_CACHE") or ROOT / ".bench-cache") / "kenlm"
LMPLZ = CACHE / "bin" / "lmplz"
APT_PACKAGES = ("libboost-program-options-dev", "libboost-system-dev", "libboost-thread-dev",
                "libboost-test-dev", "libeigen3-dev", "zlib1g-dev", "libbz2-dev", "liblzma-dev",
                "cmake")
BUILD_HINT = "run `make bench-kenlm` (or `python bench/ngram.py --build-kenlm`) to build it"


def find_lmplz() -> tuple[Path | None, str]:
    """The cached lmplz binary, or None and why it is not there."""
    if LMPLZ.is_file() and os.access(LMPLZ, os.X_OK):
        return LMPLZ, ""
    return None, f"no binary at {LMPLZ}"


def _sh(cmd: list[str], log, **kwargs) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"`{' '.join(str(c) for c in cmd[:3])} ...` failed "
                           f"(exit {proc.returncode}):\n{tail}")


def _missing_apt_packages() -> list[str]:
    missing = []
    for pkg in APT_PACKAGES:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True,
                              text=True)
        if proc.returncode != 0 or "install ok installed" not in proc.stdout:
            missing.append(pkg)
    return missing


def build_lmplz(jobs: int = 2, log=print) -> Path:
    """Build KenLM's lmplz and build_binary from the PyPI `kenlm` sdist into .bench-cache/.

    Installs the Debian build dependencies with apt-get when they are missing (needs root),
    downloads the source package with pip, and runs cmake + make for the two programs only.
    """
    found, _ = find_lmplz()
    if found is not None:
        log(f"lmplz already built: {found}")
        return found
    missing = _missing_apt_packages()
    if missing:
        if os.geteuid() != 0:
            raise RuntimeError(f"the Debian packages {' '.join(missing)} are missing and "
                               "installing them needs root (sudo apt-get install ...)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _sh(["apt-get", "update", "-q"], log, env=env)
        _sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], log,
            env=env)
    src_dir = CACHE / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    sdist = src_dir / f"kenlm-{KENLM_VERSION}.tar.gz"
    if not sdist.is_file():
        # --no-build-isolation: pip reads the metadata with the installed setuptools instead
        # of building setuptools and cmake from source (which --no-binary :all: would do)
        _sh([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "--no-build-isolation", f"kenlm=={KENLM_VERSION}", "-d", str(src_dir)], log)
    tree = src_dir / f"kenlm-{KENLM_VERSION}"
    if not (tree / "CMakeLists.txt").is_file():
        with tarfile.open(sdist) as tar:
            tar.extractall(src_dir, filter="data")
    build = CACHE / "build"
    build.mkdir(parents=True, exist_ok=True)
    _sh(["cmake", "-S", str(tree), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
         "-DCOMPILE_TESTS=OFF", "-DENABLE_PYTHON=OFF"], log)
    _sh(["make", "-C", str(build), f"-j{jobs}", "lmplz", "build_binary"], log)
    (CACHE / "bin").mkdir(exist_ok=True)
    for prog in ("lmplz", "build_binary"):
        shutil.copy2(build / "bin" / prog, CACHE / "bin" / prog)
    log(f"built {LMPLZ}")
    return LMPLZ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small slice, orders 2-3, 100k tokens for table 2; never builds lmplz")
    ap.add_argument("--memory-child", nargs=3, metavar=("KIND", "TOKENS", "ORDER"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--build-kenlm", action="store_true",
                    help="build KenLM's lmplz into .bench-cache/kenlm and exit")
    args = ap.parse_args()
    if args.build_kenlm:
        build_lmplz()
        return
    if args.memory_child:
        kind, n, order = args.memory_child
        print(json.dumps(memory_child(kind, int(n), int(order))))
        return
    if not (FIXTURE / "train.txt").exists():
        sys.exit(f"fixture corpus not found at {FIXTURE}")
    lmplz, why = find_lmplz()
    if lmplz is None and args.quick:
        why += f"; --quick never builds it: {BUILD_HINT}"
    elif lmplz is None:
        try:
            lmplz = build_lmplz(log=lambda line: print(line, file=sys.stderr))
        except (RuntimeError, OSError) as exc:
            why = f"the build failed: {exc}".replace("\n", " / ")
    print("## N-gram models: lmcore vs NLTK and KenLM" + (" (quick)" if args.quick else ""))
    print()
    print(f"lmplz: {lmplz}" if lmplz else f"lmplz: not built ({why})")
    print()
    with tempfile.TemporaryDirectory(prefix="lmcore-bench-ngram-") as work:
        print(comparison_table(args.quick, lmplz, Path(work)))
    n_tokens = 100_000 if args.quick else 1_000_000
    print()
    print(f"## Order-5 Kneser-Ney on {n_tokens:,} tokens (fresh subprocess each)")
    print()
    print(million_table(n_tokens))


if __name__ == "__main__":
    main()
