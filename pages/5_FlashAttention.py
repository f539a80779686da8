"""FlashAttention: memory and time against T, the online softmax step by step, saved bytes."""

import functools

import numpy as np
import pandas as pd
import streamlit as st
import torch

from lmcore.app.attention_charts import running_max_figure, sweep_figure, tile_figure
from lmcore.app.attention_job import STOPPED, run_sweep
from lmcore.app.frame import errors, page
from lmcore.app.job_view import follow, registry
from lmcore.app.provenance import how_computed
from lmcore.app.shape_charts import (
    io_figure,
    mask_figure,
    saturation_figure,
    scores_weights_figure,
)
from lmcore.app.tables import readable
from lmcore.models.attention import IMPLS, attention
from lmcore.models.attention_io import GPUS, attention_io
from lmcore.models.attention_shapes import saturation, walk_through
from lmcore.models.online_softmax import online_softmax_trace, overflow_demo, parse_logits
from lmcore.train.attention_profile import make_inputs
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
tab_shapes, tab_sweep, tab_softmax, tab_saved, tab_io = st.tabs(
    ["Attention, shape by shape", "Memory and time vs T", "Online softmax, step by step",
     "Saved for backward", "Bytes moved: HBM vs SRAM"]
)

# --- 1. sequence-length sweep --------------------------------------------------------------
with tab_sweep:
    how_computed("lmcore.train.attention_profile:sweep", "lmcore.train.memory:peak_bytes",
                 "lmcore.models.attention:attention", cli="python bench/attention.py --quick")
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
        ["a fresh process per cell (exact)", "the job's own process (faster)"],
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

            reg.submit("attention-sweep", functools.partial(
                run_sweep, Ts=Ts, impls=list(impls), limit_bytes=limit, fresh_process=fresh,
                repeats=int(repeats)))
    job = reg.latest("attention-sweep")
    if job is not None:
        follow(job, "fa.sweep_chart",
               functools.partial(sweep_figure, backward=backward, limit_mib=limit_mib))
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
            st.dataframe(readable(table, digits=2), hide_index=True, width="stretch")
            st.download_button(
                "Download results (CSV)",
                table.to_csv(index=False),
                "attention_sweep.csv",
                "text/csv",
                key="fa.csv",
            )

# --- 2. online softmax ---------------------------------------------------------------------
with tab_softmax:
    how_computed("lmcore.models.online_softmax:online_softmax_trace",
                 "lmcore.models.online_softmax:overflow_demo")
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
    how_computed("lmcore.train.memory:saved_for_backward", "lmcore.models.attention:attention")
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

# --- 0. the shapes of attention ---------------------------------------------------------------
FRESH = "a fresh model (seed 0: width 64, 4 heads, untrained)"


def _walk_model():
    """(model, tokenizer) for the walk-through: a session Transformer, or a seeded fresh one
    over a char tokenizer of the corpus (kept per corpus in this session)."""
    from lmcore.models.transformer import Transformer, TransformerConfig, TransformerLM

    models = {n: m for n, m in lab.models.items()
              if isinstance(m, TransformerLM) and m.tokenizer is not None}
    choice = st.selectbox("Model", [FRESH, *models], key="fa.wmodel")
    if choice != FRESH:
        return models[choice].model, models[choice].tokenizer
    key = ("fa.walk", lab.corpus.fingerprint)
    if lab.results.get("fa.walk_key") != key:
        tok = lab.char_tokenizer()
        torch.manual_seed(0)
        net = Transformer(TransformerConfig(vocab_size=tok.vocab_size, context=128,
                                            n_layer=1, n_head=4, n_embd=64))
        lab.results["fa.walk"], lab.results["fa.walk_key"] = (net, tok), key
    return lab.results["fa.walk"]


with tab_shapes:
    how_computed("lmcore.models.attention_shapes:walk_through",
                 "lmcore.models.attention_shapes:saturation")
    st.markdown(
        "One attention layer on **your** sentences, every tensor of a real forward pass: "
        "X (B, T, D) → Q, K, V = X·W (B, T, D each) → split into H heads (B, H, T, D/H) → "
        "scores Q·Kᵀ/√(D/H) (B, H, T, T) → mask → weights = softmax over keys (B, H, T, T) "
        "→ weights·V (B, H, T, D/H) → heads side by side (B, T, D) → output projection. "
        "Sentences of unequal length are right-padded with [PAD] to one T."
    )
    with errors():
        net, wtok = _walk_model()
        c1, c2 = st.columns([2, 1])
        text = c1.text_area("Sentences, one per line (a batch of B)",
                            "The cat sat on the mat.\nA dog barked.\nHello!",
                            height=110, key="fa.wtext")
        kind = c2.radio("Attention", ["bidirectional (encoder)", "causal (decoder)"],
                        key="fa.wkind")
        scaled = c2.checkbox("Divide scores by √d", True, key="fa.wscale")
        padmask = c2.checkbox("Padding mask", True, key="fa.wpad")
        w = walk_through(net, wtok, text.splitlines(), scaled=scaled, padding_mask=padmask,
                         causal=kind.startswith("causal"))
        rows = []
        for s in w.steps:
            v = s.value.reshape(-1, s.value.shape[-1])[0][:6]
            rows.append({"step": s.name, "computes": s.formula,
                         "shape": "(" + ", ".join(map(str, s.shape)) + ")",
                         "numbers": int(np.prod(s.shape)),
                         "first row, first values": ", ".join(f"{x:.3f}" for x in v)})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        B, H = len(w.lengths), w.step("weights").shape[1]
        c1, c2 = st.columns(2)
        b = c1.selectbox("Sentence", range(B), format_func=lambda i: f"{i + 1} "
                         f"({w.lengths[i]} tokens)", index=min(1, B - 1), key="fa.wb")
        h = c2.selectbox("Head", range(H), format_func=lambda i: f"{i + 1}", key="fa.wh")
        st.plotly_chart(scores_weights_figure(w, int(b), int(h)), key="fa.wsw")
        T = w.mask.shape[-1]
        wts = w.step("weights").value[int(b), :, : w.lengths[int(b)]]
        m = st.columns(4)
        m[0].metric("Largest weight per row (mean)", f"{wts.max(-1).mean():.3f}")
        m[1].metric("Entropy per row (mean, bits)",
                    f"{(-(wts * np.log2(np.clip(wts, 1e-300, 1))).sum(-1)).mean():.2f}")
        m[2].metric("Entries removed (real rows)",
                    f"{w.causal_removed:,} causal + {w.padding_removed:,} padding")
        m[3].metric("Max change vs each sentence alone", f"{w.alone_error:.1e}")
        st.plotly_chart(mask_figure(w, int(b)), key="fa.wmask")
        st.caption(
            f"T = {T} after padding. The last metric runs each sentence alone, unpadded, "
            "through the same layer and compares its real positions with the padded batch's: "
            + ("about 1e-16 (rounding) with the padding mask on: padded positions change "
               "nothing. " if padmask and w.alone_error < 1e-9 else
               "a real difference: without the padding mask the real tokens attend to [PAD] "
               "keys. " if w.alone_error >= 1e-9 else
               "rounding only, even without the padding mask: with right padding the causal "
               "mask already hides the pads (they come later); the padding mask matters for "
               "bidirectional attention, or for left padding. ")
            + (f"The hand computation equals the layer's own forward to "
               f"{w.module_error:.0e}." if scaled else
               "Unscaled, the scores are √d times larger than the model was built for.")
        )
        st.markdown("**Why √d.** A dot product of two d-dimensional vectors with unit-variance "
                    "entries has standard deviation √d; without the scale, wider heads give "
                    "larger scores and softmax turns into a hard max (one-hot weights, tiny "
                    "gradients). Measured on random vectors:")
        sat = saturation([4, 16, 64, 256, 1024])
        st.plotly_chart(saturation_figure(sat), key="fa.wsat")
        st.caption(f"At d = 64 the largest weight averages {sat[2].max_weight['unscaled']:.2f}"
                   f" unscaled and {sat[2].max_weight['scaled']:.2f} scaled (uniform over 64 "
                   f"keys would be {1 / 64:.3f}).")

# --- 4. bytes moved -----------------------------------------------------------------------------
with tab_io:
    how_computed("lmcore.models.attention_io:attention_io",
                 "lmcore.models.attention_io:visible_tiles")
    st.markdown(
        "On a GPU the tensors live in **HBM** (off-chip, ~2-3 TB/s) and arithmetic runs from "
        "**SRAM** (on-chip shared memory, ~200 KB per streaming multiprocessor, an order of "
        "magnitude faster). Attention does little arithmetic per byte, so its speed follows "
        "the bytes it moves through HBM. Naive attention writes the T×T scores to HBM, reads "
        "them back for softmax, writes the weights and reads them again: 4T² + 4Td elements per "
        "head. The tiled kernel keeps each Bq×Bk tile in SRAM and streams K and V past each "
        "query tile: 2Td + T + 2d·(keys in visible tiles). Counted below for your T and tile "
        "(a model of a GPU, not a measurement on this CPU)."
    )
    c = st.columns(5)
    T_io = int(c[0].number_input("T", 16, 1 << 20, 4096, step=256, key="fa.ioT"))
    d_io = int(c[1].selectbox("Head width d", [32, 64, 128], index=1, key="fa.iod"))
    bq = int(c[2].selectbox("Query tile Bq", [16, 32, 64, 128, 256], index=3, key="fa.iobq"))
    bk = int(c[3].selectbox("Key tile Bk", [16, 32, 64, 128, 256], index=3, key="fa.iobk"))
    bpe = 2 if c[4].radio("dtype", ["fp16/bf16", "fp32"], key="fa.iodt") == "fp16/bf16" else 4
    c = st.columns(3)
    causal_io = c[0].checkbox("Causal (skip tiles above the diagonal)", True, key="fa.iocausal")
    gpu = c[1].selectbox("GPU", list(GPUS), index=1, key="fa.iogpu")
    bh = int(c[2].number_input("Batch × heads", 1, 4096, 32, key="fa.iobh"))
    with errors():
        io = attention_io(T_io, d_io, bq, bk, causal_io, bpe)
        bw, sram = GPUS[gpu]
        t_naive, t_tiled = io.seconds(bw, bh)
        m = st.columns(4)
        m[0].metric("Naive HBM traffic", f"{bh * io.naive_bytes / 2**20:,.1f} MiB")
        m[1].metric("Tiled HBM traffic", f"{bh * io.tiled_bytes / 2**20:,.1f} MiB")
        m[2].metric("Naive / tiled", f"{io.ratio:,.1f}×")
        m[3].metric("SRAM one tile step needs", f"{io.sram_bytes / 1024:,.1f} KiB",
                    "fits" if io.sram_bytes <= sram else "does not fit",
                    delta_color="normal" if io.sram_bytes <= sram else "inverse")
        st.caption(
            f"At {gpu.split(' (')[0]}'s HBM bandwidth the traffic alone takes "
            f"{t_naive * 1e3:,.3f} ms naive and {t_tiled * 1e3:,.3f} ms tiled for "
            f"{bh} (batch, head) pairs; {io.visible_tiles:,} of {io.total_tiles:,} tiles "
            "are visible. Both traffics grow as T² for long texts, naive's as 4T² and tiled's "
            f"as {'T²' if causal_io else '2T²'}·d/Bq (K and V streamed past every query "
            f"tile), so the ratio climbs towards {(4 if causal_io else 2) * bq / d_io:g} "
            f"(= {4 if causal_io else 2}·Bq/d) as T grows: a taller query tile, as long as "
            "it fits in SRAM, is what cuts the traffic further.")
        Ts = [2**i for i in range(8, 17)]
        st.plotly_chart(io_figure(Ts, d_io, bq, bk, causal_io, bpe, marked=T_io),
                        key="fa.iofig")
        job = reg.latest("attention-sweep")
        snap = job.snapshot() if job is not None else {}
        if "naive" in snap and "tiled" in snap:
            nt = dict(zip(snap["naive"]["T"], snap["naive"]["fwd_ms"], strict=False))
            tt = dict(zip(snap["tiled"]["T"], snap["tiled"]["fwd_ms"], strict=False))
            nm = dict(zip(snap["naive"]["T"], snap["naive"]["fwd_mib"], strict=False))
            tm = dict(zip(snap["tiled"]["T"], snap["tiled"]["fwd_mib"], strict=False))
            rows = [{"T": t, "CPU forward ms naive / tiled (measured)": nt[t] / tt[t],
                     "CPU peak MiB naive / tiled (measured)": nm[t] / max(tm[t], 1e-9),
                     "HBM bytes naive / tiled (model, 64, 256×256 tiles, fp32)":
                         attention_io(int(t), 64, 256, 256, True, 4).ratio}
                    for t in sorted(set(nt) & set(tt))]
            st.markdown("**Beside the CPU measurements of the Memory and time tab** (B=1, H=4, d=64, "
                        "causal, float32):")
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
            st.caption("A CPU has caches, not HBM and SRAM under program control, so its "
                       "times follow the count only loosely; its peak memory shows the T×T "
                       "tensors the naive pass materialises.")
        else:
            st.info("Run the sweep in **Memory and time vs T** to set the CPU measurements "
                    "beside this count.", icon="⏱️")
