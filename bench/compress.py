"""Compression bench: lmcore's language models as arithmetic coders against gzip/bz2/xz/zstd.

On the held-out last 10% of the built-in corpus (Python's pydoc topics), side by side in one
run: the general-purpose compressors (median of several timings), then char-level
Kneser-Ney n-grams of each order trained on the training split, the adaptive model (the best
n-gram refined online by the text it codes, lmcore.info.adaptive) and a purely online PPM
model with no training at all, each actually coded with `lmcore.info.coding` and decoded back
(the round trip is checked, not assumed). Columns:

- bits/char, bits/byte: the coded file, header included;
- vs xz -9: coded size / xz -9 size (below 1 beats xz);
- cross-entropy: the model's own -log2 p per char (the ideal code length);
- model KB: what a decoder must also be sent (lmcore.info.adjusted);
- adjusted bits/char: (coded + model) bytes per char, Delétang et al. 2023;
- encode/decode kchar/s: coding speed (compressors: compression/decompression).

`--transformer DIR` adds a Transformer checkpoint (coded on `--transformer-chars` characters of
the held-out text, since per-token CPU inference is slow). `--quick` codes a 3,000-character
slice with orders 3 and 5 only (CI).

Usage: python bench/compress.py [--quick] [--transformer DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmcore.data.builtin import pydoc_corpus  # noqa: E402
from lmcore.data.tokenizers import train_tokenizer  # noqa: E402
from lmcore.info.adaptive import AdaptiveLM  # noqa: E402
from lmcore.info.adjusted import model_bytes  # noqa: E402
from lmcore.info.coding import decompress, encode  # noqa: E402
from lmcore.info.compressors import codecs  # noqa: E402
from lmcore.models.ngram import NGramLM, tokenizer_vocab  # noqa: E402

COLUMNS = ("| coder | bits/char | bits/byte | vs xz -9 | cross-entropy bits/char | model KB | "
           "adjusted bits/char | encode kchar/s | decode kchar/s | round trip |")


def _row(name, size, chars, nbytes, xz, ce, mbytes, enc_s, dec_s, ok) -> str:
    ce_s = f"{ce:.4f}" if ce is not None else "–"
    adj = 8 * (size + mbytes) / chars
    return (f"| {name} | {8 * size / chars:.4f} | {8 * size / nbytes:.4f} | {size / xz:.3f} | "
            f"{ce_s} | {mbytes / 1024:,.1f} | {adj:.4f} | {chars / enc_s / 1e3:,.1f} | "
            f"{chars / dec_s / 1e3:,.1f} | {'ok' if ok else 'FAILED'} |")


def compressor_rows(text: str, repeats: int) -> tuple[list[tuple], int]:
    data = text.encode("utf-8")
    rows, xz = [], None
    for name, (comp, decomp) in codecs().items():
        enc_t, dec_t, blob = [], [], b""
        for _ in range(repeats):
            t0 = time.perf_counter()
            blob = comp(data)
            t1 = time.perf_counter()
            back = decomp(blob)
            dec_t.append(time.perf_counter() - t1)
            enc_t.append(t1 - t0)
        rows.append((name, len(blob), None, 0, statistics.median(enc_t),
                     statistics.median(dec_t), back == data))
        if name == "xz -9":
            xz = len(blob)
    return rows, xz


def model_row(name: str, model, text: str) -> tuple:
    enc = encode(model, text)
    t0 = time.perf_counter()
    back = decompress(model, enc.data)
    dec_s = time.perf_counter() - t0
    ok = hashlib.sha256(back.encode()).digest() == hashlib.sha256(text.encode()).digest()
    return (name, enc.size, enc.ideal_bits / enc.chars, model_bytes(model), enc.seconds, dec_s,
            ok)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3,000 held-out chars, orders 3 and 5")
    ap.add_argument("--orders", default=None, help="comma-separated n-gram orders (default "
                    "3,4,5,6; quick: 3,5)")
    ap.add_argument("--transformer", metavar="DIR", help="also code with this checkpoint")
    ap.add_argument("--transformer-chars", type=int, default=5000,
                    help="held-out characters the Transformer codes (default 5000)")
    args = ap.parse_args(argv)

    split = pydoc_corpus().split()
    test = split.test[:3000] if args.quick else split.test
    orders = [int(x) for x in (args.orders or ("3,5" if args.quick else "3,4,5,6")).split(",")]
    nbytes = len(test.encode("utf-8"))
    print(f"held-out text: {len(test):,} chars, {nbytes:,} bytes (last 10% of pydoc topics"
          f"{', first 3,000 chars' if args.quick else ''}); training split "
          f"{len(split.train):,} chars\n")

    comp_rows, xz = compressor_rows(test, 3 if args.quick else 5)
    t0 = time.perf_counter()
    tok = train_tokenizer("char", split.train)
    grid = NGramLM.fit_grid([tok.encode(split.train)], tokenizer_vocab(tok), orders=orders,
                            smoothings=["kn"], tokenizer=tok)
    fit_s = time.perf_counter() - t0
    rows = list(comp_rows)
    for n in orders:
        rows.append(model_row(f"KN char {n}-gram", grid[("kn", n)], test))
        print(f"  coded with the {n}-gram", file=sys.stderr, flush=True)
    best = grid[("kn", max(orders))]
    rows.append(model_row(f"adaptive over KN {max(orders)}-gram", AdaptiveLM(best), test))
    rows.append(model_row("online PPM (no training)",
                          AdaptiveLM(None, vocab_size=tok.vocab_size, tokenizer=tok), test))
    print(COLUMNS)
    print("|" + "---|" * (COLUMNS.count("|") - 1))
    for name, size, ce, mbytes, enc_s, dec_s, ok in rows:
        print(_row(name, size, len(test), nbytes, xz, ce, mbytes, enc_s, dec_s, ok))
    if args.transformer:
        from lmcore.cli.compress import load_language_model

        part = test[:args.transformer_chars]
        part_xz = codecs()["xz -9"][0](part.encode("utf-8"))
        r = model_row(f"Transformer {Path(args.transformer).name} (first {len(part):,} chars)",
                      load_language_model(args.transformer), part)
        print(_row(*r[:2], len(part), len(part.encode("utf-8")), len(part_xz), *r[2:]))
    model_rows = [r for r in rows if r[2] is not None]
    win = min(model_rows, key=lambda r: r[1])
    print(f"\nn-gram fit (orders {','.join(map(str, orders))}, one count pass): {fit_s:.2f} s. "
          f"Best lmcore coder: {win[0]} at {8 * win[1] / len(test):.4f} bits/char = "
          f"{win[1] / xz:.3f} x xz -9 ({'beats' if win[1] < xz else 'does not beat'} xz -9).")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
