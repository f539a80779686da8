"""A closed session's memory goes back to the system, not only to glibc's free lists."""

from __future__ import annotations

import sys

import pytest

from lmcore.app.session_life import return_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_freed_heap_is_handed_back():
    from lmcore.train.memory import rss_bytes

    keep = [bytes(2048) + bytes([i % 256]) for i in range(100_000)]  # ~200 MB of small blocks
    tail = [bytes(64) for _ in range(1000)]  # allocated last: the heap top stays in use
    before = rss_bytes()
    del keep
    returned = return_memory()
    assert returned > 100 * 2**20, (returned, before)
    assert tail


def test_arrow_pool_pages_are_handed_back_too():
    """Streamlit serialises tables through pyarrow, whose mimalloc pool keeps freed pages
    past glibc's trim (here: 131 MB freed, none back after the trim alone)."""
    pa = pytest.importorskip("pyarrow")
    import numpy as np
    import pyarrow.compute as pc

    if pa.default_memory_pool().backend_name == "system":
        pytest.skip("pyarrow allocates with malloc here: the trim already covers it")
    base = pa.array(np.arange(100_000))
    keep = [pc.add(base, i) for i in range(150)]  # 150 buffers of 0.8 MB from Arrow's pool
    assert pa.total_allocated_bytes() > 100 * 2**20
    del keep
    assert return_memory() > 60 * 2**20
