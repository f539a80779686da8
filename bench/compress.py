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

Equal terms (issue 18): every compressor is also measured given the training split first
("primed": size(train + held-out) - size(train)), zpaq -m5 and PPMd o10 (7-Zip) included; the
"saw training text" column names the rows that read it (every trained model did). The mixing
coder (lmcore.info.mixing: KN 2/4/6-grams, the adaptive model, an online PPM, a word model and
match models primed with the training split, mixed per token by an online logistic mixer),
and the same with a 4x128 char Transformer trained on the split mixed in (trained once, 17 min
on one thread, then loaded from .bench-cache), are judged against zpaq -m5 primed; a second
text (a generated Chinese/English chat, full mode only, its own 2x64 Transformer) shows
whether the ordering holds there. A speed table then times the fast coders against
the plain per-token reference side by side: the n-gram per-context table with the range
coder's batch call, and a 4-layer width-128 char Transformer in lockstep streams with a KV
cache (random weights: speed does not depend on them), at the default stream count and at
`--streams 128` (faster; each extra stream starts without context, so costs a few bits).
A line under it judges the speed targets (full mode only): the default Transformer coder at
50x the plain coder beside it, encode and decode; the n-gram table path at 10x the issue's
5 kchar/s.

`--transformer DIR` adds a Transformer checkpoint, coded on the whole held-out text by default
or on its first `--transformer-chars` characters (per-token CPU inference is slow); its
"vs xz -9" is then against xz on that same slice. The last line names the best lmcore coder
(Transformers included) and says whether the target is met: the best lmcore model beats
xz -9 on the whole held-out 10%. `--quick` codes a 3,000-character slice with orders 3 and 5
only (CI): it checks round trips and the table, and judges no target, since on so little text
xz's fixed header (~60 bytes, 0.16 bits/char here) decides the comparison.

Usage: python bench/compress.py [--quick] [--transformer DIR] [--transformer-chars N]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmcore.data.builtin import pydoc_corpus  # noqa: E402
from lmcore.data.tokenizers import train_tokenizer  # noqa: E402
from lmcore.info.adaptive import AdaptiveLM  # noqa: E402
from lmcore.info.adjusted import model_bytes  # noqa: E402
from lmcore.info.coding import decompress, encode  # noqa: E402
from lmcore.info.compressors import codecs, measure_one, missing  # noqa: E402
from lmcore.info.mixing import mixing_coder  # noqa: E402
from lmcore.info.streams import stream_count  # noqa: E402
from lmcore.models.ngram import NGramLM  # noqa: E402
from lmcore.models.ngram_vocab import tokenizer_vocab  # noqa: E402

COLUMNS = ("| coder | saw training text | bits/char | bits/byte | vs xz -9 | "
           "cross-entropy bits/char | model KB | adjusted bits/char | encode kchar/s | "
           "decode kchar/s | round trip |")
TARGET = "the best lmcore model beats xz -9 on the held-out 10%"
MIXER = "mixing coder (KN 2/4/6, adaptive, PPM, word, match)"
TARGET_EQUAL = ("the best lmcore coder given the training split beats zpaq -m5 primed with it "
                "on the held-out 10%")


@dataclass(frozen=True)
class Row:
    """One coder on one text, with xz -9's size on that same text for the ratio."""

    name: str
    size: int
    chars: int
    nbytes: int
    xz: int
    ce: float | None  # model cross-entropy, bits/char (None: a general compressor)
    mbytes: int
    enc_s: float
    dec_s: float
    ok: bool
    saw_training: bool = True

    @property
    def is_model(self) -> bool:
        return self.ce is not None

    @property
    def vs_xz(self) -> float:
        return self.size / self.xz

    def markdown(self) -> str:
        ce_s = f"{self.ce:.4f}" if self.ce is not None else "–"
        adj = 8 * (self.size + self.mbytes) / self.chars
        return (f"| {self.name} | {'yes' if self.saw_training else 'no'} | "
                f"{8 * self.size / self.chars:.4f} | "
                f"{8 * self.size / self.nbytes:.4f} | {self.vs_xz:.3f} | {ce_s} | "
                f"{self.mbytes / 1024:,.1f} | {adj:.4f} | {self.chars / self.enc_s / 1e3:,.1f} | "
                f"{self.chars / self.dec_s / 1e3:,.1f} | {'ok' if self.ok else 'FAILED'} |")


def compressor_rows(text: str, repeats: int, prime: str) -> list[Row]:
    """Every compressor alone (median of `repeats` timings), then each given the training
    split first (`prime`, one timing: size(train + text) - size(train), lmcore.info.compressors).
    A primed row's speed counts the whole train + text it had to read."""
    found = []
    for name, codec in codecs().items():
        runs = [measure_one(name, codec, text) for _ in range(repeats)]
        found.append((runs[0], statistics.median(m.seconds for m in runs),
                      statistics.median(m.decode_seconds for m in runs)))
    for name, codec in codecs().items():
        m = measure_one(name, codec, text, prime)
        found.append((m, m.seconds, m.decode_seconds))
    xz = next(m.size for m, *_ in found if m.name == "xz -9" and not m.primed)
    return [Row(m.label, m.size, m.chars, m.bytes, xz, None, 0, enc_s, dec_s, m.round_trip,
                saw_training=m.primed) for m, enc_s, dec_s in found]


def xz_size(text: str) -> int:
    return len(codecs()["xz -9"][0](text.encode("utf-8")))


def model_row(name: str, model, text: str, xz: int, saw_training: bool = True) -> Row:
    enc = encode(model, text)
    t0 = time.perf_counter()
    back = decompress(model, enc.data)
    dec_s = time.perf_counter() - t0
    ok = hashlib.sha256(back.encode()).digest() == hashlib.sha256(text.encode()).digest()
    return Row(name, enc.size, enc.chars, enc.bytes_in, xz, enc.ideal_bits / enc.chars,
               model_bytes(model), enc.seconds, dec_s, ok, saw_training)


def verdict(rows: list[Row], held_chars: int, quick: bool) -> str:
    """The best lmcore coder (by size against xz -9 on the same text) and the target's state."""
    models = [r for r in rows if r.is_model and r.ok]
    if not models:
        return "No lmcore coder round-tripped: no best coder, target not met."
    win = min(models, key=lambda r: r.vs_xz)
    line = (f"Best lmcore coder: {win.name} at {8 * win.size / win.chars:.4f} bits/char = "
            f"{win.vs_xz:.3f} x xz -9 on the same {win.chars:,} chars.")
    if quick:
        return (line + " Target not judged in --quick mode: on 3,000 chars xz's fixed "
                "overhead (its header alone is ~60 bytes) and short history make it look "
                "worse than it is; run without --quick.")
    full = [r for r in models if r.chars == held_chars]
    best_full = min(full, key=lambda r: r.vs_xz) if full else None
    met = best_full is not None and best_full.vs_xz < 1
    line += f" Target ({TARGET}): {'met' if met else 'NOT met'}"
    if best_full is not None:
        line += f" by {best_full.name} ({best_full.vs_xz:.3f} x xz -9)"
    if win.chars != held_chars:
        line += (f"; {win.name} coded only the first {win.chars:,} chars "
                 "(--transformer-chars), which does not test the target")
    zpaq = next((r for r in rows if r.name == "zpaq -m5 primed" and r.ok), None)
    if zpaq is not None and best_full is not None:
        bpc = 8 * best_full.size / best_full.chars
        z = 8 * zpaq.size / zpaq.chars
        line += (f". Target ({TARGET_EQUAL}): {'met' if bpc < z else 'NOT met'}: "
                 f"{best_full.name} {bpc:.4f} bits/char vs zpaq -m5 primed {z:.4f}")
    return line + "."


def bilingual_text(chars: int = 60_000, seed: int = 0) -> str:
    """A generated Chinese/English chat (seeded): the second text the ordering is checked on."""
    import random

    rng = random.Random(seed)
    en = ["the model", "this file", "our test", "a small corpus", "the coder", "every token",
          "the new tokenizer", "that result"]
    verbs = ["compresses", "reads", "predicts", "decodes", "measures", "checks"]
    objs = ["the held-out text", "each character", "Chinese and English", "the training split",
            "a long sentence", "the same bytes"]
    zh = ["我们今天测试压缩", "这个模型读取文本", "每个字符都有概率", "训练集和测试集不同",
          "中文和英文混在一起", "解码以后得到同样的字节", "这个结果很好", "我觉得还可以更好"]
    names = ["Lin", "Anna", "王伟", "Sam", "李娜"]
    out, n = [], 0
    while n < chars:
        who = rng.choice(names)
        if rng.random() < 0.5:
            line = f"{who}: {rng.choice(en)} {rng.choice(verbs)} {rng.choice(objs)}."
        else:
            line = f"{who}：{rng.choice(zh)}，{rng.choice(zh)}。"
        if rng.random() < 0.2:
            line += f" ({rng.randint(1, 999)} ms)"
        out.append(line + "\n")
        n += len(line) + 1
    return "".join(out)[:chars]


WIDE = 128  # the speed table's --streams row
SECOND_TF = (2, 64, 800)  # the second text's Transformer: 54,000 chars take a smaller one


def ordering_rows(train: str, test: str) -> list[tuple[str, float, bool]]:
    """(coder, bits/char, round trip) on a second text: primed classical anchors, the KN
    6-gram, the adaptive model and the mixing coder without and with a Transformer (2x64,
    800 steps: 78 s), all given `train`."""
    from lmcore.info.mixing import mixing_coder

    out = []
    for name, codec in codecs().items():
        if name in ("xz -9", "PPMd o10 (7z)", "zpaq -m5"):
            m = measure_one(name, codec, test, train)
            out.append((m.label, m.bits_per_char, m.round_trip))
    tok = train_tokenizer("char", train + test)  # the char set of both (a coder needs it)
    grid = NGramLM.fit_grid([tok.encode(train)], tokenizer_vocab(tok), orders=[2, 4, 6],
                            smoothings=["kn"], tokenizer=tok)
    for name, model in (("KN char 6-gram", grid[("kn", 6)]),
                        ("adaptive over KN 6-gram", AdaptiveLM(grid[("kn", 6)])),
                        ("mixing coder", mixing_coder([grid[("kn", n)] for n in (2, 4, 6)],
                                                      tok.encode(train))),
                        ("mixing coder + Transformer 2x64", mixing_coder(
                            [grid[("kn", n)] for n in (2, 4, 6)], tok.encode(train),
                            transformer=coder_transformer(train, tok, False, SECOND_TF)))):
        r = model_row(name, model, test, 1)
        out.append((name, 8 * r.size / r.chars, r.ok))
    return out


def coder_transformer(train: str, tok, quick: bool, shape: tuple[int, int, int] | None = None):
    """The char Transformer the mixing coder mixes in: 4 layers, width 128, context 128,
    dropout 0.1, trained for 2,500 steps of 32 windows on the training split (its last 3%
    held for evaluation), seeded, on one thread (17 min here); kept in .bench-cache by a hash
    of the text and the settings, so later runs load it. --quick: 1 layer, width 32, 30 steps.
    `shape`: (layers, width, steps) instead.
    """
    import torch

    from lmcore.info.threads import one_torch_thread
    from lmcore.models.checkpoint import load_model, save_model
    from lmcore.models.transformer import Transformer, TransformerConfig
    from lmcore.train.data import TokenData
    from lmcore.train.objectives import CausalLM
    from lmcore.train.trainer import TrainConfig, seeded
    from lmcore.train.trainer import train as train_model

    layers, width, steps = shape or ((1, 32, 30) if quick else (4, 128, 2500))
    mcfg = TransformerConfig(vocab_size=tok.vocab_size, context=128, n_layer=layers,
                             n_head=4, n_embd=width, dropout=0.1)
    tcfg = TrainConfig(steps=steps, batch_size=32, lr=3e-3, warmup_steps=50,
                       eval_every=max(steps // 10, 1), seed=0)
    key = hashlib.sha256(f"{train}|{mcfg}|{tcfg}|torch {torch.__version__}".encode())
    folder = ROOT / ".bench-cache" / f"compress-transformer-{key.hexdigest()[:16]}"
    if not (folder / "config.json").is_file():
        cut = int(len(train) * 0.97)
        data = TokenData.from_text(tok, train[:cut], train[cut:])
        model = seeded(lambda: Transformer(mcfg), 0)
        t0 = time.perf_counter()
        with one_torch_thread():
            result = train_model(model, CausalLM(), data, tcfg)
        if result.status != "done":
            raise RuntimeError(f"training the coder's Transformer failed: {result.error}")
        print(f"  trained the {layers}x{width} Transformer: {steps} steps in "
              f"{time.perf_counter() - t0:.0f} s, validation {result.bits_per_char:.3f} "
              f"bits/char", file=sys.stderr, flush=True)
        save_model(folder, model, tok)
    return load_model(folder).lm()


def speed_rows(test: str, ngram, quick: bool) -> list[str]:
    """Markdown rows: plain per-token coding against the fast paths, side by side."""
    import torch

    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

    def timed(model, text, plain, streams=None):
        t0 = time.perf_counter()
        data = encode(model, text, plain=plain, streams=streams).data
        t1 = time.perf_counter()
        ok = decompress(model, data, plain=plain) == text
        return len(text) / (t1 - t0) / 1e3, len(text) / (time.perf_counter() - t1) / 1e3, ok

    torch.manual_seed(0)
    width, layers = (32, 1) if quick else (128, 4)
    cfg = TransformerConfig(vocab_size=ngram.vocab_size, context=128, n_layer=layers,
                            n_head=4, n_embd=width)
    tf = TransformerLM(Transformer(cfg), ngram.tokenizer)
    plain_chars = 100 if quick else 400
    rows = []
    # (label, model, plain, text, streams, the row it is compared with)
    for label, model, plain, text, streams, base in (
            (f"KN char {ngram.order}-gram, plain (per token)", ngram, True, test, None, 0),
            (f"KN char {ngram.order}-gram, table + batch", ngram, False, test, None, 0),
            (f"Transformer {layers}x{width}, plain (window per token; first "
             f"{plain_chars} chars)", tf, True, test[:plain_chars], None, 2),
            (f"Transformer {layers}x{width}, lockstep streams + KV cache (default: "
             f"{stream_count(len(tf.tokenizer.encode(test)))} streams here)", tf, False, test, None, 2),
            (f"Transformer {layers}x{width}, the same with --streams {WIDE} (a few bits more "
             "a stream)", tf, False, test, WIDE, 2)):
        enc_k, dec_k, ok = timed(model, text, plain, streams)
        rows.append((label, len(text), enc_k, dec_k, ok, base))
        print(f"  timed {label}", file=sys.stderr, flush=True)
    out = ["| coder | chars | encode kchar/s | decode kchar/s | encode x plain | "
           "decode x plain | round trip |", "|---|---|---|---|---|---|---|"]
    for label, n, e, d, ok, b in rows:
        base = rows[b]
        out.append(f"| {label} | {n:,} | {e:,.3f} | {d:,.3f} | {e / base[2]:,.1f} | "
                   f"{d / base[3]:,.1f} | {'ok' if ok else 'FAILED'} |")
    return out


ISSUE_KCHAR = {"ngram": 5.0, "transformer": 0.2}  # issue 18's "today" speeds, kchar/s
SPEEDUP = {"ngram": 10, "transformer": 50}  # its targets, as multiples of those


def speed_verdict(lines: list[str], quick: bool) -> str:
    """The speed targets judged on `speed_rows`' table: the default Transformer lockstep
    coder at 50x the plain coder timed beside it, encode and decode; the n-gram table path
    at 10x the issue's 5 kchar/s (the plain n-gram coder has itself grown faster since)."""
    if quick:
        return "Speed targets not judged in --quick mode (a 1x32 model on 3,000 chars)."
    cells = [r.split(" | ") for r in lines[2:]]
    num = [(float(c[2].replace(",", "")), float(c[3].replace(",", "")),
            float(c[4].replace(",", "")), float(c[5].replace(",", ""))) for c in cells]
    (ge, gd, gx, gy), (te, td, tx, ty) = num[1], num[3]
    g_need = SPEEDUP["ngram"] * ISSUE_KCHAR["ngram"]
    g_ok = min(ge, gd) >= g_need
    t_ok = min(tx, ty) >= SPEEDUP["transformer"]
    return (f"Speed targets: the default Transformer lockstep coder runs {te:,.1f} / "
            f"{td:,.1f} kchar/s (encode / decode) = {tx:.1f}x / {ty:.1f}x the plain coder "
            f"beside it, {te / ISSUE_KCHAR['transformer']:.0f}x / "
            f"{td / ISSUE_KCHAR['transformer']:.0f}x the issue's "
            f"{ISSUE_KCHAR['transformer']} kchar/s: target {SPEEDUP['transformer']}x side by "
            f"side {'met' if t_ok else 'NOT met'}. The n-gram table path runs {ge:,.0f} / "
            f"{gd:,.0f} kchar/s = {gx:.1f}x / {gy:.1f}x the plain n-gram coder beside it: "
            f"target {SPEEDUP['ngram']}x the issue's {ISSUE_KCHAR['ngram']:.0f} kchar/s "
            f"({g_need:.0f} kchar/s) {'met' if g_ok else 'NOT met'}.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3,000 held-out chars, orders 3 and 5")
    ap.add_argument("--orders", default=None, help="comma-separated n-gram orders (default "
                    "3,4,5,6; quick: 3,5)")
    ap.add_argument("--transformer", metavar="DIR", action="append", default=[],
                    help="also code with this checkpoint (repeatable)")
    ap.add_argument("--transformer-chars", type=int, default=0,
                    help="held-out characters the Transformer codes (default 0: all of them)")
    args = ap.parse_args(argv)

    split = pydoc_corpus().split()
    test = split.test[:3000] if args.quick else split.test
    orders = [int(x) for x in (args.orders or ("3,5" if args.quick else "3,4,5,6")).split(",")]
    nbytes = len(test.encode("utf-8"))
    print(f"held-out text: {len(test):,} chars, {nbytes:,} bytes (last 10% of pydoc topics"
          f"{', first 3,000 chars' if args.quick else ''}); training split "
          f"{len(split.train):,} chars\n")

    for name, why in missing().items():
        print(f"{name}: not measured, {why}")
    rows = compressor_rows(test, 3 if args.quick else 5, split.train)
    xz = next(r.size for r in rows if r.name == "xz -9")
    t0 = time.perf_counter()
    tok = train_tokenizer("char", split.train)
    grid = NGramLM.fit_grid([tok.encode(split.train)], tokenizer_vocab(tok),
                            orders=sorted(set(orders) | {2, 4, 6}), smoothings=["kn"],
                            tokenizer=tok)
    fit_s = time.perf_counter() - t0
    for n in orders:
        rows.append(model_row(f"KN char {n}-gram", grid[("kn", n)], test, xz))
        print(f"  coded with the {n}-gram", file=sys.stderr, flush=True)
    best = grid[("kn", max(orders))]
    rows.append(model_row(f"adaptive over KN {max(orders)}-gram", AdaptiveLM(best), test, xz))
    rows.append(model_row("online PPM (no training)",
                          AdaptiveLM(None, vocab_size=tok.vocab_size, tokenizer=tok), test, xz,
                          saw_training=False))
    mixer = mixing_coder([grid[("kn", n)] for n in (2, 4, 6)], tok.encode(split.train))
    rows.append(model_row(MIXER, mixer, test, xz))
    print("  coded with the mixing coder", file=sys.stderr, flush=True)
    tf = coder_transformer(split.train, tok, args.quick)
    shape = f"{tf.config.n_layer}x{tf.config.n_embd}"
    rows.append(model_row(f"Transformer {shape} char, trained on the split (alone)", tf, test,
                          xz))
    mixer = mixing_coder([grid[("kn", n)] for n in (2, 4, 6)], tok.encode(split.train),
                         transformer=tf)
    rows.append(model_row(f"{MIXER[:-1]}, Transformer {shape})", mixer, test, xz))
    print("  coded with the mixing coder and the Transformer", file=sys.stderr, flush=True)
    for folder in args.transformer:
        from lmcore.cli.compress import load_language_model

        n = args.transformer_chars
        part = test[:n] if 0 < n < len(test) else test
        label = f"Transformer {Path(folder).name}"
        if len(part) < len(test):
            label += f" (first {len(part):,} chars)"
        rows.append(model_row(label, load_language_model(folder), part,
                              xz if part is test else xz_size(part)))
        print(f"  coded with {folder}", file=sys.stderr, flush=True)
    print(COLUMNS)
    print("|" + "---|" * (COLUMNS.count("|") - 1))
    for r in rows:
        print(r.markdown())
    print(f"\nn-gram fit (orders {','.join(map(str, orders))}, one count pass): {fit_s:.2f} s. "
          + verdict(rows, len(test), args.quick))
    ok = all(r.ok for r in rows)
    print("\nCoder speed, side by side in this run (the machine may be shared: compare ratios; "
          "each 'x plain' is against the plain row of the same model):\n")
    speed = speed_rows(test, grid[("kn", 6)], args.quick)
    print("\n".join(speed))
    print("\n" + speed_verdict(speed, args.quick))
    ok = ok and all(line.endswith("| ok |") for line in speed[2:])
    if not args.quick:
        second = bilingual_text()
        cut = int(len(second) * 0.9)
        order = ordering_rows(second[:cut], second[cut:])
        print(f"\nSecond text: a generated Chinese/English chat ({len(second) - cut:,} held-out "
              f"chars after {cut:,} training chars), every row given the training part:\n")
        print("| coder | bits/char | round trip |\n|---|---|---|")
        for name, bpc, good in sorted(order, key=lambda r: r[1]):
            print(f"| {name} | {bpc:.4f} | {'ok' if good else 'FAILED'} |")
        ok = ok and all(good for *_, good in order)
        by = {name: bpc for name, bpc, _ in order}
        print()
        bpc = {r.name: 8 * r.size / r.chars for r in rows}
        mine = [r for r in rows if r.is_model and r.ok and r.chars == len(test)]
        best = min(mine, key=lambda r: r.size) if mine else None
        mix = "mixing coder + Transformer 2x64"
        for anchor in ("zpaq -m5 primed", "PPMd o10 (7z) primed", "xz -9 primed"):
            if anchor in by and anchor in bpc and best is not None:
                here, there = by[mix] < by[anchor], bpc[best.name] < bpc[anchor]
                print(f"- lmcore's best coder (the mixing coder with a Transformer) vs "
                      f"{anchor}: {'wins' if here else 'loses'} here ({by[mix]:.4f} vs "
                      f"{by[anchor]:.4f} bits/char), {'wins' if there else 'loses'} on the "
                      f"pydoc held-out text ({bpc[best.name]:.4f} vs {bpc[anchor]:.4f}): "
                      f"{'the same ordering' if here == there else 'NOT the same ordering'}.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
