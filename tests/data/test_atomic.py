"""Atomic writes: the old file or the new one, never half; a killed writer's temp files go."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from lmcore.data.atomic import (
    LEGACY_STALE_S,
    remove_stale_temps,
    write_atomic,
    write_bytes_atomic,
    write_text_atomic,
)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    write_text_atomic(target, "old")

    def boom(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, boom)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_folder_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError):
        write_bytes_atomic(tmp_path / "out", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temps_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f".model.safetensors.{_dead_pid()}.abc123.tmp"
    live = tmp_path / f".model.safetensors.{os.getpid()}.def456.tmp"  # a save in flight
    legacy_old = tmp_path / ".tmp-x1y2z3.safetensors"  # a kill during a checkpoint, long ago
    legacy_new = tmp_path / ".tmp-a1b2c3.safetensors"  # perhaps a save in flight right now
    keep = tmp_path / "model.safetensors"
    for f in (dead, live, legacy_old, legacy_new, keep):
        f.write_bytes(b"")
    old = time.time() - LEGACY_STALE_S - 60
    os.utime(legacy_old, (old, old))
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([dead, legacy_old])
    assert live.exists() and legacy_new.exists() and keep.exists()
    assert remove_stale_temps(tmp_path / "missing") == []
