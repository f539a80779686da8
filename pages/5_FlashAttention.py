"""FlashAttention: memory and time against T, the online softmax step by step, saved bytes."""

import pandas as pd
import streamlit as st
import torch

from lmcore.app.attention_charts import STOPPED, running_max_figure, sweep_figure, tile_figure
from lmcore.app.frame import errors, page
from lmcore.app.jobs import live_chart, registry
from lmcore.models.attention import IMPLS, attention
from lmcore.models.online_softmax import online_softmax_trace, overflow_demo, parse_logits
from lmcore.train.attention_profile import make_inputs, sweep
from lmcore.train.memory import saved_for_backward

MIB = 2**20
POWERS = [2**i for i in range(6, 15)]  # 64 … 16384


@st.cache_data(show_spinner="Counting saved tensors…", max_entries=8)
def saved_rows(T: int) -> list[dict]:
    """Bytes each implementation keeps for backward at T (no user data: safe to share)."""
    q, k, v = (t.requires_grad_() for t in make_inputs(T))
    rows = []
    for impl in IMPLS:
        rep = saved_for_backward(lambda impl=impl: attention(q, k, v, impl=impl, causal=True))
        rows.append(
            {
                "implementation": impl,
                "saved (MiB)": rep.total_bytes / MIB,
                "tensors saved": rep.count,
                "largest tensor (elements)": rep.largest_numel,
                "largest / T²": rep.largest_numel / T**2,
                "holds a T×T tensor": rep.largest_numel >= T**2,
            }
        )
    return rows


lab = page(
    "FlashAttention",
    "⚡",
    "Attention weighs every key for every query: softmax(QKᵀ/√d)·V. Written naively it holds "
    "the whole **T×T** weight matrix, so memory grows with **T²**. lmcore's **tiled** "
    "implementation (FlashAttention) reads keys tile by tile with an **online softmax** and "
    "keeps only the output and one log-sum-exp per row, so memory grows with **T**; its "
    "backward recomputes each tile instead of storing it. torch's **sdpa** is a fused C++ "
    "kernel doing the same. All three give the same numbers.",
)
reg = registry()
tab_sweep, tab_softmax, tab_saved = st.tabs(
    ["Memory and time vs T", "Online softmax, step by step", "Saved for backward"]
)

# --- 1. sequence-length sweep --------------------------------------------------------------
with tab_sweep:
    st.markdown(
        "Runs each implementation at T = T_min, 2·T_min, … (B=1, H=4, d=64, causal, float32) "
        "and measures the **peak memory** of one forward and one forward+backward (VmHWM − "
        "VmRSS after resetting the high-water mark) and the **median time**. Before each run "
        "the peak is predicted from the runs so far (naive: a·T² + b·T; the others: linear); "
        "an implementation that would pass the limit is stopped, not run."
    )
    c1, c2, c3 = st.columns(3)
    impls = c1.multiselect("Implementations", list(IMPLS), default=list(IMPLS), key="fa.impls")
    t_min, t_max = c2.select_slider(
        "Sequence lengths T", options=POWERS, value=(256, 4096), key="fa.trange"
    )
    limit_mib = c3.number_input(
        "Memory limit (MiB)",
        min_value=1.0,
        max_value=65536.0,
        value=1024.0,
        step=64.0,
        key="fa.limit",
    )
    c4, c5, c6 = st.columns(3)
    fresh = c4.radio(
        "Measure in",
        ["a fresh process per cell (exact)", "this server process (faster)"],
        key="fa.fresh",
    ).startswith("a fresh")
    repeats = c5.number_input("Timing repeats", 1, 20, 3, key="fa.repeats")
    backward = c6.radio("Plot", ["forward+backward", "forward"], key="fa.which") != "forward"
    if st.button("Run the sweep", type="primary", key="fa.run"):
        with errors():
            if not impls:
                raise ValueError("choose at least one implementation to measure")
            Ts = [t for t in POWERS if t_min <= t <= t_max]
            limit = int(limit_mib * MIB)

            def _run(ctx):
                def on_event(ev):
                    if ev.kind == "cell":
                        c = ev.cell
                        ctx.log(
                            ev.impl,
                            T=ev.T,
                            fwd_ms=c.fwd_ms,
                            fwdbwd_ms=c.fwdbwd_ms,
                            fwd_mib=c.fwd_peak / MIB,
                            fwdbwd_mib=c.fwdbwd_peak / MIB,
                        )
                    else:
                        ctx.log(
                            STOPPED,
                            impl=ev.impl,
                            T=ev.T,
                            message=ev.message,
                            predicted_mib=(ev.predicted or 0) / MIB,
                        )
                    # cells skipped after a stop count as settled: the bar reaches 100%
                    ctx.progress(ev.progress, f"{ev.impl} at T={ev.T}")

                events = sweep(
                    Ts,
                    impls,
                    limit_bytes=limit,
                    fresh_process=fresh,
                    repeats=int(repeats),
                    stop=ctx.stop.is_set,
                    on_event=on_event,
                )
                return [e.message for e in events if e.kind == "stopped"]

            reg.submit("attention-sweep", _run)
    job = reg.latest("attention-sweep")
    if job is not None:
        live_chart(
            job,
            lambda snap: sweep_figure(snap, backward=backward, limit_mib=limit_mib),
            key="fa.sweep_chart",
        )
        snap = job.snapshot()
        for msg in snap.get(STOPPED, {}).get("message", []):
            st.warning(msg + ". The page stopped it so the server stays within your limit.")
        rows = [
            dict(impl=impl, **{k: cols[k][i] for k in cols})
            for impl, cols in snap.items()
            if impl != STOPPED
            for i in range(len(cols.get("T", [])))
        ]
        if rows:
            table = pd.DataFrame(rows).sort_values(["T", "impl"])
            st.dataframe(table, hide_index=True, width="stretch")
            st.download_button(
                "Download results (CSV)",
                table.to_csv(index=False),
                "attention_sweep.csv",
                "text/csv",
                key="fa.csv",
            )

# --- 2. online softmax ---------------------------------------------------------------------
with tab_softmax:
    st.markdown(
        "One query row's softmax over T keys, read **tile by tile**. Per row the kernel keeps "
        "the running max **m**, the running sum **l = Σ exp(x − m)** and the accumulator "
        "**acc = Σ exp(x − m)·v**. When a tile raises the max from m to m′, the old l and acc "
        "are multiplied by **α = exp(m − m′)**. After the last tile, acc / l is exactly "
        "softmax(x)·V. Here V is the identity, so acc shows the unnormalised weights."
    )
    c1, c2, c3, c4 = st.columns(4)
    n_rows = c1.number_input("Rows (queries)", 1, 8, 3, key="fa.rows")
    T_small = c2.number_input("Keys T", 1, 48, 12, key="fa.T")
    block = c3.number_input("Tile size", 1, 48, 4, key="fa.block")
    seed = c4.number_input("Seed", 0, 10_000, 0, key="fa.seed")
    c5, c6, c7 = st.columns(3)
    spread = c5.slider("Logit spread (std)", 0.1, 10.0, 3.0, key="fa.spread")
    offset = c6.slider("Logit offset", -20.0, 20.0, 0.0, key="fa.offset")
    half = c7.radio("dtype", ["float32", "float16"], key="fa.dtype") == "float16"
    with errors():
        g = torch.Generator().manual_seed(int(seed))
        logits = torch.randn(int(n_rows), int(T_small), generator=g) * spread + offset
        logits = logits.half() if half else logits
        trace = online_softmax_trace(logits, block=int(block))
        n_steps = len(trace.steps)
        step = 0
        if n_steps > 1:
            step = st.slider("Tile being processed", 1, n_steps, 1, key="fa.step") - 1
        s = trace.steps[step]
        st.plotly_chart(tile_figure(trace, step), key="fa.tile")
        state = pd.DataFrame(
            {
                "row": range(len(s.m)),
                "tile max": s.tile_max.double().tolist(),
                "m before": s.m_old.double().tolist(),
                "m after": s.m.double().tolist(),
                "α = exp(m before − m after)": s.alpha.double().tolist(),
                "l after": s.l.double().tolist(),
            }
        )
        st.markdown(f"**Running state after tile {step + 1}**")
        st.dataframe(state, hide_index=True, width="stretch")
        st.markdown("**Accumulator after this tile** (rescaled by α, then + exp(x − m)·v)")
        st.dataframe(pd.DataFrame(s.acc.double().numpy()).round(4), width="stretch")
        st.plotly_chart(running_max_figure(trace), key="fa.running")
        err = trace.max_error
        final = pd.DataFrame(trace.output.double().numpy()).round(5)
        st.markdown("**Final output acc / l** (equals the plain softmax row by row)")
        st.dataframe(final, width="stretch")
        if err < (1e-2 if half else 1e-5):
            st.success(f"Online softmax equals the plain softmax: max |difference| = {err:.2e}.")
        else:
            st.warning(f"Online and plain softmax differ by up to {err:.2e}.")

    st.markdown(
        "**Why subtract the max?** In float16 exp overflows above ≈ 11.09 (65504 is the "
        "largest float16). The textbook exp(x)/Σexp(x) then divides inf by inf and returns "
        "NaN; exp(x − max x) never exceeds 1."
    )
    text = st.text_input("Logits (float16)", "12, 11, 10, 2", key="fa.logits")
    with errors():
        demo = overflow_demo(parse_logits(text))
        st.dataframe(pd.DataFrame(demo), hide_index=True, width="stretch")
        naive_bad = any(v != v or v in (float("inf"), float("-inf")) for v in demo["naive softmax"])
        stable_ok = all(v == v for v in demo["stable softmax"])
        if naive_bad and stable_ok:
            st.warning(
                "The naive softmax overflowed (inf/NaN); the stable one is finite and "
                "matches float64.",
                icon="💥",
            )
        else:
            st.info("No overflow for these logits; try a logit above 11.1.")

# --- 3. saved for backward -----------------------------------------------------------------
with tab_saved:
    st.markdown(
        "What autograd keeps between forward and backward, counted with "
        "`torch.autograd.graph.saved_tensors_hooks` (distinct storages). Naive keeps T×T "
        "weights; tiled keeps q, k, v, the output O and one log-sum-exp per row: O(T·d)."
    )
    T_saved = st.select_slider("T", options=[256, 512, 1024, 2048], value=1024, key="fa.Tsaved")
    with errors():
        rows = saved_rows(int(T_saved))
        table = pd.DataFrame(rows)
        st.dataframe(table, hide_index=True, width="stretch")
        naive_mib = table.loc[table.implementation == "naive", "saved (MiB)"].item()
        tiled_mib = table.loc[table.implementation == "tiled", "saved (MiB)"].item()
        st.caption(
            f"At T={T_saved}: naive keeps {naive_mib:,.1f} MiB, tiled {tiled_mib:,.2f} "
            f"MiB ({naive_mib / max(tiled_mib, 1e-9):,.0f}× less); double T and naive's "
            "grows 4×, tiled's 2×."
        )
