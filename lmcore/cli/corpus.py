"""`lmcore corpus`: inspect a text file the way the app would load it, list the built-ins."""

from __future__ import annotations

import argparse
import json
import sys

from lmcore.cli import CLIError, read_input
from lmcore.data.corpus import Corpus, load_text


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("corpus", help="inspect corpora (encoding, repairs, counts)",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", help="load FILE as the app would and report what was found")
    info.add_argument("file", metavar="FILE", help="a text file in any encoding ('-' for stdin)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    builtin = sub.add_parser("builtin", help="list the built-in corpora, or --dump one")
    builtin.add_argument("--dump", metavar="NAME",
                         help="write this corpus's text to stdout (number, or part of its name)")
    builtin.add_argument("--json", action="store_true", help="print the list as JSON")
    builtin.set_defaults(func=cmd_builtin)


def describe(corpus: Corpus, file_bytes: int | None = None) -> dict:
    """Everything `corpus info` reports, as a JSON-ready dict."""
    split = corpus.split()
    return {
        "name": corpus.name,
        "source": corpus.source,
        "encoding": corpus.encoding,
        "repairs": list(corpus.repairs),
        "chars": corpus.chars,
        "lines": corpus.lines,
        "bytes_utf8": corpus.bytes_utf8,
        "file_bytes": file_bytes,
        "fingerprint": corpus.fingerprint,
        "entropy_rate": corpus.entropy_rate,
        "split_chars": {"train": len(split.train), "valid": len(split.valid),
                        "test": len(split.test)},
    }


def _print_table(d: dict) -> None:
    s = d["split_chars"]
    rows = [
        ("name", d["name"]),
        ("source", d["source"]),
        ("encoding", d["encoding"]),
        ("characters", f"{d['chars']:,}"),
        ("lines", f"{d['lines']:,}"),
        ("bytes", f"{d['bytes_utf8']:,} as UTF-8"
         + (f", {d['file_bytes']:,} in the file" if d["file_bytes"] is not None else "")),
        ("fingerprint", d["fingerprint"]),
        ("split", f"train {s['train']:,} · valid {s['valid']:,} · test {s['test']:,} characters"),
    ]
    if d["entropy_rate"] is not None:
        rows.append(("entropy rate", f"{d['entropy_rate']:.6f} bits/char (exact)"))
    repairs = d["repairs"] or ["none needed"]
    rows.insert(3, ("repairs", repairs[0]))
    rows[4:4] = [("", r) for r in repairs[1:]]
    for key, value in rows:
        print(f"{key:<13}{value}")


def cmd_info(args: argparse.Namespace) -> int:
    data, name = read_input(args.file)
    corpus = load_text(data, name)
    d = describe(corpus, file_bytes=len(data))
    if args.json:
        print(json.dumps(d, ensure_ascii=False, indent=2))
    else:
        _print_table(d)
    return 0


def _find_builtin(key: str, names: list[str]) -> str:
    """A built-in corpus by 1-based number, exact name, or unique case-insensitive substring."""
    if key.isdigit() and 1 <= int(key) <= len(names):
        return names[int(key) - 1]
    if key in names:
        return key
    hits = [n for n in names if key.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    listing = "; ".join(f"{i}: {n}" for i, n in enumerate(names, 1))
    why = "matches several" if hits else "matches none"
    raise CLIError(f"{key!r} {why} of the built-in corpora ({listing})")


def cmd_builtin(args: argparse.Namespace) -> int:
    from lmcore.data.builtin import builtin_corpora

    factories = builtin_corpora()
    names = list(factories)
    if args.dump:
        corpus = factories[_find_builtin(args.dump, names)]()
        sys.stdout.buffer.write(corpus.text.encode("utf-8"))
        sys.stdout.buffer.flush()
        return 0
    rows = [describe(factories[n]()) for n in names]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for i, d in enumerate(rows, 1):
        rate = f" · {d['entropy_rate']:.4f} bits/char" if d["entropy_rate"] is not None else ""
        lines = f"{d['lines']:,} line" + ("" if d["lines"] == 1 else "s")
        print(f"{i}. {d['name']}  ({d['chars']:,} characters · {lines}{rate})")
    return 0
