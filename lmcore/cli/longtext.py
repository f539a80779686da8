"""`lmcore longtext chunk|score|summarize|continue FILE`: the Long-texts page as commands."""

from __future__ import annotations

import argparse
import json
import sys

from lmcore.cli import CLIError, read_corpus_file, read_tokenizer, real, whole
from lmcore.data.corpus import Corpus

_SCORE_COLUMNS = ("strategy", "attention", "window", "stride", "windows", "tokens_scored",
                  "chars_scored", "bits_per_char", "seconds", "peak_extra_mb")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "longtext", help="chunk, score, summarize or continue a text longer than the context",
        description="Long texts through a model with a short context: chunking with exact "
                    "offsets, truncation/disjoint/sliding/full scoring in bits per character, "
                    "a map-reduce summary tree, and continuation from the last window.")
    sub = p.add_subparsers(dest="longtext_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser, model: bool = True) -> None:
        q.add_argument("file", metavar="FILE", help="a text file in any common encoding, or - "
                       "for standard input")
        q.add_argument("--chars", type=whole(1), default=None,
                       help="use only the first N characters of the text")
        if model:
            q.add_argument("--model", metavar="DIR", help="a Transformer checkpoint folder "
                           "(saved by `lmcore train`)")
            q.add_argument("--ngram", type=whole(1, 6), metavar="ORDER", default=None,
                           help="instead of --model: fit a Kneser-Ney n-gram of this order on "
                                "the text's training split (char tokens)")

    ch = sub.add_parser("chunk", help="split into chunks; print offsets and sizes")
    common(ch, model=False)
    ch.add_argument("--size", type=whole(1), default=512, help="chunk size (default 512)")
    ch.add_argument("--overlap", type=whole(0), default=64, help="overlap (default 64)")
    ch.add_argument("--unit", choices=("tokens", "chars"), default="chars",
                    help="measure sizes in characters (default) or tokens of --tokenizer")
    ch.add_argument("--tokenizer", metavar="JSON", help="an lmcore tokenizer JSON file")
    ch.add_argument("--json", action="store_true", help="print the chunks as JSON lines")
    ch.set_defaults(func=_chunk)

    sc = sub.add_parser("score", help="bits/char by truncation, disjoint, sliding or full pass")
    common(sc)
    sc.add_argument("--strategy", default="truncation,disjoint,sliding",
                    help="comma-separated: truncation, disjoint, sliding, full")
    sc.add_argument("--window", type=whole(1), default=None,
                    help="window C in tokens (default: the model's context)")
    sc.add_argument("--stride", type=whole(1), default=None,
                    help="sliding-window stride S (default C/4)")
    sc.add_argument("--attention", choices=("tiled", "sdpa", "naive"), default="tiled")
    sc.set_defaults(func=_score)

    sm = sub.add_parser("summarize", help="map-reduce summary tree within a character budget")
    common(sm)
    sm.add_argument("--budget", type=whole(1), default=400, help="summary characters (default 400)")
    sm.add_argument("--chunk-size", type=whole(1), default=2000, help="characters per chunk")
    sm.add_argument("--fan-in", type=whole(2), default=4, help="summaries joined per level")
    sm.add_argument("--llm-url", default=None, help="an OpenAI-compatible server (e.g. "
                    "http://127.0.0.1:11434) instead of the offline extractive summarizer")
    sm.add_argument("--llm-model", default=None, help="chat model name for --llm-url")
    sm.add_argument("--api-key", default=None, help="bearer token for --llm-url")
    sm.add_argument("--reference", metavar="FILE", help="a reference summary: print ROUGE")
    sm.add_argument("--tree", action="store_true", help="print the whole tree as JSON")
    sm.set_defaults(func=_summarize)

    co = sub.add_parser("continue", help="generate after the last window of the text")
    common(co)
    co.add_argument("-n", "--tokens", type=whole(1), default=100, help="tokens to generate")
    co.add_argument("--window", type=whole(1), default=None, help="window (default: the model's)")
    co.add_argument("--temperature", type=real(least=0), default=0.8)
    co.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    co.set_defaults(func=_continue)


def _text(args: argparse.Namespace) -> tuple[Corpus, str]:
    corpus = read_corpus_file(args.file)
    text = corpus.text[: args.chars] if args.chars else corpus.text
    return corpus, text


def _model(args: argparse.Namespace, corpus: Corpus, required: bool = True):
    """(model, tokenizer) from --model or --ngram; (None, None) when neither and optional."""
    if args.model and args.ngram:
        raise CLIError("give --model or --ngram, not both")
    if args.model:
        from lmcore.models.checkpoint import load_model

        loaded = load_model(args.model)
        if loaded.tokenizer is None:
            raise CLIError(f"{args.model} has no tokenizer.json: cannot read text with it")
        return loaded.lm(), loaded.tokenizer
    if args.ngram:
        from lmcore.data.tokenizers import train_tokenizer
        from lmcore.models.ngram import NGramLM

        train = corpus.split().train or corpus.text
        tok = train_tokenizer("char", train)
        return NGramLM.from_tokenizer(tok, train, order=args.ngram, smoothing="kn"), tok
    if required:
        raise CLIError("choose a model: --model DIR (a Transformer checkpoint) or --ngram ORDER")
    return None, None


def _chunk(args: argparse.Namespace) -> int:
    from lmcore.longtext.chunking import split_text

    _, text = _text(args)
    tok = None
    if args.tokenizer:
        tok = read_tokenizer(args.tokenizer)
    elif args.unit == "tokens":
        raise CLIError("--unit tokens needs --tokenizer JSON (or use --unit chars)")
    chunks = split_text(text, args.size, args.overlap, tokenizer=tok, unit=args.unit)
    if args.json:
        for c in chunks:
            print(json.dumps({"index": c.index, "start": c.start, "end": c.end,
                              "tokens": c.tokens, "overlap": c.overlap_with_prev,
                              "text": c.text}, ensure_ascii=False))
        return 0
    print("| index | start | end | chars | tokens | overlap | begins |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for c in chunks:
        head = c.text[:30].replace("\n", "⏎").replace("|", "\\|")
        print(f"| {c.index} | {c.start} | {c.end} | {c.chars} | {c.tokens} | "
              f"{c.overlap_with_prev} | {head} |")
    return 0


def _score(args: argparse.Namespace) -> int:
    from lmcore.longtext.strategies import STRATEGIES, char_bounds, evaluate_ids, max_window

    corpus, text = _text(args)
    model, tok = _model(args, corpus)
    names = [s.strip() for s in args.strategy.split(",") if s.strip()]
    bad = [s for s in names if s not in STRATEGIES]
    if bad or not names:
        raise CLIError(f"unknown strategy {bad[0] if bad else '(none)'!r}; choose from "
                       f"{', '.join(STRATEGIES)}")
    window = args.window or max_window(model)
    if window is None:
        raise CLIError("an n-gram has no context of its own: give --window")
    stride = args.stride or max(1, window // 4)
    ids, offsets = tok.encode_offsets(text)
    bounds = char_bounds(offsets, len(text))
    print("| " + " | ".join(_SCORE_COLUMNS) + " |")
    print("|" + "---|" * len(_SCORE_COLUMNS))
    for name in names:
        r = evaluate_ids(model, ids, bounds, name, window=window, stride=stride,
                         attention=args.attention)
        row = r.summary()
        cells = [row[c] for c in _SCORE_COLUMNS]
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else
                                ("-" if v is None else str(v)) for v in cells) + " |")
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from lmcore.longtext.summarize import ChatSummarizer, ExtractiveSummarizer, summarize_tree

    corpus, text = _text(args)
    ref = read_corpus_file(args.reference).text if args.reference is not None else None
    if args.llm_url:
        if not args.llm_model:
            raise CLIError("--llm-url needs --llm-model (the chat model's name)")
        summarizer = ChatSummarizer(args.llm_url, args.llm_model, args.api_key)
    else:
        model, tok = _model(args, corpus, required=False)
        summarizer = ExtractiveSummarizer(model, tok)
    root = summarize_tree(text, summarizer, budget=args.budget, chunk_size=args.chunk_size,
                          fan_in=args.fan_in)
    if args.tree:
        print(json.dumps(root.to_dict(), ensure_ascii=False, indent=1))
    else:
        print(root.text)
    print(f"\n({len(root.text)} characters; tree depth {root.level}; {summarizer.method})",
          file=sys.stderr)
    if ref is not None:
        from lmcore.longtext.rouge import rouge

        print("\n| metric | precision | recall | f1 |\n|---|---:|---:|---:|")
        for name, s in rouge(ref, root.text).items():
            print(f"| {name} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} |")
    return 0


def _continue(args: argparse.Namespace) -> int:
    from lmcore.longtext.continuation import continue_text

    corpus, text = _text(args)
    model, tok = _model(args, corpus)
    out = continue_text(model, tok, text, args.tokens, window=args.window, seed=args.seed,
                        temperature=args.temperature)
    print(f"[the model saw the last {out.context_tokens} tokens, from character "
          f"{out.context_start:,} of {len(text):,}]", file=sys.stderr)
    print(out.text)
    return 0
