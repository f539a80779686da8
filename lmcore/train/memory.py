"""Memory, measured three ways: process RSS over time, bytes autograd keeps, the CUDA peak.

- `RSSSampler`: a thread reading this process's resident set size (psutil) at ~20 Hz, so a
  live plot shows memory move while a model trains or a long text streams through it.
- `SavedTensors`: the exact bytes autograd saves for backward, counted with
  `torch.autograd.graph.saved_tensors_hooks` and de-duplicated by storage (a tensor saved by
  two ops, or two views of one buffer, is counted once). This is the activation memory that
  FlashAttention's tiled backward avoids.
- `cuda_peak_bytes()`: the CUDA allocator's high-water mark, when a GPU is present.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil
import torch


def rss_bytes() -> int:
    """This process's resident set size now, in bytes."""
    return psutil.Process().memory_info().rss


class RSSSampler:
    """Sample process RSS every `interval` seconds in a daemon thread (start/stop or `with`)."""

    def __init__(self, interval: float = 0.05, max_samples: int = 100_000):
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.max_samples = max_samples
        self._proc = psutil.Process()
        self._lock = threading.Lock()
        self._times: list[float] = []
        self._rss: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def start(self) -> RSSSampler:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._t0 = time.monotonic()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="lmcore-rss", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._sample()

    def __enter__(self) -> RSSSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _sample(self) -> None:
        rss = self._proc.memory_info().rss
        with self._lock:
            self._times.append(time.monotonic() - self._t0)
            self._rss.append(rss)
            if len(self._rss) > self.max_samples:  # keep every other point: bounded memory
                self._times = self._times[::2]
                self._rss = self._rss[::2]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def samples(self) -> tuple[list[float], list[int]]:
        """(seconds since start, RSS bytes) copies, safe to call from any thread."""
        with self._lock:
            return list(self._times), list(self._rss)

    @property
    def peak(self) -> int:
        with self._lock:
            return max(self._rss) if self._rss else 0


@dataclass
class SavedTensors:
    """Count the bytes autograd saves for backward inside a `with` block, exactly.

    Each distinct storage is counted once, at its full size (a saved view keeps its whole
    buffer alive). Parameters saved for backward are counted separately from activations.
    """

    count_parameters: bool = False
    bytes: int = 0  # activation bytes (distinct storages, parameters excluded)
    param_bytes: int = 0
    tensors: int = 0  # pack calls seen
    by_shape: dict[tuple, int] = field(default_factory=dict)
    _seen: set = field(default_factory=set, repr=False)
    _params: set = field(default_factory=set, repr=False)
    _ctx: object = field(default=None, repr=False)

    def watch(self, module: torch.nn.Module) -> SavedTensors:
        """Tell parameters of `module` apart from activations (they exist anyway)."""
        self._params.update(_storage_key(p) for p in module.parameters())
        return self

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self.tensors += 1
        key = _storage_key(t)
        if key in self._seen:
            return t
        self._seen.add(key)
        nbytes = t.untyped_storage().nbytes()
        if key in self._params:
            self.param_bytes += nbytes
        else:
            self.bytes += nbytes
            shape = tuple(t.shape)
            self.by_shape[shape] = self.by_shape.get(shape, 0) + nbytes
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> SavedTensors:
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
        self._ctx = None


def _storage_key(t: torch.Tensor) -> tuple:
    s = t.untyped_storage()
    return (t.device.type, t.device.index, s.data_ptr(), s.nbytes())


def cuda_peak_bytes(reset: bool = False) -> int | None:
    """The CUDA allocator's peak since the last reset, or None without a GPU."""
    if not torch.cuda.is_available():
        return None
    peak = int(torch.cuda.max_memory_allocated())
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return peak

