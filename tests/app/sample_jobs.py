"""Job bodies for the engine's tests: module-level, so a worker process can unpickle them.

(Test modules themselves are imported by pytest's importlib mode under names a worker cannot
import; this module is imported by its plain name from `tests/app`, which conftest puts on
sys.path and a worker inherits.)
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from lmcore.settings import get_settings


def report(ctx, n: int = 5):
    """Series, progress, a value, and facts about the process it ran in."""
    for i in range(n):
        ctx.log("loss", step=i, train=10.0 - i)
        ctx.progress((i + 1) / n, f"step {i + 1}")
    ctx.log("loss", step=n, valid=4.5)  # a new field pads older points with None
    ctx.set("sample", "hello")
    return {"pid": os.getpid(), "streamlit": "streamlit" in sys.modules,
            "main": getattr(sys.modules.get("__main__"), "__file__", None)}


def many_points(ctx, n: int):
    for i in range(n):
        ctx.log("s", i=i)
    return n


def until_stopped(ctx, tick: float = 0.002):
    """A cooperative loop: returns how many ticks it ran once asked to stop."""
    steps = 0
    ctx.set("pid", os.getpid())
    while not ctx.stop.is_set():
        steps += 1
        if steps == 1:
            ctx.progress(0.01, "looping")
        time.sleep(tick)
    return steps


def saves_when_stopped(ctx, marker: str):
    """Like a training job: loops until asked to stop, then writes its 'checkpoint'."""
    ctx.set("pid", os.getpid())
    ctx.progress(0.01, "training")
    while not ctx.stop.is_set():
        time.sleep(0.002)
    Path(marker).write_text("saved")
    return "saved"


def ignores_stop(ctx, marker: str | None = None):
    """Never looks at ctx.stop: only a kill ends it."""
    ctx.set("pid", os.getpid())
    ctx.progress(0.01, "stubborn")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    while True:
        time.sleep(0.01)


def half_then_wait(ctx, seconds: float):
    time.sleep(0.1)
    ctx.progress(0.5)
    time.sleep(seconds)
    return "ok"


def slow_start(ctx, startup: float, steps: int, step_s: float):
    """A start-up with no progress (imports, data), then `steps` equal steps."""
    time.sleep(startup)
    for i in range(1, steps + 1):
        ctx.progress(i / steps)
        time.sleep(step_s)
    return "ok"


def fails(ctx, message: str):
    raise RuntimeError(message)


def bad_input(ctx):
    raise ValueError("the corpus is empty: load a longer text")


class Stopped(Exception):
    """What a cooperative loop raises when it notices its stop event."""


def raises_when_stopped(ctx):
    ctx.progress(0.01, "looping")
    while True:
        if ctx.stop.is_set():
            raise Stopped("gave up at the next check")
        time.sleep(0.002)


def raises_stopped_unasked(ctx):
    raise Stopped("no stop was asked")


def allocates(ctx, mb: int, hold: float = 30.0):
    """Touches `mb` MB of memory and holds it."""
    block = bytearray(mb * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    ctx.progress(0.5, "holding")
    time.sleep(hold)
    return len(block)


def kills_itself(ctx):
    os.kill(os.getpid(), signal.SIGKILL)


def settings_seen(ctx):
    return {"max_steps": get_settings().max_steps, "home": get_settings().home}


def writes_file(ctx, text: str):
    path = Path(ctx.workdir) / "out.txt"
    path.write_text(text)
    return str(path)


def clamped(ctx, frac: float):
    ctx.progress(frac)
    return None


def spawns_child(ctx, marker: str):
    """Starts a grandchild process that sleeps, writes its pid, then waits forever."""
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(marker).write_text(str(child.pid))
    ctx.progress(0.01, "child started")
    while True:
        time.sleep(0.01)


def torch_threads(ctx):
    import torch

    return torch.get_num_threads()


def niceness(ctx):
    return os.nice(0)


def returns_torch(ctx):
    """A tensor and a module come back by value (not as shared-memory handles of a process
    that has exited)."""
    import torch

    torch.manual_seed(0)
    return torch.arange(6.0).reshape(2, 3), torch.nn.Linear(3, 2)


def stopped_first(fn, ctx):
    """`fn(ctx)` as if Stop was pressed before its first step."""
    ctx.stop.set()
    return fn(ctx)
