"""`lmcore train`: train a tiny Transformer on a text with a progress bar; record the run."""

from __future__ import annotations

import argparse
import dataclasses
import math
import threading
from pathlib import Path

from lmcore.cli import CLIError
from lmcore.data.builtin import builtin_corpora, pydoc_corpus
from lmcore.data.corpus import Corpus, load_text
from lmcore.data.tokenizers import train_tokenizer
from lmcore.train.trainer import OPTIMIZERS, Done, Eval, Step, TrainConfig

TOKENIZERS = ("char", "byte", "bpe")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a Transformer LM on a text; prints final train/validation loss",
        description="Train a GPT-style Transformer on the first 85%% of a text, evaluate on "
                    "the next 5%%, save the model (safetensors + JSON) to --out and record the "
                    "run in $LMCORE_HOME/runs.sqlite.")
    p.add_argument("--corpus", default="builtin", metavar="FILE|builtin",
                   help="a text file, 'builtin' (Python's reference docs) or 'markov' "
                        "(a synthetic source with known entropy)")
    p.add_argument("--tokenizer", choices=TOKENIZERS, default="char")
    p.add_argument("--vocab-size", type=int, default=None, help="for bpe (default 1000)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--activation", default="gelu",
                   help="relu, gelu, swiglu, tanh or sigmoid (default gelu)")
    p.add_argument("--attention", choices=("sdpa", "naive", "tiled"), default="sdpa")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=10, help="warmup steps (then cosine decay)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="0 disables clipping")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where to save the model (default $LMCORE_HOME/models/RUN_ID)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the training state saved in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def read_corpus(spec: str) -> Corpus:
    """A file path, 'builtin' or the name of any built-in corpus."""
    if spec in ("builtin", "pydoc"):
        return pydoc_corpus()
    builtins = builtin_corpora()
    if spec == "markov":
        return next(f() for name, f in builtins.items() if name.startswith("Markov"))
    if spec in builtins:
        return builtins[spec]()
    path = Path(spec)
    if not path.is_file():
        raise CLIError(f"{spec}: no such file (or use --corpus builtin)")
    return load_text(path.read_bytes(), path.name)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lmcore.models.checkpoint import save_model
    from lmcore.models.transformer import Transformer, TransformerConfig
    from lmcore.runs.store import RunStore
    from lmcore.settings import get_settings
    from lmcore.train.data import TokenData
    from lmcore.train.objectives import CausalLM
    from lmcore.train.record import Recorder
    from lmcore.train.trainer import train

    corpus = read_corpus(args.corpus)
    split = corpus.split()
    vocab = args.vocab_size or (1000 if args.tokenizer == "bpe" else None)
    tok = train_tokenizer(args.tokenizer, split.train, vocab_size=vocab)
    data = TokenData.from_text(tok, split.train, split.valid, corpus.fingerprint)
    mcfg = TransformerConfig(vocab_size=tok.vocab_size, context=args.context,
                             n_layer=args.layers, n_head=args.heads, n_embd=args.width,
                             activation=args.activation, attention=args.attention,
                             dropout=args.dropout)
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, optimizer=args.optimizer,
                       lr=args.lr, warmup_steps=args.warmup, grad_clip=args.grad_clip or None,
                       eval_every=args.eval_every, seed=args.seed)
    model = Transformer(mcfg)
    get_settings().check("max_params", model.num_parameters())

    store = RunStore()
    config = {"model": dataclasses.asdict(mcfg), "train": dataclasses.asdict(tcfg),
              "tokenizer": args.tokenizer, "corpus": corpus.name}
    run_id = store.create(f"transformer {args.layers}x{args.width}", config,
                          corpus_name=corpus.name, corpus_fingerprint=corpus.fingerprint,
                          tokenizer=f"{tok.kind} ({tok.vocab_size})")
    out = Path(args.out) if args.out else Path(get_settings().home).expanduser() / "models" \
        / run_id
    tcfg.checkpoint_dir = str(out)
    resume = out if args.resume else None
    if resume is not None and not (out / "train_state.safetensors").exists():
        raise CLIError(f"--resume: no training state in {out}")

    bar = tqdm(total=args.steps, disable=args.quiet, unit="step", dynamic_ncols=True)

    def show(e) -> None:
        if isinstance(e, Step):
            bar.n = e.step
            bar.set_postfix(loss=f"{e.loss:.3f}", tok_s=f"{e.tokens_per_s:,.0f}", refresh=False)
            bar.refresh()
        elif isinstance(e, Eval):
            bar.write(f"step {e.step}: train {e.train_loss:.4f} · valid {e.valid_loss:.4f} · "
                      f"{e.bits_per_char:.3f} bits/char")
        elif isinstance(e, Done):
            bar.close()

    stop = threading.Event()
    try:
        result = train(model, CausalLM(), data, tcfg, callback=Recorder(store, run_id, then=show),
                       stop=stop, resume_from=resume)
    except KeyboardInterrupt:
        stop.set()
        store.finish(run_id, "stopped", {})
        raise
    except Exception as exc:  # refused before the first step (limits, a checkpoint mismatch)
        store.finish(run_id, "failed", {}, error=str(exc))
        raise
    finally:
        bar.close()
    if result.status == "failed":
        raise CLIError(f"training failed: {result.error} (run {run_id})")
    save_model(out, model, tok, extra={"run_id": run_id, "corpus": corpus.name,
                                       "steps": result.steps})
    store.update(run_id, checkpoint=str(out))
    print(f"run {run_id}: {result.steps} steps in {result.elapsed_s:.1f} s "
          f"({result.tokens_per_s:,.0f} tokens/s); model saved to {out}")
    print(f"final train loss {result.train_loss:.4f} · validation loss {result.valid_loss:.4f} "
          f"(nats/token) · {result.bits_per_char:.4f} bits/char · perplexity "
          f"{result.perplexity:.2f}" + ("" if math.isfinite(result.valid_loss) else " (!)"))
    return 0
