"""A fixed torch thread count for the calling thread only, while a model drives the coder.

Why a fixed count. Torch's floats depend on its thread count: the same Transformer gives
different log-probabilities with 1, 2, 4 or 8 intra-op threads (measured here, even for a
1-layer width-16 model), and a range coder only decodes what it encoded when both sides see
bit-identical distributions. Fixing the count (and writing it in the file's header) makes a
file decodable by any process on the machine, whatever it was configured with. One thread
suits a coder that asks for one token at a time, which is latency-bound (a 2-layer width-64
model: 1.8 ms per token on one thread, 23-59 ms on two on a busy 2-core machine); the
lockstep coder's batched steps (64 streams) run 1.6x faster on two (lmcore.info.streams).

Why the care. `torch.set_num_threads(n)` sets the calling thread's OpenMP and MKL counts,
but also the process-wide default that every other thread adopts, for good, at its first
torch call. Leaving that at 1 while coding would give one thread to a training job that
another session starts meanwhile. So the default is put back at once from a short-lived
helper thread (whose own setting ends with it); only the calling thread keeps its count,
until the context exits and restores its count. Threads already running are never touched.
What remains: a thread whose very first torch call falls in the ~0.2 ms between the two calls
still starts with one thread. A lock keeps two coders from reading each other's window.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

_LOCK = threading.Lock()


def _in_fresh_thread(fn: Callable[[], Any]) -> Any:
    """fn() run in a new thread (what a thread created now would see), its result returned."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    t = threading.Thread(target=run, name="lmcore-torch-threads", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


def default_threads() -> int:
    """The torch thread count a thread starting now would get (the process-wide default)."""
    import torch

    return int(_in_fresh_thread(torch.get_num_threads))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on `n` threads in this thread only, leaving the process default as it was."""
    torch = sys.modules.get("torch")
    if torch is None:  # no torch model can be involved: nothing to pin
        yield
        return
    with _LOCK:  # (this thread's first torch call, if it is one, never lands in a window)
        before = torch.get_num_threads()  # this thread's count
        if before == n:
            default = None
        else:
            default = default_threads()
            torch.set_num_threads(n)  # this thread: n; side effect: the default becomes n ...
            _in_fresh_thread(lambda: torch.set_num_threads(default))  # ... and is put back
    if default is None:
        yield
        return
    try:
        yield
    finally:
        with _LOCK:
            torch.set_num_threads(before)  # this thread back; the default becomes `before`
            if default != before:
                _in_fresh_thread(lambda: torch.set_num_threads(default))


def one_torch_thread() -> contextlib.AbstractContextManager[None]:
    """Run torch on one thread in this thread only, leaving the process default as it was."""
    return torch_threads(1)
