"""`lmcore embed`: word2vec on a corpus, neighbours, analogies, and a Transformer's vectors.

Trains skip-gram with negative sampling on the corpus's training split and prints, per query
word, its nearest neighbours by cosine. With `--model DIR` (a lmcore checkpoint folder) the
model's token table is compared with word2vec (neighbours within the units both know) and
`--contextual WORD` prints how far apart the word's hidden vectors are in different places.
"""

from __future__ import annotations

import argparse

from lmcore.cli import CLIError, whole


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("embed", help="word2vec neighbours/analogies, token tables, "
                                            "contextual vectors", description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="builtin", metavar="FILE|builtin")
    p.add_argument("--unit", choices=("auto", "word", "char"), default="auto",
                   help="word units, or characters (auto: characters for Chinese)")
    p.add_argument("--words", default=None, help="comma-separated query words "
                   "(default: a few frequent ones)")
    p.add_argument("--k", type=whole(1), default=8, help="neighbours per word")
    p.add_argument("--analogy", metavar="A,B,C", help="also solve A - B + C")
    p.add_argument("--dim", type=whole(1), default=64)
    p.add_argument("--window", type=whole(1), default=4)
    p.add_argument("--epochs", type=whole(1), default=3)
    p.add_argument("--chars", type=whole(1), default=200_000, help="training characters")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("--model", metavar="DIR", help="a lmcore Transformer checkpoint folder")
    p.add_argument("--contextual", metavar="WORD",
                   help="with --model: cosines of WORD's hidden vectors across the text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmcore.cli.objectives import markdown
    from lmcore.cli.train import read_corpus
    from lmcore.embed.vectors import compare_neighbours, pick_unit
    from lmcore.embed.word2vec import Word2VecConfig, train_word2vec

    if args.k < 1 or args.chars < 1:
        raise CLIError("--k and --chars must be at least 1")
    if args.contextual and not args.model:
        raise CLIError("--contextual needs --model DIR (a trained lmcore Transformer)")
    corpus = read_corpus(args.corpus)
    split = corpus.split()
    train = (split.train or corpus.text)[: args.chars]
    unit = pick_unit(train) if args.unit == "auto" else args.unit
    loaded = None
    if args.model:
        from lmcore.models.checkpoint import load_model

        loaded = load_model(args.model)
        if loaded.tokenizer is None:
            raise CLIError(f"{args.model} has no tokenizer.json: its tokens have no names")
    w2v = train_word2vec(train, Word2VecConfig(unit=unit, dim=args.dim, window=args.window,
                                               epochs=args.epochs, seed=args.seed,
                                               min_count=2 if unit == "char" else 3))
    words = ([w.strip() for w in args.words.split(",") if w.strip()] if args.words
             else [w2v.words[i] for i in w2v.top(60) if len(w2v.words[i]) >= 4][:3]
             or w2v.words[:3])
    print(f"{w2v.source}: {len(w2v.words):,} units x {w2v.dim} dimensions, "
          f"{len(train):,} training characters\n")
    table = None
    if loaded is not None:
        from lmcore.embed.token_table import token_vectors

        table = token_vectors(loaded.model, loaded.tokenizer, train)
    rows = []
    for w in words:
        near = w2v.neighbours(w, args.k)
        row = {"word": w, "word2vec neighbours": ", ".join(f"{n} ({c:.2f})" for n, c in near)}
        if table is not None:
            if w in table.index:
                cmp = compare_neighbours(w2v, table, w, args.k)
                row["token-table neighbours"] = ", ".join(f"{n} ({c:.2f})" for n, c in cmp["b"])
                row[f"shared of {args.k}"] = len(cmp["shared"])
            else:
                row["token-table neighbours"] = "(not a token)"
                row[f"shared of {args.k}"] = None
        rows.append(row)
    print(markdown(rows))
    if args.analogy:
        parts = [s.strip() for s in args.analogy.split(",")]
        if len(parts) != 3:
            raise CLIError(f"--analogy takes three words A,B,C, got {args.analogy!r}")
        print(f"\n{parts[0]} - {parts[1]} + {parts[2]} ≈\n")
        print(markdown([{"unit": n, "cosine": c} for n, c in w2v.analogy(*parts, args.k)]))
    if args.contextual:
        from lmcore.embed.contextual import contextual_vectors

        res = contextual_vectors(loaded.model, loaded.tokenizer, split.test or corpus.text,
                                 args.contextual)
        print(f"\n{args.contextual!r} in {len(res.snippets)} places: mean cosine of hidden "
              f"vectors {res.mean_cosine:.4f}, of token-table rows {res.static_cosine:.4f}\n")
        print(markdown([{"place": i + 1, "text": " ".join(s.split())[-60:],
                         **{f"cos #{j + 1}": float(res.cosine[i, j])
                            for j in range(len(res.snippets))}}
                        for i, s in enumerate(res.snippets)]))
    return 0
