"""`lmcore runs list|show|export|delete`: the run history recorded under LMCORE_HOME."""

from __future__ import annotations

import argparse
import json
import math
import sys

from lmcore.cli import CLIError, output_path, whole
from lmcore.data.atomic import write_text_atomic
from lmcore.runs.store import RunStore, managed_model_dir

_LIST_COLUMNS = ("id", "name", "status", "created", "corpus", "tokenizer", "steps",
                 "train_loss", "valid_loss", "bits_per_char")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("runs", help="list, show, export or delete recorded runs",
                              description="Runs recorded by `lmcore train` and the app, "
                                          "stored in $LMCORE_HOME/runs.sqlite.")
    sub = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="one line per run, newest first")
    ls.add_argument("-n", "--limit", type=whole(1), default=None, help="show at most N runs")
    ls.set_defaults(func=_list)
    show = sub.add_parser("show", help="a run's config, final numbers and last metrics")
    show.add_argument("run_id", help="run id (a unique prefix is enough)")
    show.set_defaults(func=_show)
    cmp = sub.add_parser("compare", help="final numbers and config of runs side by side")
    cmp.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    cmp.set_defaults(func=_compare)
    ex = sub.add_parser("export", help="a run (or all runs) as JSON or CSV")
    ex.add_argument("run_id", nargs="?", help="run id; omit with --all")
    ex.add_argument("--all", action="store_true",
                    help="every run: JSON (all fields and metrics) or CSV (one row per run)")
    ex.add_argument("--format", choices=("json", "csv"), default="json",
                    help="json: everything; csv: the metric history, or with --all the run "
                         "list (default json)")
    ex.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    ex.set_defaults(func=_export)
    rm = sub.add_parser("delete", help="delete a run, its metrics and the model lmcore saved",
                        description="Delete a run and its metrics. Its model folder is "
                                    "removed too when it lies under $LMCORE_HOME/models "
                                    "(where lmcore saves by default); a folder given with "
                                    "`lmcore train --out` is never touched.")
    rm.add_argument("run_id", help="the run's whole id, or a prefix naming one run (it is "
                    "shown and confirmed before anything is deleted)")
    rm.add_argument("-y", "--yes", action="store_true",
                    help="delete the run a prefix names without asking")
    rm.add_argument("--keep-model", action="store_true",
                    help="keep the model folder under $LMCORE_HOME/models")
    rm.set_defaults(func=_delete)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return "" if v is None else str(v)


def _get(store: RunStore, run_id: str):
    try:
        return store.get(run_id)
    except KeyError as exc:
        raise CLIError(exc.args[0]) from None


def _list(args: argparse.Namespace) -> int:
    runs = RunStore().list(limit=args.limit)
    if not runs:
        print("no runs recorded yet (train one with `lmcore train`)")
        return 0
    rows = [[_fmt(r.row().get(c)) for c in _LIST_COLUMNS] for r in runs]
    print("| " + " | ".join(_LIST_COLUMNS) + " |")
    print("|" + "---|" * len(_LIST_COLUMNS))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def _show(args: argparse.Namespace) -> int:
    store = RunStore()
    run = _get(store, args.run_id)
    print(f"run {run.id}: {run.name} [{run.display_status}]")
    if run.error:
        print(f"error: {run.error}")
    print(f"corpus: {run.corpus_name} ({run.corpus_fingerprint}) · tokenizer: {run.tokenizer}")
    print(f"checkpoint: {run.checkpoint or '-'}")
    print("config: " + json.dumps(run.config, sort_keys=True))
    print("final: " + json.dumps(run.final, sort_keys=True))
    metrics = store.metrics(run.id)
    for series, cols in metrics.items():
        n = len(cols["step"])
        last = {k: v[-1] for k, v in cols.items() if v}
        print(f"{series}: {n} points, last " + ", ".join(f"{k}={_fmt(v)}"
                                                        for k, v in last.items()))
    return 0


def _compare(args: argparse.Namespace) -> int:
    store = RunStore()
    ids = [_get(store, rid).id for rid in args.run_ids]
    rows = store.compare(ids)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    print("| field | " + " | ".join(r["id"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for k in keys:
        if k == "id":
            continue
        vals = [_fmt(r.get(k)) for r in rows]
        if any(vals):
            print(f"| {k} | " + " | ".join(vals) + " |")
    return 0


def _export(args: argparse.Namespace) -> int:
    out = output_path(args.output)
    store = RunStore()
    if args.all:
        text = store.export_runs_json() if args.format == "json" else store.export_runs_csv()
    elif args.run_id is None:
        raise CLIError("give a run id, or --all for the run list")
    else:
        run = _get(store, args.run_id)
        text = store.export_json(run.id) if args.format == "json" else store.export_csv(run.id)
    if args.output:
        write_text_atomic(out, text, fsync=False)
        print(f"wrote {args.output}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _delete(args: argparse.Namespace) -> int:
    store = RunStore()
    run = _get(store, args.run_id)
    if run.status == "running":
        raise CLIError(f"run {run.id} is still running (pid {run.pid}): stop it first")
    if run.id != args.run_id and not args.yes:  # a prefix: say which run, and ask
        what = f"run {run.id} ({run.name}, {run.display_status}, created {run.row()['created']})"
        if not sys.stdin.isatty():
            raise CLIError(f"{args.run_id!r} is a prefix of {what}; give its whole id, or add "
                           "--yes to delete it")
        print(f"{args.run_id!r} names {what}")
        if input("delete it and its metrics? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    folder = None if args.keep_model or not run.checkpoint else managed_model_dir(run.checkpoint)
    store.delete(run.id, remove_model=folder is not None)
    print(f"deleted run {run.id}" + (f" and its model {folder}" if folder else ""))
    return 0
