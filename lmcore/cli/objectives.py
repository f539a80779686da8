"""`lmcore objectives`: train a causal, a prefix and a masked LM on one budget, compare fairly.

The same experiment as the app's Objectives page: one backbone config, identical initial
weights, the same steps, batch and context for all three; then the fair held-out table (causal
and prefix on the same suffix positions, the causal model on full sequences, the masked model
by pseudo-log-likelihood and masked-token accuracy) printed as Markdown. Each objective is
recorded as a run in $LMCORE_HOME/runs.sqlite. With `--encdec` an encoder-decoder (denoising:
span infilling and tail masking) joins them on the same budget, scored on the same suffix
positions and full sequences (true likelihoods) and on infilled spans.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import threading
from pathlib import Path
from typing import Any

from lmcore.cli import CLIError, output_path, real, whole
from lmcore.cli.train import TOKENIZERS, read_corpus
from lmcore.data.atomic import write_text_atomic
from lmcore.data.tokenizers import train_tokenizer

NAMES = ("causal", "prefix", "masked")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "objectives", help="causal vs prefix vs masked LM on one budget; prints the fair table",
        description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="builtin", metavar="FILE|builtin",
                   help="a text file, 'builtin' (Python's reference docs) or 'markov'")
    p.add_argument("--tokenizer", choices=TOKENIZERS, default="char")
    p.add_argument("--vocab-size", type=whole(1), default=None, help="for bpe (default 1000)")
    p.add_argument("--layers", type=whole(1), default=2)
    p.add_argument("--heads", type=whole(1), default=2)
    p.add_argument("--width", type=whole(1), default=64)
    p.add_argument("--context", type=whole(1), default=64)
    p.add_argument("--attention", choices=("sdpa", "naive", "tiled"), default="sdpa")
    p.add_argument("--steps", type=whole(1), default=150, help="the same for all three")
    p.add_argument("--batch-size", type=whole(1), default=16)
    p.add_argument("--lr", type=real(above=0), default=3e-3)
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0,
                   help="initial weights, batches, prefix lengths and masking draws")
    p.add_argument("--rate", type=real(above=0, below=1), default=0.15, help="masking rate of the masked LM")
    p.add_argument("--nsp", action="store_true",
                   help="give the masked model BERT's next-sentence prediction head")
    p.add_argument("--encdec", action="store_true",
                   help="also train an encoder-decoder (BART/T5-style denoising; half the "
                        "layers encode, half decode) on the same budget")
    p.add_argument("--eval-tokens", type=whole(1), default=1024,
                   help="held-out tokens scored per model (default 1024)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--json", metavar="FILE", help="also write the table and settings as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of `rows` (dicts with the same keys); empty cells as '–'."""
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _write(path: str | Path, text: str) -> None:
    """`text` to `path` atomically (checked beforehand with `output_path`)."""
    try:
        write_text_atomic(path, text, fsync=False)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lmcore.models.transformer import TransformerConfig
    from lmcore.runs.store import RunStore
    from lmcore.settings import get_settings
    from lmcore.train.data import TokenData
    from lmcore.train.fair_metrics import PLL_NOTE, Scoring, table_rows
    from lmcore.train.objectives import MaskedLM
    from lmcore.train.one_budget import build_models, train_and_score, work_plan
    from lmcore.train.record import Recorder
    from lmcore.train.trainer import Step, TrainConfig

    MaskedLM(rate=args.rate)  # a bad rate is refused before anything runs
    csv_out = output_path(args.csv, "--csv")
    json_out = output_path(args.json, "--json")
    if args.eval_tokens < 1:
        raise CLIError(f"--eval-tokens must be at least 1, got {args.eval_tokens}")
    if args.nsp and args.context < 5:
        raise CLIError("--nsp needs a context of at least 5 tokens ([CLS] A [SEP] B [SEP])")
    corpus = read_corpus(args.corpus)
    split = corpus.split()
    vocab = args.vocab_size or (1000 if args.tokenizer == "bpe" else None)
    tok = train_tokenizer(args.tokenizer, split.train, vocab_size=vocab)
    data = TokenData.from_text(tok, split.train, split.valid, corpus.fingerprint)
    data.check(args.context + 1)
    mcfg = TransformerConfig(vocab_size=tok.vocab_size, context=args.context,
                             n_layer=args.layers, n_head=args.heads, n_embd=args.width,
                             attention=args.attention)
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, context=args.context,
                       lr=args.lr, seed=args.seed, eval_every=max(args.steps // 5, 1),
                       eval_tokens=args.eval_tokens, memory_every=0, device=args.device)
    models = build_models(mcfg, seed=args.seed, nsp=args.nsp, encdec=args.encdec)
    for model in models.values():
        get_settings().check("max_params", model.num_parameters())
    get_settings().check("max_steps", tcfg.steps)

    store = RunStore()
    stop = threading.Event()
    metrics = []
    for name, model in models.items():
        train_work, score_work = work_plan(name, data, tcfg, args.context, args.nsp)
        bar = tqdm(total=train_work + score_work, disable=args.quiet, desc=name, unit="tok",
                   unit_scale=True, dynamic_ncols=True, leave=False)

        def show(e: Any, bar: Any = bar, train_work: int = train_work) -> None:
            if isinstance(e, Step):
                bar.n = int(train_work * e.step / e.steps)
                bar.set_postfix(step=f"{e.step}/{e.steps}", loss=f"{e.loss:.3f}", refresh=False)
                bar.refresh()
            elif isinstance(e, Scoring):
                bar.total = train_work + e.total
                bar.n = train_work + e.done
                bar.set_postfix_str(e.stage, refresh=False)
                bar.refresh()

        run_id = store.create(f"objective {name} {args.layers}x{args.width} ({tok.kind})",
                              {"model": model.config.to_dict(), "objective": name,
                               "rate": args.rate, "nsp": args.nsp,
                               "train": dataclasses.asdict(tcfg), "corpus": corpus.name},
                              corpus_name=corpus.name, corpus_fingerprint=corpus.fingerprint,
                              tokenizer=f"{tok.kind} ({tok.vocab_size})")
        try:
            result = train_and_score(name, model, data, tcfg, tokenizer=tok, rate=args.rate,
                                     nsp=args.nsp, callback=Recorder(store, run_id, then=show),
                                     stop=stop)
        except KeyboardInterrupt:
            stop.set()
            store.finish(run_id, "stopped", {})
            raise
        except Exception as exc:
            if store.get(run_id).status == "running":
                store.finish(run_id, "failed", {}, error=str(exc))
            raise CLIError(str(exc)) from None
        finally:
            bar.close()
        final = dict(store.get(run_id).final or {})
        final["fair_metrics"] = [m.as_row() for m in result.metrics]
        store.update(run_id, final=final)
        metrics += result.metrics

    rows = table_rows(metrics)
    print(f"{corpus.name} · {tok.kind} tokenizer ({tok.vocab_size}) · {args.layers}x{args.width}"
          f" · context {args.context} · {args.steps} steps × batch {args.batch_size} each · "
          f"seed {args.seed}\n")
    print(markdown(rows))
    print(f"\n[pseudo]: {PLL_NOTE}")
    if csv_out is not None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        _write(csv_out, buf.getvalue())
    if json_out is not None:
        doc = {"corpus": corpus.name, "tokenizer": f"{tok.kind} ({tok.vocab_size})",
               "model": {k: v for k, v in mcfg.to_dict().items() if k != "mask"},
               "train": dataclasses.asdict(tcfg), "rate": args.rate,
               "nsp": args.nsp, "encdec": args.encdec,
               "metrics": [_json_row(r) for r in rows],
               "pseudo_note": PLL_NOTE}
        _write(json_out, json.dumps(doc, indent=1, allow_nan=False))
    return 0


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with NaN/inf as null (strict JSON has no NaN)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in row.items()}
