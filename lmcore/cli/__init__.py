"""The `lmcore` command line: every experiment in the app is also a command.

Each module in this package adds its subcommands with `register(subparsers)`; they are found
automatically so that commands live beside nothing but themselves.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import stat
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmcore.data.corpus import Corpus


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit code 2, no traceback."""


def read_input(spec: str, what: str = "FILE") -> tuple[bytes, str]:
    """The bytes of file `spec` ('-' is standard input) and the name to show for it.

    Every command reads its input files through here: the read stops just past the input
    limit (LMCORE_UPLOAD_MB, LMCORE_MAX_CHARS), so /dev/zero or an endless pipe is refused
    in a moment instead of filling memory; a missing file, a folder or an unreadable file is
    a one-line CLIError.
    """
    from lmcore.data.corpus import check_upload_size, read_limited

    if spec == "-":
        return read_limited(sys.stdin.buffer, "standard input"), "standard input"
    if not spec:
        raise CLIError(f"{what}: give a file name (an empty one was given)")
    name = os.path.basename(spec.rstrip("/")) or spec
    try:
        with open(spec, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):  # a plain file's size is known: refuse it unread
                check_upload_size(st.st_size, spec)
            return read_limited(f, spec), name
    except FileNotFoundError:
        raise CLIError(f"{spec}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{spec} is a folder; give a file") from None
    except PermissionError:
        raise CLIError(f"{spec}: permission denied") from None
    except OSError as exc:
        raise CLIError(f"cannot read {spec}: {exc.strerror or exc}") from None


def read_corpus_file(spec: str) -> Corpus:
    """`spec` ('-' for standard input) loaded as the app loads an upload (`load_text`)."""
    from lmcore.data.corpus import load_text

    data, name = read_input(spec)
    return load_text(data, name)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with `command`, of the module named after it only.

    `lmcore ngram ...` then imports `cli/ngram.py` alone, and with it nothing an n-gram
    command does not use (not torch): the command starts in a fraction of a second. A
    command with no module of its name (`decompress`, a typo) or `--help` loads them all.
    """
    names = sorted(m.name for m in pkgutil.iter_modules(__path__))
    parser = argparse.ArgumentParser(prog="lmcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [command] if command in names else names:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lmcore` console script."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
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
