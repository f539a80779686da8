"""`lmcore train`: train a tiny Transformer on a text with a progress bar; record the run.

Ctrl-C once stops at the next step (the model is evaluated, checkpointed, saved and the run
recorded 'stopped' with its numbers); Ctrl-C again aborts at once. `--checkpoint-every N`
writes the training state every N steps, and `--resume` continues from the last one after a
kill with the same following losses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from lmcore.cli import CLIError, output_path, read_corpus_file, real, whole
from lmcore.data.builtin import builtin_corpora, pydoc_corpus
from lmcore.data.corpus import Corpus
from lmcore.data.tokenizers import train_tokenizer
from lmcore.train.trainer import OPTIMIZERS, Done, Eval, Step, TrainConfig

TOKENIZERS = ("char", "byte", "bpe")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a Transformer LM on a text; prints final train/validation loss",
        description="Train a GPT-style Transformer on the first 85% of a text, evaluate on "
                    "the next 5%, save the model (safetensors + JSON) to --out and record the "
                    "run in $LMCORE_HOME/runs.sqlite.")
    p.add_argument("--corpus", default="builtin", metavar="FILE|builtin",
                   help="a text file, 'builtin' (Python's reference docs) or 'markov' "
                        "(a synthetic source with known entropy)")
    p.add_argument("--tokenizer", choices=TOKENIZERS, default="char")
    p.add_argument("--vocab-size", type=whole(1), default=None, help="for bpe (default 1000)")
    p.add_argument("--layers", type=whole(1), default=4)
    p.add_argument("--heads", type=whole(1), default=4)
    p.add_argument("--width", type=whole(1), default=128)
    p.add_argument("--context", type=whole(1), default=128)
    p.add_argument("--activation", default="gelu",
                   help="relu, gelu, swiglu, tanh or sigmoid (default gelu)")
    p.add_argument("--attention", choices=("sdpa", "naive", "tiled"), default="sdpa")
    p.add_argument("--dropout", type=real(least=0, below=1), default=0.0)
    p.add_argument("--steps", type=whole(1), default=200)
    p.add_argument("--batch-size", type=whole(1), default=16)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    p.add_argument("--lr", type=real(above=0), default=3e-3)
    p.add_argument("--warmup", type=whole(0), default=10, help="warmup steps (then cosine decay)")
    p.add_argument("--grad-clip", type=real(least=0), default=1.0, help="0 disables clipping")
    p.add_argument("--eval-every", type=whole(0), default=50)
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where to save the model (default $LMCORE_HOME/models/RUN_ID)")
    p.add_argument("--checkpoint-every", type=whole(0), default=0, metavar="N",
                   help="save the training state every N steps (default 0: only at the end)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the last training state: the one in --out, or without "
                        "--out the newest recorded run's (same model and optimizer)")
    p.add_argument("--log-json", metavar="FILE", default=None,
                   help="append one JSON line per step, evaluation and end (machine-readable)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to train (cuda needs a GPU; under torchrun each rank takes "
                        "GPU LOCAL_RANK)")
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
    if spec != "-" and not os.path.lexists(spec):
        raise CLIError(f"{spec}: no such file (or use --corpus builtin)")
    return read_corpus_file(spec)


class StopOnInterrupt:
    """SIGINT handler: the first Ctrl-C sets `stop` (a clean stop), the second aborts."""

    def __init__(self, stop: threading.Event, say: Callable[[str], None]):
        self.stop = stop
        self.say = say
        self._previous: Any = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        self.say("stopping after this step: evaluating and saving the model "
                 "(Ctrl-C again to abort)")

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class JsonLog:
    """Trainer callback writing one JSON object per line (step, eval, done, error) to `f`."""

    def __init__(self, f: IO[str]):
        self.f = f

    def __call__(self, e: Any) -> None:
        from lmcore.train.trainer import Error

        if isinstance(e, Step):
            d = {"event": "step", "step": e.step, "loss": e.loss, "lr": e.lr,
                 "grad_norm": e.grad_norm, "tokens_per_s": e.tokens_per_s}
        elif isinstance(e, Eval):
            d = {"event": "eval", **dataclasses.asdict(e)}
        elif isinstance(e, Done):
            d = {"event": "done", **dataclasses.asdict(e)}
        elif isinstance(e, Error):
            d = {"event": "error", **dataclasses.asdict(e)}
        else:
            return
        d = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
             for k, v in d.items()}
        self.f.write(json.dumps(d) + "\n")
        self.f.flush()


def _resume_dir(args: argparse.Namespace) -> Path:
    """Where `--resume` continues from: --out, else the newest run's folder with a state."""
    from lmcore.runs.store import RunStore, models_root
    from lmcore.train.trainer import STATE_FILE

    if args.out:
        if not (Path(args.out) / STATE_FILE).exists():
            raise CLIError(f"--resume: no training state in {args.out} (nothing was "
                           "checkpointed there; train with --checkpoint-every N)")
        return Path(args.out)
    for run in RunStore().list():
        for folder in (run.config.get("out"), run.checkpoint, models_root() / run.id):
            if folder and (Path(folder) / STATE_FILE).exists():
                return Path(folder)
    raise CLIError("--resume: no recorded run left a training state; give --out DIR of the "
                   "interrupted run")


def _chain(*fns: Callable[[Any], None] | None) -> Callable[[Any], None]:
    def call(e: Any) -> None:
        for fn in fns:
            if fn is not None:
                fn(e)
    return call


class Terminated(RuntimeError):
    """SIGTERM during training: torchrun ends every rank once one of them has failed."""


def _terminate_as_failure() -> None:
    """Turn SIGTERM into an exception in training, so the run is recorded failed with why."""
    def handler(signum: int, frame: object) -> None:
        raise Terminated("stopped by SIGTERM: torchrun ended the run (another rank failed or "
                         "the launcher was stopped)")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _follower(world: Any, model: Any, data: Any, tcfg: TrainConfig, resume: Path | None) -> int:
    """A rank other than 0: train its share of every batch; rank 0 does the rest."""
    from lmcore.train import distributed
    from lmcore.train.objectives import CausalLM
    from lmcore.train.trainer import train

    stop = threading.Event()
    try:
        with StopOnInterrupt(stop, lambda m: None):
            result = train(model, CausalLM(), data, tcfg, stop=stop, resume_from=resume,
                           world=world)
    finally:
        distributed.shutdown()
    if result.status == "failed":
        raise CLIError(f"rank {world.rank}: training failed: {result.error}")
    return 130 if result.status == "stopped" else 0


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lmcore.models.transformer import Transformer, TransformerConfig
    from lmcore.runs.store import RunStore, models_root
    from lmcore.settings import get_settings
    from lmcore.train import distributed
    from lmcore.train.data import TokenData
    from lmcore.train.estimate import count_parameters
    from lmcore.train.objectives import CausalLM
    from lmcore.train.record import Recorder, train_recorded
    from lmcore.train.trainer import Error, saved_step, seeded

    # Everything is checked before anything is written or recorded: a refused command
    # leaves no run, no model folder and no log file behind.
    world = distributed.world_from_env()  # set by torchrun; None for a plain process
    ddp = world is not None and world.size > 1
    if ddp and args.batch_size % world.size:
        raise CLIError(f"--batch-size {args.batch_size} does not split evenly over "
                       f"{world.size} ranks: use a multiple of {world.size}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CLIError("--device cuda: this machine has no usable GPU (torch sees none)")
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, optimizer=args.optimizer,
                       lr=args.lr, warmup_steps=args.warmup, grad_clip=args.grad_clip or None,
                       eval_every=args.eval_every, seed=args.seed,
                       checkpoint_every=args.checkpoint_every,
                       device=distributed.device_for(world, args.device) if ddp
                       else args.device)
    settings = get_settings()
    settings.check("max_steps", tcfg.steps)
    output_path(args.out, "--out", folder=True)
    output_path(args.log_json, "--log-json")
    corpus = read_corpus(args.corpus)
    split = corpus.split()
    vocab = args.vocab_size or (1000 if args.tokenizer == "bpe" else None)
    tok = train_tokenizer(args.tokenizer, split.train, vocab_size=vocab)
    data = TokenData.from_text(tok, split.train, split.valid, corpus.fingerprint)
    mcfg = TransformerConfig(vocab_size=tok.vocab_size, context=args.context,
                             n_layer=args.layers, n_head=args.heads, n_embd=args.width,
                             activation=args.activation, attention=args.attention,
                             dropout=args.dropout)
    settings.check("max_params", count_parameters(mcfg))  # before allocating the model
    data.check(args.context + 1)  # causal windows: context inputs and one more target
    model = seeded(lambda: Transformer(mcfg), args.seed)

    resume, start = None, 0
    if args.resume:  # refused here, before a run is recorded, when there is nothing to resume
        resume = _resume_dir(args)
        try:
            start = saved_step(resume, model, tcfg)
        except (FileNotFoundError, ValueError) as exc:
            raise CLIError(f"--resume from {resume}: {exc}") from None

    if ddp:
        distributed.init(world, args.device)
        _terminate_as_failure()
        if not world.is_main:  # rank 0 alone logs, evaluates, checkpoints and records
            return _follower(world, model, data, tcfg, resume)

    log_file = None
    if args.log_json:  # opened before the run is recorded: a bad path records nothing
        try:
            log_file = open(args.log_json, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CLIError(f"--log-json: cannot write {args.log_json} ({exc.strerror})") from None
    store = RunStore()
    config = {"model": dataclasses.asdict(mcfg), "train": dataclasses.asdict(tcfg),
              "tokenizer": args.tokenizer, "corpus": corpus.name,
              "out": str(resume or args.out) if (resume or args.out) else None,
              "resumed_from_step": start or None, "world_size": world.size if ddp else 1}
    run_id = store.create(f"transformer {args.layers}x{args.width}", config,
                          corpus_name=corpus.name, corpus_fingerprint=corpus.fingerprint,
                          tokenizer=f"{tok.kind} ({tok.vocab_size})")
    out = resume or (Path(args.out) if args.out else models_root() / run_id)
    tcfg.checkpoint_dir = str(out)

    bar = tqdm(total=args.steps, initial=start, disable=args.quiet, unit="step",
               dynamic_ncols=True)
    if start:
        print(f"resuming from step {start} of the training state in {out}", file=sys.stderr)
    finished = [False]  # the Recorder has written the run's end (Done or Error)

    def show(e) -> None:
        if isinstance(e, Step):
            bar.n = e.step
            bar.set_postfix(loss=f"{e.loss:.3f}", tok_s=f"{e.tokens_per_s:,.0f}", refresh=False)
            bar.refresh()
        elif isinstance(e, Eval):
            bar.write(f"step {e.step}: train {e.train_loss:.4f} · valid {e.valid_loss:.4f} · "
                      f"{e.bits_per_char:.3f} bits/char")
        elif isinstance(e, Done | Error):
            finished[0] = True
            bar.close()

    stop = threading.Event()
    last = [start]

    def track(e) -> None:
        if isinstance(e, Step):
            last[0] = e.step

    recorder = Recorder(store, run_id, then=_chain(track, JsonLog(log_file) if log_file
                                                   else None, show))
    try:
        with StopOnInterrupt(stop, lambda m: print(m, file=sys.stderr, flush=True)):
            result = train_recorded(model, CausalLM(), data, tcfg, recorder, tokenizer=tok,
                                    corpus=corpus, out=out, stop=stop, resume_from=resume,
                                    world=world if ddp else None)
            if result.status == "failed":
                raise CLIError(f"training failed: {result.error} (run {run_id})")
    except KeyboardInterrupt:  # the second Ctrl-C: no final evaluation, nothing saved
        if not finished[0]:
            recorder.flush()
            store.finish(run_id, "stopped", {"steps": last[0]},
                         error="aborted by a second Ctrl-C: no final evaluation; the last "
                               "training state (if any) is in " + str(out))
        raise
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()
        if ddp:
            distributed.shutdown()
    stopped = result.status == "stopped"
    ranks = f" on {world.size} ranks" if ddp else ""
    print(f"run {run_id}: {result.steps} steps{ranks} in {result.elapsed_s:.1f} s "
          f"({result.tokens_per_s:,.0f} tokens/s); model saved to {out}"
          + (f" (stopped by Ctrl-C at step {result.steps} of {tcfg.steps}: continue with "
             "--resume)" if stopped else ""))
    print(f"final train loss {result.train_loss:.4f} · validation loss {result.valid_loss:.4f} "
          f"(nats/token) · {result.bits_per_char:.4f} bits/char · perplexity "
          f"{result.perplexity:.2f}" + ("" if math.isfinite(result.valid_loss) else " (!)"))
    return 130 if stopped else 0
