"""Memory, measured: process RSS over time, bytes autograd keeps, the peak of one call.

lmcore's one home for memory measurement (the trainer, the attention profile, the long-text
strategies and the benchmarks all use it):

- `RSSSampler`: a thread reading this process's resident set size (psutil) at ~20 Hz, so a
  live plot shows memory move while a model trains or a long text streams through it.
- `SavedTensors` / `saved_for_backward`: the exact bytes autograd saves for backward, counted
  with `torch.autograd.graph.saved_tensors_hooks` and de-duplicated by storage (a tensor saved
  by two ops, or two views of one buffer, is counted once). This is the activation memory
  that FlashAttention's tiled backward avoids.
- `PeakRSS` / `peak_bytes`: the peak memory of one call on the CPU, exactly, by DESIGN.md's
  method: with glibc's mmap threshold at 64 KiB (so freed tensors go back to the OS), warm
  up, write 5 to /proc/self/clear_refs to reset the high-water mark, run the call, and take
  VmHWM minus the VmRSS read just before it. Exact in a fresh process started with
  MALLOC_MMAP_THRESHOLD_=65536; in a running one the threshold is set through mallopt
  (good enough for a live plot; other threads add noise). On a GPU, `peak_bytes` reads
  torch's caching allocator instead; `cuda_peak_bytes()` is its high-water mark so far.

torch is imported only where a function needs it, so n-gram tools can measure without it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
SMALL_MMAP = 65536  # the DESIGN.md setting: anything over 64 KiB is mmapped and unmapped on free
BIG_MMAP = 32 * 2**20  # glibc's largest dynamic threshold: heap reuse, for timing


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
    shapes: list[tuple[int, ...]] = field(default_factory=list)  # of every pack call
    largest_numel: int = 0  # elements of the largest tensor saved
    _seen: set = field(default_factory=set, repr=False)
    _params: set = field(default_factory=set, repr=False)
    _ctx: object = field(default=None, repr=False)

    def watch(self, module: torch.nn.Module) -> SavedTensors:
        """Tell parameters of `module` apart from activations (they exist anyway)."""
        self._params.update(_storage_key(p) for p in module.parameters())
        return self

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self.tensors += 1
        self.shapes.append(tuple(t.shape))
        self.largest_numel = max(self.largest_numel, t.numel())
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
        import torch

        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)
        self._ctx = None


def _storage_key(t: torch.Tensor) -> tuple:
    s = t.untyped_storage()
    return (t.device.type, t.device.index, s.data_ptr(), s.nbytes())


@dataclass(frozen=True)
class SavedReport:
    """Tensors autograd keeps for backward: total bytes (distinct storages) and the largest."""

    total_bytes: int
    count: int
    largest_numel: int
    shapes: tuple[tuple[int, ...], ...]


def saved_for_backward(fn: Callable[[], object]) -> SavedReport:
    """Run `fn` (a forward) under saved-tensor hooks and count what autograd keeps."""
    with SavedTensors() as saved:
        fn()
    return SavedReport(saved.bytes, saved.tensors, saved.largest_numel, tuple(saved.shapes))


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: its high-water mark)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def set_mmap_threshold(nbytes: int) -> bool:
    """Set glibc's mmap threshold in this process (and trim the heap); False if not glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, nbytes) == 1
    libc.mallopt(M_TRIM_THRESHOLD, max(nbytes, 128 * 1024))
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    return ok


class PeakRSS:
    """`with PeakRSS() as p:` resets the high-water mark; after it `p.bytes` is VmHWM − VmRSS
    before (the block's peak growth), `p.hwm` the process's high-water mark, both in bytes.

    `p.reset` is False where /proc/self/clear_refs cannot be written (then `p.bytes` is None:
    the mark may be older than the block). Exact only in a process started with
    MALLOC_MMAP_THRESHOLD_=65536 (or after `set_mmap_threshold(SMALL_MMAP)`).
    """

    def __init__(self) -> None:
        self.reset = False
        self.before = self.hwm = 0
        self.bytes: int | None = None

    def __enter__(self) -> PeakRSS:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.before = status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        self.hwm = status_kib("VmHWM") * 1024
        self.bytes = max(0, self.hwm - self.before) if self.reset else None


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU kernels, so a timer or a peak reading sees finished work."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def peak_bytes(
    fn: Callable[[], object],
    *,
    warmup: bool = True,
    setup: Callable[[], object] | None = None,
    device: torch.device | None = None,
) -> int:
    """Peak memory one call of `fn` adds, in bytes: DESIGN.md's method on the CPU.

    CPU (the default): VmHWM − VmRSS before, the high-water mark reset, glibc's mmap
    threshold set to 64 KiB first so heap kept from earlier calls cannot hide the peak. CUDA:
    torch's allocator peak (`max_memory_allocated` minus what was allocated before).
    `setup` runs after the warm-up, outside the measured window (e.g. to drop gradients).
    """
    if warmup:
        fn()
    if setup is not None:
        setup()
    if device is not None and device.type == "cuda":
        import torch

        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - before)
    set_mmap_threshold(SMALL_MMAP)
    with PeakRSS() as peak:
        fn()
    if peak.bytes is None:
        raise OSError("cannot reset the memory high-water mark (/proc/self/clear_refs)")
    return peak.bytes


def cuda_peak_bytes(reset: bool = False) -> int | None:
    """The CUDA allocator's peak since the last reset, or None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    peak = int(torch.cuda.max_memory_allocated())
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return peak



# optimizer state per parameter, in copies of the weights (SGD keeps none, momentum a velocity,
# Adam and AdamW the first and second moments)
OPTIMIZER_COPIES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


def training_state_bytes(model: torch.nn.Module, optimizer: str = "adamw") -> int:
    """Bytes training holds whatever the batch: weights, their gradients, optimizer state."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return weights * (2 + OPTIMIZER_COPIES[optimizer])
