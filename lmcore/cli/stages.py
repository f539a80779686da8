"""`lmcore sft` and `lmcore dpo`: instruction tuning and preference tuning of a tiny model.

`lmcore sft` starts from a pretrained model (a checkpoint folder or run id from `lmcore train`;
without --from it pretrains a tiny one on --corpus first) and prints held-out exact match per
task before and after. `lmcore dpo` starts from an SFT model and prints the held-out
preference numbers and the accuracy of both stages. Each stage is saved and recorded.
"""

from __future__ import annotations

import argparse
import sys
import time

from lmcore.cli import CLIError, whole
from lmcore.stages.pipeline import DPO_DEFAULTS, SFT_DEFAULTS


def _common(p: argparse.ArgumentParser, steps: int, lr: float) -> None:
    p.add_argument("--corpus", default="builtin", metavar="FILE|builtin",
                   help="the text the instructions' words come from (and the pretraining "
                        "text without --from)")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("--eval-every", type=int, default=0,
                   help="held-out evaluation every N steps (default 0: at the end only)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sft", help="instruction-tune a model (loss on responses only); prints accuracy",
        description="Supervised fine-tuning on generated instructions (reverse, upper, count "
                    "the vowels, next word) in a chat template; prints held-out exact match "
                    "per task before and after.")
    p.add_argument("--from", dest="source", default=None, metavar="DIR|RUN_ID",
                   help="the pretrained model (default: pretrain a tiny one on --corpus)")
    p.add_argument("--pretrain-steps", type=int, default=300,
                   help="steps of the tiny model pretrained when --from is not given")
    _common(p, steps=SFT_DEFAULTS.steps, lr=SFT_DEFAULTS.lr)
    p.set_defaults(func=run_sft_cli)
    p = subparsers.add_parser(
        "dpo", help="preference-tune an SFT model with DPO; prints win rate and accuracy",
        description="Direct Preference Optimization against a frozen copy of the SFT model, "
                    "on pairs of its own sampled answers ranked by a rule (correct over "
                    "incorrect; of two wrong answers, the closer one).")
    p.add_argument("--from", dest="source", required=True, metavar="DIR|RUN_ID",
                   help="the instruction-tuned model (from `lmcore sft`)")
    p.add_argument("--beta", type=float, default=DPO_DEFAULTS.beta)
    p.add_argument("--nll-weight", type=float, default=DPO_DEFAULTS.nll_weight,
                   help="weight of the chosen answers' NLL added to the DPO loss (0: pure DPO)")
    _common(p, steps=DPO_DEFAULTS.steps, lr=DPO_DEFAULTS.lr)
    p.set_defaults(func=run_dpo_cli)


def _config(args: argparse.Namespace, **extra):
    from lmcore.stages.sft import StageConfig

    if args.eval_every < 0:
        raise CLIError(f"--eval-every must be >= 0, got {args.eval_every}")
    try:
        return StageConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed, eval_every=args.eval_every, **extra)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _progress(args: argparse.Namespace, stage: str):
    def show(d: dict) -> None:
        if args.quiet:
            return
        if d["step"] % 50 == 0 or d["step"] == d["steps"]:
            print(f"{stage} step {d['step']}/{d['steps']} · loss {d['loss']:.4f}",
                  file=sys.stderr, flush=True)
    return show


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def accuracy_markdown(rows: list[dict]) -> str:
    """A Markdown table: one row per stage, held-out exact match per task."""
    cols = [k for k in rows[0] if k != "stage"]
    out = ["| stage | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    out += ["| " + r["stage"] + " | " + " | ".join(_pct(r.get(c)) for c in cols) + " |"
            for r in rows]
    return "\n".join(out)


def run_sft_cli(args: argparse.Namespace) -> int:
    from lmcore.cli.train import read_corpus
    from lmcore.stages.pipeline import (
        PretrainConfig,
        instructions_for,
        load_stage,
        pretrain,
        run_sft,
    )

    config = _config(args)
    corpus = read_corpus(args.corpus)
    data = instructions_for(corpus, seed=args.seed)
    t0 = time.perf_counter()
    if args.source:
        start = load_stage(args.source)
    else:
        if args.pretrain_steps < 1:
            raise CLIError(f"--pretrain-steps must be at least 1, got {args.pretrain_steps}")
        start = pretrain(corpus, PretrainConfig(steps=args.pretrain_steps, seed=args.seed),
                         callback=_progress(args, "pretrain"))
    t1 = time.perf_counter()
    sft, acc = run_sft(start, data, config, corpus=corpus, callback=_progress(args, "sft"))
    t2 = time.perf_counter()
    rows = [{"stage": f"before SFT ({start.stage})", **acc["before"]},
            {"stage": "after SFT", **acc["after"]}]
    print(f"## Instruction tuning (SFT) on {corpus.name}\n")
    print(f"Instructions: {len(data.train):,} for tuning, {len(data.test)} held out "
          f"(words from {data.source}); greedy answers, exact match.\n")
    print(accuracy_markdown(rows))
    print(f"\nstart: {start.stage} model {start.checkpoint}"
          + (f" (pretrained in {t1 - t0:.1f} s)" if not args.source else ""))
    print(f"SFT: {config.steps} steps in {t2 - t1:.1f} s; saved to {sft.checkpoint} "
          f"(run {sft.run_id})")
    return 0


def run_dpo_cli(args: argparse.Namespace) -> int:
    from lmcore.cli.train import read_corpus
    from lmcore.stages.pipeline import accuracy_table, instructions_for, load_stage, run_dpo

    config = _config(args, beta=args.beta, nll_weight=args.nll_weight)
    corpus = read_corpus(args.corpus)
    data = instructions_for(corpus, seed=args.seed)
    start = load_stage(args.source)
    t0 = time.perf_counter()
    dpo, m = run_dpo(start, data, config, corpus=corpus, callback=_progress(args, "dpo"))
    t1 = time.perf_counter()
    b, a = m["before"], m["after"]
    print(f"## Preference tuning (DPO, beta={config.beta:g}, NLL weight "
          f"{config.nll_weight:g}) on {corpus.name}\n")
    print(f"Pairs: {len(m['train_pairs'])} for tuning, {len(m['test_pairs'])} held out (the "
          "SFT model's own sampled answers, ranked by the rule).\n")
    print("| held-out pairs | before DPO | after DPO |\n|---|---:|---:|")
    print(f"| win rate (preferred answer more likely) | {_pct(b['win_rate'])} | "
          f"{_pct(a['win_rate'])} |")
    print(f"| implicit reward margin | {b['margin']:.3f} | {a['margin']:.3f} |")
    print(f"| KL(policy ‖ SFT reference), nats/token | {b['kl']:.4f} | {a['kl']:.4f} |\n")
    print(accuracy_markdown(accuracy_table({"SFT": start, "DPO": dpo}, data)))
    print(f"\nDPO: {config.steps} steps in {t1 - t0:.1f} s; saved to {dpo.checkpoint} "
          f"(run {dpo.run_id})")
    return 0
