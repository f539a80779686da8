"""'How this is computed': the lmcore functions behind a page section, one step from the code.

Each experiment section of a page ends with a small expander naming the functions it calls,
the file (and line) each lives in and, where there is one, the CLI command that repeats it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[2]  # the repository: lmcore/app/ -> lmcore -> root


def locate(fn: Callable | str) -> tuple[str, str, int | None]:
    """(qualified name, path relative to the repository, first line) of a function or class.

    `fn` is the object, or 'package.module:name' for one the page does not import itself
    (a job body that runs in a worker): then the line is found by reading the file.
    """
    if isinstance(fn, str):
        module, _, name = fn.partition(":")
        path = ROOT / (module.replace(".", "/") + ".py")
        line = None
        if path.is_file():
            head = name.split(".")[0]
            for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if text.startswith((f"def {head}(", f"class {head}(", f"class {head}:")):
                    line = i
                    break
        return f"{module}.{name}", path.relative_to(ROOT).as_posix(), line
    obj = inspect.unwrap(fn)
    path = Path(inspect.getsourcefile(obj) or "").resolve()
    try:
        line = inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        line = None
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    return f"{obj.__module__}.{obj.__qualname__}", rel, line


def how_computed(*fns: Callable | str, cli: str | None = None, note: str = "") -> None:
    """Draw the 'How this is computed' expander for a section that calls `fns`."""
    with st.expander("How this is computed", expanded=False):
        lines = []
        for fn in fns:
            name, path, line = locate(fn)
            where = f"{path}:{line}" if line else path
            lines.append(f"- `{name}` in `{where}`")
        st.markdown("\n".join(lines))
        if note:
            st.caption(note)
        if cli:
            st.markdown(f"The same from a shell: `{cli}`")
