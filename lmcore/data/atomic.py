"""Atomic file writes: a temp file beside the target, then one rename, so a reader (or the
next run) sees the old file or the new one, never half of one.

A kill between the two leaves the temp file behind. Its name carries the writer's process id
(`.NAME.PID.RANDOM.tmp`), so the next save or resume into the same folder can tell a dead
writer's leftovers from a live writer's file in progress and remove only the former
(`remove_stale_temps`).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_OURS = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")  # .NAME.PID.RANDOM.tmp
# Names of older lmcore versions, without a process id: stale once they are this old.
_LEGACY = re.compile(r"^(\.tmp-.+\.(safetensors|json)|\..+\.tmp|.+\.json\.tmp)$")
LEGACY_STALE_S = 600.0


def write_atomic(path: str | Path, write: Callable[[str], None]) -> Path:
    """Run `write(tmp)` on a temp file beside `path`, then rename it over `path`.

    The temp file is removed if `write` fails; a folder at `path` is refused before anything
    is written (IsADirectoryError).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text_atomic(path: str | Path, text: str, fsync: bool = True) -> Path:
    """`text` as UTF-8 (LF line ends kept as they are) to `path`, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            if fsync:
                f.flush()
                os.fsync(f.fileno())

    return write_atomic(path, write)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """`data` to `path`, atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # a write of this process may be in flight in another thread
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove temp files a killed writer left in `folder`; return what was removed.

    A temp file of a live process (a save in progress) is kept, and so is a legacy-named one
    younger than LEGACY_STALE_S seconds.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for f in folder.iterdir():
        m = _OURS.match(f.name)
        if m:
            stale = not _alive(int(m.group(1)))
        elif _LEGACY.match(f.name):
            try:
                stale = now - f.stat().st_mtime > LEGACY_STALE_S
            except OSError:
                continue
        else:
            continue
        if stale and f.is_file() and not f.is_symlink():
            try:
                f.unlink()
                removed.append(f)
            except OSError:
                pass
    return removed
