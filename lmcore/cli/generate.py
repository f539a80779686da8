"""`lmcore generate --model DIR --prompt TEXT -n N`: sample text from a trained Transformer."""

from __future__ import annotations

import argparse

from lmcore.cli import CLIError, real, whole


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate", help="continue a prompt with a model saved by `lmcore train`",
        description="Sample N tokens after PROMPT with temperature, top-k and top-p (KV cache).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="DIR", help="a folder from `lmcore train`")
    src.add_argument("--run", metavar="RUN_ID", help="the model saved by a recorded run")
    p.add_argument("--prompt", default="", help="text to continue (default: from the start)")
    p.add_argument("-n", "--tokens", type=whole(1), default=200, help="tokens to sample")
    p.add_argument("--temperature", type=real(least=0), default=1.0, help="0 is greedy")
    p.add_argument("--top-k", type=whole(1), default=None)
    p.add_argument("--top-p", type=real(above=0, most=1), default=None)
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model runs (cuda needs a GPU)")
    p.add_argument("--probs", action="store_true",
                   help="also print each new token with the model's probability of it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmcore.models.checkpoint import load_model
    from lmcore.models.generate import generate_text

    if args.tokens < 1:
        raise CLIError(f"-n must be at least 1, got {args.tokens}")
    if args.temperature < 0:
        raise CLIError(f"--temperature must be >= 0, got {args.temperature}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise CLIError(f"--top-p must lie in (0, 1], got {args.top_p}")
    folder = args.model
    if args.run is not None:
        from lmcore.runs.store import RunStore

        try:
            run = RunStore().get(args.run)
        except KeyError as exc:
            raise CLIError(exc.args[0]) from None
        if not run.checkpoint:
            raise CLIError(f"run {run.id} saved no model ({run.display_status})")
        folder = run.checkpoint
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CLIError("--device cuda: this machine has no usable GPU (torch sees none)")
    loaded = load_model(folder, device=args.device)
    if loaded.tokenizer is None:
        raise CLIError(f"{folder} holds no tokenizer.json: cannot turn text into tokens")
    text, pieces = generate_text(loaded.model, loaded.tokenizer, args.prompt, args.tokens,
                                 temperature=args.temperature, top_k=args.top_k,
                                 top_p=args.top_p, seed=args.seed)
    print(args.prompt + text)
    if args.probs:
        print()
        for tok, p in pieces:
            print(f"{tok!r}\t{p:.4f}")
    return 0
