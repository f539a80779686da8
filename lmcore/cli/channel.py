"""`lmcore channel capacity|codes|decode`: Shannon's noisy-channel theorem, measured.

`capacity` sends random bits through a BSC or BEC and prints the measured mutual information
beside C = 1 - H(p) (or 1 - e). `codes` sends a text's UTF-8 bits through the channel with
repetition, Hamming (7, 4) and random linear codes and prints the residual bit error rate of
each against its rate. `decode` corrupts held-out text with a known character error model and
recovers it with character n-gram priors of order 1..5 (argmax P(text) P(observed | text)).
"""

from __future__ import annotations

import argparse

from lmcore.cli import CLIError, real, whole


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("channel", help="noisy channels: capacity, codes, LM decoding",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="channel_command", metavar="ACTION", required=True)

    c = sub.add_parser("capacity", help="measured mutual information vs 1 - H(p) / 1 - e")
    c.add_argument("--channel", choices=("bsc", "bec"), default="bsc")
    c.add_argument("--p", default="0.01,0.05,0.11,0.2,0.3,0.5",
                   help="comma-separated error rates in [0, 0.5]")
    c.add_argument("--bits", type=whole(1), default=100_000, help="bits sent per error rate")
    c.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    c.set_defaults(func=run_capacity)

    k = sub.add_parser("codes", help="residual BER of codes on a text's bits, against rate")
    k.add_argument("--corpus", default="builtin", metavar="FILE|builtin")
    k.add_argument("--channel", choices=("bsc", "bec"), default="bsc")
    k.add_argument("--p", type=real(least=0, most=1), default=0.05, help="error rate (default 0.05)")
    k.add_argument("--chars", type=whole(1), default=2000, help="characters of the text to send")
    k.add_argument("--codes", default=None,
                   help="comma-separated: uncoded, repN, hamming74, randNxK (default: the "
                        "sweep of repetition, Hamming and random linear codes at n=8,16,24)")
    k.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    k.set_defaults(func=run_codes)

    d = sub.add_parser("decode", help="CER before/after noisy-channel decoding, n = 1..5")
    d.add_argument("--corpus", default="builtin", metavar="FILE|builtin")
    d.add_argument("--error-rate", type=real(above=0, below=1), default=0.05,
                   help="probability that a character is substituted (default 0.05)")
    d.add_argument("--orders", default="1,2,3,4,5", help="n-gram orders of the prior")
    d.add_argument("--chars", type=whole(1), default=1000, help="held-out characters to corrupt")
    d.add_argument("--beam", type=whole(1), default=8, help="Viterbi states kept per position")
    d.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    d.set_defaults(func=run_decode)


def _floats(spec: str, what: str) -> list[float]:
    try:
        return [float(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise CLIError(f"{what} must be comma-separated numbers, got {spec!r}") from None


def _positive(value: int, what: str) -> int:
    if value < 1:
        raise CLIError(f"{what} must be at least 1, got {value}")
    return value


def run_capacity(args: argparse.Namespace) -> int:
    from lmcore.cli.objectives import markdown
    from lmcore.info.channel import Channel, estimate_capacity

    _positive(args.bits, "--bits")
    rows = []
    for p in _floats(args.p, "--p"):
        est = estimate_capacity(Channel(args.channel, p), args.bits, args.seed)
        rows.append({"channel": est.channel.label, "capacity (formula)": est.capacity,
                     "I(X;Y) measured": est.mutual_information, "± 2 s.e.": 2 * est.stderr,
                     "observed error rate": est.observed_rate, "bits": est.bits})
    print(markdown(rows))
    return 0


def run_codes(args: argparse.Namespace) -> int:
    from lmcore.cli.objectives import markdown
    from lmcore.cli.train import read_corpus
    from lmcore.info.channel import Channel, text_to_bits
    from lmcore.info.codes import code_from_name, default_family, rate_sweep

    channel = Channel(args.channel, args.p)
    text = read_corpus(args.corpus).text[: _positive(args.chars, "--chars")]
    codes = (default_family() if args.codes is None
             else [code_from_name(s, args.seed) for s in args.codes.split(",") if s.strip()])
    if not codes:
        raise CLIError("--codes names no code")
    runs = rate_sweep(text_to_bits(text), channel, codes, seed=args.seed)
    print(f"{channel.label}: capacity {channel.capacity:.4f} bits per use; "
          f"{len(text):,} characters = {runs[0].message_bits:,} message bits\n")
    print(markdown([r.as_row() for r in runs]))
    return 0


def run_decode(args: argparse.Namespace) -> int:
    from lmcore.cli.objectives import markdown
    from lmcore.cli.train import read_corpus
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.info.noisy_channel import noisy_channel_table
    from lmcore.models.ngram import NGramLM
    from lmcore.models.ngram_vocab import tokenizer_vocab

    orders = sorted({int(x) for x in _floats(args.orders, "--orders")})
    if not orders or not all(1 <= n <= 6 for n in orders):
        raise CLIError(f"--orders must be n-gram orders from 1 to 6, got {args.orders!r}")
    corpus = read_corpus(args.corpus)
    split = corpus.split()
    train, held = split.train or corpus.text, (split.test or corpus.text)
    held = held[: _positive(args.chars, "--chars")]
    tok = train_tokenizer("char", train)
    grid = NGramLM.fit_grid([tok.encode(train)], tokenizer_vocab(tok), orders=orders,
                            smoothings=["kn"], tokenizer=tok)
    res = noisy_channel_table({n: grid[("kn", n)] for n in orders}, held, args.error_rate,
                              seed=args.seed, beam=_positive(args.beam, "--beam"))
    print(f"{len(held):,} held-out characters, substitution rate {args.error_rate:g}, "
          f"KN char n-gram priors fitted on {len(train):,} training characters\n")
    print(markdown([r.as_row() for r in res.rows]))
    return 0
