"""The CPU worker pool that runs attention tiles: one fork/join per call.

Every torch op on a tile is its own OpenMP parallel region, and a
region whose second thread the OS has descheduled waits for it (a time slice, milliseconds).
A tiled call runs ~6 regions per tile (T=8192: 528 tiles) where sdpa's fused kernel runs
one, so on a CPU shared with other processes tiled measured 5-30x slower than sdpa with two
threads and 1.0-1.1x with one. The tiles are therefore spread over worker threads whose own
ops run single-threaded (OpenMP's and MKL's thread counts are per thread): one join per
call, like sdpa's `parallel_for`, and a descheduled worker's tiles go to the other.

`tile_workers(device)` says how many workers a call may use; `run_units(units, fn, workers)`
runs fn over the units on them (the tiled kernels in `attention.py` are its only callers).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

_SERIAL = threading.local()  # .ok: this worker's torch ops run on one thread
_POOLS: dict[int, ThreadPoolExecutor | None] = {}
_POOLS_PID = os.getpid()
_POOLS_LOCK = threading.Lock()
_END = object()


def _runtime_functions() -> tuple[list[Callable], Callable | None, Callable | None]:
    """Every loaded OpenMP runtime's omp_set_num_threads, and MKL's per-thread setter/getter."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if ".so" in line and "/" in line}
    except OSError:
        return [], None, None
    omp: list[Callable] = []
    mkl_set = mkl_get = None
    for path in sorted(paths):
        name = os.path.basename(path)
        if not any(key in name for key in ("gomp", "iomp", "libomp", "torch_cpu", "mkl")):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if "omp" in name and hasattr(lib, "omp_set_num_threads"):
            fn = lib.omp_set_num_threads
            fn.argtypes, fn.restype = [ctypes.c_int], None
            omp.append(fn)
        if mkl_set is None and hasattr(lib, "MKL_Set_Num_Threads_Local"):  # C interface
            mkl_set, mkl_get = lib.MKL_Set_Num_Threads_Local, lib.MKL_Get_Max_Threads
            mkl_set.argtypes, mkl_set.restype = [ctypes.c_int], ctypes.c_int
            mkl_get.argtypes, mkl_get.restype = [], ctypes.c_int
    return omp, mkl_set, mkl_get


def _make_serial() -> None:
    """Pool initializer: make this thread's torch ops single-threaded (OpenMP and MKL).

    Both settings are per thread (OpenMP's nthreads ICV, MKL's local thread count), so the
    caller and every other thread keep theirs. `_SERIAL.ok` records whether it worked.
    """
    torch.get_num_threads()  # torch's once-per-thread init, which would undo what follows
    omp, mkl_set, mkl_get = _runtime_functions()
    for fn in omp:
        fn(1)
    if mkl_set is not None:
        mkl_set(1)
    mkl_ok = mkl_get() == 1 if mkl_get is not None else not torch.backends.mkl.is_available()
    _SERIAL.ok = torch.get_num_threads() == 1 and mkl_ok


def _probe(barrier: threading.Barrier) -> bool:
    barrier.wait(timeout=30)  # holds each worker until all have started: one answer per thread
    return bool(getattr(_SERIAL, "ok", False))


def serial_pool(n: int) -> ThreadPoolExecutor | None:
    """n worker threads with single-threaded torch ops, or None where that cannot be arranged."""
    global _POOLS_PID
    with _POOLS_LOCK:
        if _POOLS_PID != os.getpid():  # a forked child has none of its parent's threads
            _POOLS.clear()
            _POOLS_PID = os.getpid()
        if n not in _POOLS:
            pool = ThreadPoolExecutor(n, "lmcore-tiles", initializer=_make_serial)
            barrier = threading.Barrier(n)
            try:
                ok = all(f.result() for f in [pool.submit(_probe, barrier) for _ in range(n)])
            except threading.BrokenBarrierError:
                ok = False
            if not ok:
                pool.shutdown(wait=False)
                pool = None
            _POOLS[n] = pool
        return _POOLS[n]


def tile_workers(device: torch.device) -> int:
    """Worker threads the tiled kernel uses for tensors on `device` from this thread (1 = inline).

    The calling thread's torch thread count (`torch.set_num_threads`) on the CPU; 1 on a GPU,
    or where the threads' own ops cannot be made single-threaded.
    """
    n = torch.get_num_threads()
    if device.type != "cpu" or n <= 1 or getattr(_SERIAL, "ok", False):
        return 1
    return n if serial_pool(n) is not None else 1


def run_units(
    units: list,
    fn: Callable[[object, int], None],
    workers: int,
    cost: Callable[[object], int] | None = None,
) -> None:
    """fn(unit, slot) for every unit, over `workers` serial threads; `slot` numbers the thread
    within this call, so fn can keep per-thread buffers.

    Without `cost`, threads take the next unit of the list as they finish one (a descheduled
    thread's share goes to the others). With `cost`, the units are split beforehand (longest
    first, each to the least loaded slot), so which slot sums which units, and hence every
    floating-point sum, is the same on every run.
    """
    workers = min(workers, len(units))
    pool = serial_pool(workers) if workers > 1 else None
    if pool is None:
        for u in units:
            fn(u, 0)
        return
    failed = threading.Event()
    inference = torch.is_inference_mode_enabled()
    if cost is None:
        it, lock = iter(units), threading.Lock()

        def take(slot: int) -> object:
            with lock:
                return next(it, _END)
    else:
        shares: list[list] = [[] for _ in range(workers)]
        loads = [0] * workers
        for u in sorted(units, key=cost, reverse=True):
            i = loads.index(min(loads))
            shares[i].append(u)
            loads[i] += cost(u)
        its = [iter(share) for share in shares]

        def take(slot: int) -> object:
            return next(its[slot], _END)

    def drain(slot: int) -> None:
        with torch.inference_mode(inference), torch.no_grad():
            while not failed.is_set():
                u = take(slot)
                if u is _END:
                    return
                try:
                    fn(u, slot)
                except BaseException:
                    failed.set()
                    raise

    for f in [pool.submit(drain, slot) for slot in range(workers)]:
        f.result()
