"""The `lmcore` command line: every experiment in the app is also a command.

Each module in this package adds its subcommands with `register(subparsers)`; they are found
automatically so that commands live beside nothing but themselves.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lmcore` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lmcore ... | head` closed the pipe: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is quiet
        return 141
    except Exception as exc:  # a person reads this line, not a traceback
        from lmcore.data.corpus import CorpusError
        from lmcore.settings import LimitError

        if isinstance(exc, CLIError | CorpusError | LimitError | ValueError | FileNotFoundError):
            print(f"lmcore: error: {exc}", file=sys.stderr)
            return 2
        if os.environ.get("LMCORE_DEBUG"):
            raise
        print(f"lmcore: internal error ({type(exc).__name__}: {exc}); your files are "
              "unchanged. Set LMCORE_DEBUG=1 to see the traceback, and please report it.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
