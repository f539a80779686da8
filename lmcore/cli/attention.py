"""`lmcore attention shapes|io`: one attention layer shape by shape; HBM bytes naive vs tiled.

`shapes` runs the first attention layer of a checkpoint (or a fresh seeded model over a char
tokenizer of the sentences) on a batch of sentences and prints every tensor's shape with the
checks: the hand computation against the layer, and the padded batch against each sentence
alone. `io` counts the HBM traffic of naive and tiled attention for the given T and tiles.
"""

from __future__ import annotations

import argparse

from lmcore.cli import CLIError, whole


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("attention", help="attention shape by shape; HBM bytes moved",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="attention_command", metavar="ACTION", required=True)
    s = sub.add_parser("shapes", help="every tensor of one attention layer on your sentences")
    s.add_argument("sentences", nargs="+", metavar="SENTENCE")
    s.add_argument("--model", metavar="DIR", help="a lmcore checkpoint folder (default: a "
                   "fresh seeded model, width 64, 4 heads)")
    s.add_argument("--causal", action="store_true", help="causal mask (default bidirectional)")
    s.add_argument("--no-scale", action="store_true", help="leave out the 1/sqrt(d)")
    s.add_argument("--no-padding-mask", action="store_true", help="let tokens attend to [PAD]")
    s.set_defaults(func=run_shapes)
    i = sub.add_parser("io", help="HBM bytes of naive vs tiled attention")
    i.add_argument("--T", default="1024,4096,16384", help="comma-separated lengths")
    i.add_argument("--d", type=whole(1), default=64, help="head width")
    i.add_argument("--block", default="128x128", help="tile rows x columns (default 128x128)")
    i.add_argument("--bytes", type=int, default=2, choices=(2, 4), help="per element")
    i.add_argument("--full", action="store_true", help="no causal mask (all tiles visible)")
    i.set_defaults(func=run_io)


def run_shapes(args: argparse.Namespace) -> int:
    import torch

    from lmcore.cli.objectives import markdown
    from lmcore.data.tokenizers import train_tokenizer
    from lmcore.models.attention_shapes import walk_through

    if args.model:
        from lmcore.models.checkpoint import load_model

        net, tok, _ = load_model(args.model)
        if tok is None:
            raise CLIError(f"{args.model} has no tokenizer.json")
    else:
        from lmcore.models.transformer import Transformer, TransformerConfig

        tok = train_tokenizer("char", "\n".join(args.sentences))
        torch.manual_seed(0)
        net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=128, n_layer=1,
                                            n_head=4, n_embd=64))
    w = walk_through(net, tok, args.sentences, scaled=not args.no_scale,
                     padding_mask=not args.no_padding_mask, causal=args.causal)
    print(markdown([{"step": s.name, "computes": s.formula,
                     "shape": "(" + ", ".join(map(str, s.shape)) + ")"} for s in w.steps]))
    print(f"\nlengths {w.lengths}, padded to T = {w.mask.shape[-1]}; removed on real rows: "
          f"{w.causal_removed} by the causal mask, {w.padding_removed} by the padding mask")
    print(f"max |padded batch - each sentence alone| at real positions: {w.alone_error:.3e}")
    if w.scaled:
        print(f"max |hand computation - the layer's forward|: {w.module_error:.3e}")
    return 0


def run_io(args: argparse.Namespace) -> int:
    from lmcore.cli.objectives import markdown
    from lmcore.models.attention_io import attention_io

    try:
        Ts = [int(t) for t in args.T.split(",") if t.strip()]
        bq, bk = (int(x) for x in args.block.lower().split("x"))
    except ValueError:
        raise CLIError(f"--T takes comma-separated integers and --block ROWSxCOLS, got "
                       f"{args.T!r} and {args.block!r}") from None
    rows = []
    for T in Ts:
        io = attention_io(T, args.d, bq, bk, not args.full, args.bytes)
        rows.append({"T": T, "naive MiB": io.naive_bytes / 2**20,
                     "tiled MiB": io.tiled_bytes / 2**20, "naive / tiled": io.ratio,
                     "visible tiles": f"{io.visible_tiles}/{io.total_tiles}",
                     "SRAM per tile step KiB": io.sram_bytes / 1024})
    print(f"per (batch, head), d = {args.d}, tiles {bq}x{bk}, {args.bytes} bytes/element, "
          f"{'full' if args.full else 'causal'}\n")
    print(markdown(rows))
    return 0
