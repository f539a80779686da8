"""The `lmcore` command line: every experiment in the app is also a command.

Each module in this package adds its subcommands with `register(subparsers)`; they are found
automatically so that commands live beside nothing but themselves.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import pkgutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from lmcore.data.corpus import Corpus
    from lmcore.data.tokenizers import Tokenizer


class CLIError(Exception):
    """A problem the user can fix; printed as one line, exit code 2, no traceback."""


TOKENIZER_BYTES = 256 << 20  # a tokenizer JSON of a 1,000,000-token vocabulary is ~60 MB


def read_tokenizer(spec: str) -> Tokenizer:
    """The lmcore tokenizer saved as JSON at `spec`, read with a bound like every input."""
    from lmcore.data.tokenizers import Tokenizer

    data, _ = read_input(spec, "tokenizer", limit=TOKENIZER_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CLIError(f"{spec} is not a tokenizer JSON file (not UTF-8 text)") from None
    try:
        return Tokenizer.from_json(text)
    except ValueError as exc:
        raise CLIError(f"{spec}: {exc}") from None


def read_input(spec: str, what: str = "FILE", limit: int | None = None) -> tuple[bytes, str]:
    """The bytes of file `spec` ('-' is standard input) and the name to show for it.

    Every command reads its input files through here: the read stops just past the input
    limit (LMCORE_UPLOAD_MB, LMCORE_MAX_CHARS), so /dev/zero or an endless pipe is refused
    in a moment instead of filling memory; a missing file, a folder or an unreadable file is
    a one-line CLIError.
    """
    from lmcore.data.corpus import check_upload_size, read_limited

    if spec == "-":
        return read_limited(sys.stdin.buffer, "standard input", limit=limit), "standard input"
    if not spec:
        raise CLIError(f"{what}: give a file name (an empty one was given)")
    name = os.path.basename(spec.rstrip("/")) or spec
    try:
        with open(spec, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode) and limit is None:  # a plain file's size is known
                check_upload_size(st.st_size, spec)
            return read_limited(f, spec, limit=limit), name
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


def output_path(spec: str | None, flag: str = "-o", folder: bool = False,
                parents: bool = False) -> Path | None:
    """Check where a command will write, before it does any work; None when not asked.

    A file must not be a folder, and the folder it goes in must exist (or, with `parents`,
    be one the command may create); a folder output must not be a file, and is created with
    its parents when written. So a command refused here has written nothing.
    """
    if spec is None:
        return None
    if not spec:
        raise CLIError(f"{flag}: give a {'folder' if folder else 'file'} name (an empty one was "
                       "given)")
    path = Path(spec)
    if not folder and path.is_dir():
        raise CLIError(f"{flag} {spec} is a folder; give a file name")
    if folder and path.exists() and not path.is_dir():
        raise CLIError(f"{flag} {spec} is a file; give a folder")
    parent = path if folder else path.parent
    if not folder and not parents and not parent.is_dir():
        raise CLIError(f"{flag} {spec}: the folder {parent} does not exist")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {spec}: {parent} is a file, so no folder can be made there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {spec}: cannot write in {parent} (permission denied)")
    return path


def whole(least: int | None = None, most: int | None = None) -> Callable[[str], int]:
    """An argparse `type`: a whole number in [least, most], refused with a clear message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if least is not None and value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {value:,}")
        return value

    return parse


def real(least: float | None = None, most: float | None = None, above: float | None = None,
         below: float | None = None) -> Callable[[str], float]:
    """An argparse `type`: a finite number (never nan or inf) within the given bounds."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        for bound, ok, word in ((least, lambda b: value >= b, "at least"),
                                (most, lambda b: value <= b, "at most"),
                                (above, lambda b: value > b, "above"),
                                (below, lambda b: value < b, "below")):
            if bound is not None and not ok(bound):
                raise argparse.ArgumentTypeError(f"must be {word} {bound:g}, got {value:g}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with usage mistakes reported as one line (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"lmcore: error: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; with `command`, of the module named after it only.

    `lmcore ngram ...` then imports `cli/ngram.py` alone, and with it nothing an n-gram
    command does not use (not torch): the command starts in a fraction of a second. A
    command with no module of its name (`decompress`, a typo) or `--help` loads them all.
    """
    names = sorted(m.name for m in pkgutil.iter_modules(__path__))
    parser = _Parser(prog="lmcore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [command] if command in names else names:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lmcore` console script."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
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
