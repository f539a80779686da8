"""`lmcore ngram train|eval`: n-gram models to and from ARPA files, the KenLM way.

`--tokenizer whitespace` takes pre-tokenised text as it is, one sentence per line, tokens
separated by spaces (KenLM's `lmplz` input convention), so the same file gives the same ARPA
model in both tools: the file is read as bytes, lines end at LF only, words are split on NUL,
tab, CR and space only (a vertical tab or form feed is part of a word), a last line without a
newline gets no `</s>`, and `<s>`, `</s>`, `<unk>` in the text are refused, all as lmplz does. `word`, `char` and `bpe` train a lmcore tokenizer on the file (or load one
with `--tokenizer-file`), fit over its ids with the whole text as one sequence (newlines
normalised to LF, as the app's corpus loader does), and save the tokenizer beside the model as
`MODEL.tokenizer.json` so `eval` can use it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lmcore.cli import CLIError, output_path, read_input, read_tokenizer, real, whole
from lmcore.models.arpa import read_arpa, write_arpa
from lmcore.models.ngram import MAX_ORDER, SMOOTHINGS, Evaluation, NGramConfig, NGramLM

if TYPE_CHECKING:
    from lmcore.data.tokenizers import Tokenizer

TOKENIZERS = ("whitespace", "word", "char", "bpe")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ngram", help="fit n-gram models, write/read ARPA, score text",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="ngram_command", metavar="ACTION", required=True)

    t = sub.add_parser("train", help="fit an n-gram model on FILE and write it as ARPA",
                       description="Fit an n-gram model on FILE. With --tokenizer whitespace "
                                   "the result equals KenLM's `lmplz -o N` on the same file.")
    t.add_argument("file", metavar="FILE", help="training text (UTF-8)")
    t.add_argument("--order", type=whole(1, MAX_ORDER), default=3, help=f"n, from 1 to {MAX_ORDER} (default 3)")
    t.add_argument("--smoothing", default="kn", choices=SMOOTHINGS,
                   help="kn (KenLM's interpolated modified Kneser-Ney, default), mle, addk, "
                        "stupid")
    t.add_argument("--k", type=real(above=0), default=1.0, help="add-k pseudo-count (default 1: Laplace)")
    t.add_argument("--alpha", type=real(above=0, most=1), default=0.4, help="stupid backoff factor (default 0.4)")
    t.add_argument("--tokenizer", default="whitespace", choices=TOKENIZERS,
                   help="whitespace: one sentence per line, tokens split on spaces (KenLM); "
                        "word/char/bpe: a lmcore tokenizer trained on FILE")
    t.add_argument("--tokenizer-file", metavar="JSON", help="use this saved lmcore tokenizer "
                   "instead of training one")
    t.add_argument("--vocab-size", type=whole(1), default=None, help="tokenizer vocabulary size "
                   "(bpe, word; default per kind)")
    t.add_argument("-o", "--output", metavar="MODEL.arpa", help="where to write the ARPA model")
    t.add_argument("--eval", metavar="TEST", help="also score this held-out file")
    t.set_defaults(func=run_train)

    e = sub.add_parser("eval", help="score a text under an ARPA model",
                       description="Perplexity with and without OOV tokens, computed KenLM's "
                                   "way: 10 ** (-total log10 p / scored tokens), </s> included.")
    e.add_argument("model", metavar="MODEL.arpa")
    e.add_argument("file", metavar="FILE", help="text to score (UTF-8)")
    e.add_argument("--tokenizer-file", metavar="JSON", help="the model's lmcore tokenizer "
                   "(default: MODEL.tokenizer.json when it exists, else whitespace sentences)")
    e.set_defaults(func=run_eval)


def _read(path: str, normalise_newlines: bool = False) -> str:
    """The file's text, decoded from its bytes as they are (no newline translation, so a CR
    stays a CR as lmplz sees it), or with CRLF and CR turned into LF for tokenizer models."""
    data, _ = read_input(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                       "convert it first, e.g. with `lmcore corpus`") from None
    if not text:
        raise CLIError(f"{path} is empty: give a file with some text in it")
    if normalise_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _lines(text: str) -> tuple[list[str], bool]:
    """Lines split at LF only, and whether the last one ended with a newline (KenLM gives a
    last line without one no `</s>`)."""
    lines = text.split("\n")
    if lines[-1] == "":
        return lines[:-1], True
    return lines, False


def tokenizer_path(model_path: str | Path) -> Path:
    """Where the tokenizer of a tokenizer-backed ARPA model is kept."""
    return Path(model_path).with_suffix(".tokenizer.json")


def _load_tokenizer(path: str) -> Tokenizer:
    return read_tokenizer(path)


def format_evaluation(ev: Evaluation, name: str, sentences: bool = True) -> str:
    """KenLM-style summary lines for one scored file."""
    zero = f" ({ev.zero_prob:,} tokens had probability 0: perplexity is inf)" \
        if ev.zero_prob else ""
    return "\n".join([
        f"{name}: {ev.tokens:,} tokens scored{' (incl. </s>)' if sentences else ''}, "
        f"{ev.oov:,} OOV{zero}",
        f"log10 p total: {ev.log10_prob:.4f}",
        f"Perplexity including OOVs:\t{ev.perplexity:.6g}",
        f"Perplexity excluding OOVs:\t{ev.perplexity_no_oov:.6g}",
        f"Bits per character:\t{ev.bits_per_char:.4f}",
    ])


def _evaluate(model: NGramLM, text: str) -> Evaluation:
    """Score `text` (read by `_read`, newlines normalised for a tokenizer model)."""
    if model.tokenizer is None:
        lines, final_eos = _lines(text)
        return model.score_lines(lines, final_eos=final_eos)
    return model.score_text(text)


def run_train(args: argparse.Namespace) -> int:
    config = NGramConfig(order=args.order, smoothing=args.smoothing, k=args.k, alpha=args.alpha)
    whitespace = args.tokenizer == "whitespace" and not args.tokenizer_file
    out = output_path(args.output)  # everything is checked before anything is written
    if out is not None and not whitespace:
        output_path(str(tokenizer_path(out)))
    text = _read(args.file, normalise_newlines=not whitespace)
    given_tok = _load_tokenizer(args.tokenizer_file) if args.tokenizer_file else None
    eval_text = _read(args.eval, normalise_newlines=not whitespace) if args.eval else None
    start = time.perf_counter()
    if whitespace:
        lines, final_eos = _lines(text)
        model = NGramLM.from_sentences(lines, config, final_eos=final_eos)
    else:
        if given_tok is not None:
            tok = given_tok
        else:
            from lmcore.data.tokenizers import train_tokenizer

            tok = train_tokenizer(args.tokenizer, text, vocab_size=args.vocab_size)
        model = NGramLM.from_tokenizer(tok, text, config)
    fit_s = time.perf_counter() - start
    counts = ", ".join(f"{n}-grams {c:,}" for n, c in enumerate(model.ngram_counts(), start=1))
    print(f"fitted order-{config.order} {config.smoothing} model in {fit_s:.2f} s: {counts}")
    for n, d in model.discounts.items():
        note = " (fallback: counts-of-counts too sparse)" if n in model.fallback_orders else ""
        print(f"discounts {n}-grams: D1={d[0]:.6f} D2={d[1]:.6f} D3+={d[2]:.6f}{note}")
    evaluation = _evaluate(model, eval_text) if eval_text is not None else None
    if out is not None:
        if model.tokenizer is not None:
            model.tokenizer.save(tokenizer_path(out))
        write_arpa(model, out)
        print(f"wrote {out}")
        if model.tokenizer is not None:
            print(f"wrote {tokenizer_path(out)}")
    if evaluation is not None:
        print(format_evaluation(evaluation, args.eval, sentences=model.tokenizer is None))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    if not Path(args.model).is_file():
        raise CLIError(f"{args.model}: no such model file")
    tok_file = args.tokenizer_file or (str(tokenizer_path(args.model))
                                       if tokenizer_path(args.model).is_file() else None)
    tok = _load_tokenizer(tok_file) if tok_file else None
    text = _read(args.file, normalise_newlines=tok is not None)
    model = read_arpa(args.model, tokenizer=tok)
    print(format_evaluation(_evaluate(model, text), args.file,
                            sentences=tok is None))
    return 0
