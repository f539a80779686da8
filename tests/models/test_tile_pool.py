"""The tile worker pool: workers run torch single-threaded, the caller keeps its threads."""

from __future__ import annotations

import sys
import time

import pytest
import torch

from lmcore.models.tile_pool import run_units, serial_pool, tile_workers


def test_tile_workers_run_their_ops_single_threaded(two_threads):
    """With two torch threads the tiled kernel spreads tiles over two worker threads, each
    running torch (OpenMP and MKL) on one thread, while the caller keeps its two."""
    if sys.platform != "linux":
        pytest.skip("per-thread OpenMP/MKL settings are found through /proc/self/maps")
    assert tile_workers(torch.device("cpu")) == 2
    pool = serial_pool(2)
    assert pool is not None
    assert pool.submit(torch.get_num_threads).result() == 1
    assert torch.get_num_threads() == 2  # the caller is untouched
    # a tiled call made inside a worker runs inline (no nested pool)
    assert pool.submit(tile_workers, torch.device("cpu")).result() == 1
    slots = set()
    run_units(list(range(8)), lambda u, slot: (time.sleep(0.01), slots.add(slot)), 2)
    assert slots == {0, 1}
