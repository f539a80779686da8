"""The FlashAttention page's job: the sequence-length sweep of memory and time.

`run_sweep` is a job body (module-level, `ctx` first, plain arguments): it runs in the job's
worker process, logs one series point per measured cell (series named after the
implementation) and one `STOPPED` point per implementation the memory limit stopped.
"""

from __future__ import annotations

from typing import Any

from lmcore.train.attention_profile import SweepEvent, sweep

MIB = 2**20
STOPPED = "_stopped"  # series name of the implementations stopped before the memory limit


def run_sweep(ctx: Any, *, Ts: list[int], impls: list[str], limit_bytes: int,
              fresh_process: bool = True, repeats: int = 3) -> list[str]:
    """Measure every implementation at every T; return the stop messages."""

    def on_event(ev: SweepEvent) -> None:
        if ev.kind == "cell":
            c = ev.cell
            ctx.log(ev.impl, T=ev.T, fwd_ms=c.fwd_ms, fwdbwd_ms=c.fwdbwd_ms,
                    fwd_mib=c.fwd_peak / MIB, fwdbwd_mib=c.fwdbwd_peak / MIB)
        else:
            ctx.log(STOPPED, impl=ev.impl, T=ev.T, message=ev.message,
                    predicted_mib=(ev.predicted or 0) / MIB)
        # cells skipped after a stop count as settled: the bar reaches 100%
        ctx.progress(ev.progress, f"{ev.impl} at T={ev.T}")

    events = sweep(Ts, impls, limit_bytes=limit_bytes, fresh_process=fresh_process,
                   repeats=int(repeats), stop=ctx.stop.is_set, on_event=on_event)
    return [e.message for e in events if e.kind == "stopped"]
