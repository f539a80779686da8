"""`lmcore tokenize FILE`: train tokenizers on a text, save the JSON, print their stats."""

from __future__ import annotations

import argparse

from lmcore.cli import CLIError, output_path, read_corpus_file, whole
from lmcore.data.tokenizers import KINDS, TokenizerStats, tokenizer_stats, train_tokenizer

_COLUMNS = ("kind", "vocab", "tokens", "chars/token", "bytes/token", "unk share", "train s")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tokenize", help="train a tokenizer on a text, save it as JSON, print its stats",
        description="Train a tokenizer on the training split of FILE (first 85%) and measure "
                    "it on the test split (last 10%), or on the whole text with --whole.")
    p.add_argument("file", metavar="FILE", help="a text file in any common encoding, or - "
                   "for standard input")
    p.add_argument("--kind", default="bpe", help=f"one of {', '.join(KINDS)} (default bpe)")
    p.add_argument("--compare", metavar="KINDS", help="comma-separated kinds to train and "
                   "compare, one stats row each (e.g. char,byte,bpe,wordpiece,unigram)")
    p.add_argument("--vocab-size", type=whole(1), default=None,
                   help="vocabulary size for bpe, wordpiece, unigram, word (default per kind)")
    p.add_argument("--min-frequency", type=whole(1), default=None,
                   help="drop units seen fewer times than this (default per kind)")
    p.add_argument("--whole", action="store_true",
                   help="train and measure on the whole text instead of train/test splits")
    p.add_argument("-o", "--output", metavar="PATH", help="where to save the tokenizer JSON "
                   "(with --compare: a folder that gets one KIND.json per kind)")
    p.set_defaults(func=run)


def _kinds(args: argparse.Namespace) -> list[str]:
    kinds = [k.strip() for k in args.compare.split(",") if k.strip()] if args.compare \
        else [args.kind]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise CLIError(f"unknown tokenizer kind {unknown[0] if unknown else '(none)'!r}; "
                       f"choose from {', '.join(KINDS)}")
    return list(dict.fromkeys(kinds))


def _row(s: TokenizerStats) -> list[str]:
    secs = "" if s.train_seconds is None else f"{s.train_seconds:.2f}"
    return [s.kind, f"{s.vocab_size:,}", f"{s.tokens:,}", f"{s.chars_per_token:.3f}",
            f"{s.bytes_per_token:.3f}", f"{s.unk_share:.2%}", secs]


def format_table(stats: list[TokenizerStats]) -> str:
    """The stats as a Markdown table, one row per tokenizer."""
    rows = [list(_COLUMNS)] + [_row(s) for s in stats]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    kinds = _kinds(args)
    out = output_path(args.output, folder=len(kinds) > 1, parents=True)  # before any work
    targets = [out / f"{kind}.json" for kind in kinds] if out is not None and len(kinds) > 1 \
        else [out] * (out is not None)
    for t in targets:
        output_path(str(t), parents=True)
    corpus = read_corpus_file(args.file)
    split = corpus.split()
    if args.whole or not split.test:
        train, test, where = corpus.text, corpus.text, "trained and measured on the whole text"
    else:
        train, test = split.train, split.test
        where = (f"trained on the first {len(train):,} characters, measured on the last "
                 f"{len(test):,}")
    stats, toks = [], []
    for kind in kinds:  # all trained before any is saved: a refused kind leaves no files
        learned = kind in ("bpe", "wordpiece", "unigram", "word")
        vocab = args.vocab_size if learned or len(kinds) == 1 else None
        tok = train_tokenizer(kind, train, vocab_size=vocab, min_frequency=args.min_frequency)
        stats.append(tokenizer_stats(tok, test))
        toks.append(tok)
    if out is not None:
        targets[0].parent.mkdir(parents=True, exist_ok=True)
        for tok, path in zip(toks, targets, strict=True):
            tok.save(path)
    print(f"{corpus.name}: {corpus.chars:,} characters, {corpus.encoding}; {where}")
    print(format_table(stats))
    if out is not None:
        print(f"saved {', '.join(kinds)} tokenizer{'s' if len(kinds) > 1 else ''} to {out}")
    return 0
