"""Scaling & emergence: scaling laws on the corpus, emergence, induction heads, few-shot, CoT."""

import functools
import math

import pandas as pd
import streamlit as st

from lmcore.app.frame import errors, page
from lmcore.app.job_view import live_chart, registry
from lmcore.app.scaling_charts import (
    cot_figure,
    emergence_sizes,
    head_map,
    head_scores,
    induction_live,
    law_figure,
    metric_curves,
    shots_figure,
    sweep_live,
)
from lmcore.app.scaling_job import run_cot, run_emergence, run_fewshot, run_induction, run_scaling
from lmcore.app.tables import readable
from lmcore.scaling.chain_of_thought import CoTConfig, read_lengths
from lmcore.scaling.emergence import read_sizes
from lmcore.scaling.fewshot import FewShotConfig, read_shots
from lmcore.scaling.fit import HOFFMANN, HOFFMANN_FORM, KAPLAN, KAPLAN_FORM
from lmcore.scaling.induction import InductionConfig
from lmcore.scaling.laws import POINT_COLUMNS
from lmcore.scaling.sweep import ISOFLOP_SIZES, LARGER_SIZES, SIZES, Shape
from lmcore.scaling.tables import csv_text
from lmcore.settings import get_settings

K = "sc."
lab = page(
    "Scaling & emergence", "📈",
    "What large models do, in miniature and measured here: loss falls smoothly as models and "
    "data grow (**scaling laws**), some abilities seem to appear suddenly (**emergence**), and "
    "models learn from the examples in their prompt (**in-context learning**) and do better "
    "when they write out intermediate steps (**chain of thought**). Every curve comes from "
    "tiny Transformers trained in the background on this server, seeded and recorded in the "
    "run store. Defaults take a few minutes; **Larger** settings are one click away.",
)
reg = registry()


def _submit(name: str, fn) -> None:
    reg.submit(name, fn)
    st.rerun()


def _preset(key: str) -> bool:
    """A 'Default / Larger' switch; True for Larger."""
    return st.radio("Settings", ["Default", "Larger"], horizontal=True, key=K + key) == "Larger"


def _steps(col, label: str, default: int, key: str) -> int:
    """A steps input within this server's limit (LMCORE_MAX_STEPS); says so when the limit
    cuts the default, since a cut run may end before the change the tab is about."""
    limit = get_settings().max_steps
    value = col.number_input(label, 10, max(10, limit), min(default, limit), step=100, key=key)
    if default > limit:
        col.caption(f"{default:,} by default; this server allows {limit:,} "
                    "(LMCORE_MAX_STEPS), and a shorter run may end before the change this tab "
                    "shows. `make run` or the CLI runs the default.")
    return int(value)


def _finished(job) -> bool:
    return job is not None and job.done and job.result is not None


tabs = st.tabs(["Scaling laws", "Emergence", "Induction heads", "Few-shot", "Chain of thought"])

# --- scaling laws --------------------------------------------------------------------------
with tabs[0]:
    st.markdown(
        f"Kaplan et al. (2020) found test loss a power law in non-embedding parameters N, "
        "data D and compute C: $L(N) = (N_c / N)^{\\alpha_N}$ with "
        f"$\\alpha_N \\approx {KAPLAN['alpha_N']}$, $\\alpha_D \\approx {KAPLAN['alpha_D']}$. "
        f"Hoffmann et al. (2022, Chinchilla) add an irreducible loss E: "
        f"$L(N, D) = E + A/N^{{\\alpha}} + B/D^{{\\beta}}$ with $\\alpha \\approx "
        f"{HOFFMANN['alpha']}$, $\\beta \\approx {HOFFMANN['beta']}$, and find the "
        f"compute-optimal size growing as $C^{{{HOFFMANN['N_opt_exponent']}}}$ (Kaplan: "
        f"$C^{{{KAPLAN['N_opt_exponent']}}}$). Here both forms are fitted to runs on **"
        f"{lab.corpus.name}** (char tokens, held-out bits per character) by least squares on "
        "log L, with bootstrap intervals on the exponent.")
    kind = st.radio("Sweep", ["size", "budget", "isoflop"], horizontal=True, key=K + "kind",
                    format_func={"size": "Model size at fixed tokens",
                                 "budget": "Tokens at fixed size",
                                 "isoflop": "IsoFLOP (fixed compute)"}.get)
    larger = _preset("sz_preset")
    c = st.columns(3)
    ladder = LARGER_SIZES if larger else (ISOFLOP_SIZES if kind == "isoflop" else SIZES)
    shapes_default = ",".join(s.label for s in ladder)
    steps_default = {"size": "600" if larger else "300",
                     "budget": "25,50,100,200,400,800,1600" if larger else "25,50,100,200,400",
                     "isoflop": ""}[kind]
    if kind == "budget":
        shapes_text = c[0].text_input("Model (LxD)", "3x64" if larger else "2x48",
                                      key=K + f"shape_{larger}")
        steps_text = c[1].text_input("Budgets (steps, one run each)", steps_default,
                                     key=K + f"bsteps_{larger}")
    else:
        shapes_text = c[0].text_input("Model shapes (LxD, comma-separated)", shapes_default,
                                      key=K + f"shapes_{kind}_{larger}")
        if kind == "size":
            steps_text = c[1].text_input("Steps per model", steps_default,
                                         key=K + f"ssteps_{larger}")
        else:
            steps_text = ""
            budgets_text = c[1].text_input(
                "Budgets (FLOPs, comma-separated)", "" if not larger else "3e11,1e12,3e12",
                key=K + f"budgets_{larger}", help="empty: two budgets, at which the largest "
                "shape trains 125 and 400 steps (3e11 and 1e12 FLOPs on the built-in corpus: "
                "about 3 minutes)")
    seed = c[2].number_input("Seed", 0, 2**31 - 1, 0, key=K + "sz_seed")
    job = reg.latest("scaling")
    busy = job is not None and job.active
    if st.button("Run sweep", type="primary", disabled=busy, key=K + "sz_run"):
        with errors():
            shapes = [Shape.parse(s.strip()).label + f"x{Shape.parse(s.strip()).n_head}"
                      for s in shapes_text.split(",") if s.strip()]
            if not shapes:
                raise ValueError("give at least one model shape, e.g. 2x48")
            steps = [int(s) for s in steps_text.split(",") if s.strip()] if steps_text else []
            if kind != "isoflop" and (not steps or min(steps) < 1):
                raise ValueError("give the steps as positive whole numbers, e.g. 300")
            budgets = None
            if kind == "isoflop" and budgets_text.strip():
                budgets = [float(b) for b in budgets_text.split(",") if b.strip()]
                if min(budgets) <= 0:
                    raise ValueError("budgets must be positive numbers of FLOPs, e.g. 1e11")
            _submit("scaling", functools.partial(
                run_scaling, kind=kind, corpus=lab.corpus, shapes=shapes, steps=steps,
                budgets=budgets, config={"seed": int(seed)}, session=lab.session_id))
    if job is not None:
        live_chart(job, sweep_live, key=K + "sz_live")
    if _finished(job):
        out = job.result
        pts = out["points"]
        st.caption(f"{out['kind']} sweep · {len(pts)} runs · {out['tokenizer']} · "
                   f"{out['seconds']:.0f} s · {out['status']}")
        g = st.columns(2)
        g[0].plotly_chart(law_figure(out), key=K + "sz_fig")
        g[1].plotly_chart(law_figure(out, against="flops"), key=K + "sz_flops")
        for f in out["fits"]:
            st.markdown(f"- **{f['form']}**: `{f['fit']}`. {f['verdict']}")
        if out["optima"]:
            st.dataframe(readable(pd.DataFrame(out["optima"])), hide_index=True)
        for f in out["frontier"]:
            st.markdown(f"Compute-optimal frontier from {f['budgets']} budgets: **{f['fit']}** "
                        f"(Kaplan et al. 2020: {f['kaplan']}; Hoffmann et al. 2022: "
                        f"{f['hoffmann']}). With so few, so small budgets this exponent is "
                        "rough.")
        for note in out["notes"]:
            st.caption(note)
        cols = (("budget",) if out["kind"] == "isoflop" else ()) + POINT_COLUMNS
        st.dataframe(readable(pd.DataFrame(pts)[list(cols)]), hide_index=True)
        st.download_button("Points (CSV)", csv_text(pts, cols), file_name="scaling.csv",
                           key=K + "sz_csv")
    with st.expander("How this is computed"):
        st.markdown(
            "Each point is one training run (AdamW, warmup then cosine, batch 32 × 64 "
            "characters) scored on the validation split in bits per character. N counts "
            "parameters outside the token and position tables (Kaplan's convention); compute "
            "is the trainer's count, $(6N' + 12 L T d)$ FLOPs per token × tokens trained, "
            "with N' including the tied output head. The fits minimise "
            "$\\sum_i (\\log L_i - \\log \\hat L(x_i))^2$: the Kaplan form with E = 0 in "
            "closed form, the Hoffmann form by Levenberg–Marquardt from a grid over α. The "
            "interval is the 5th–95th percentile of α over 200 resamples of the points. "
            "IsoFLOP: each budget C gives every shape round(C / FLOPs per step) steps; a "
            "parabola in log N through each budget's losses puts its vertex at the best size "
            "(Hoffmann et al.'s approach 2). Tiny models on a few hundred thousand characters "
            "are far from the published regime: expect different exponents, and read the "
            "interval before the estimate.")
        st.markdown(f"Published forms: Kaplan {KAPLAN_FORM}; Hoffmann {HOFFMANN_FORM} with "
                    f"E = {HOFFMANN['E']}, A = {HOFFMANN['A']}, B = {HOFFMANN['B']} (nats).")

# --- emergence -----------------------------------------------------------------------------
with tabs[1]:
    st.markdown(
        "Schaeffer et al. (2023): many 'emergent' abilities are a property of the **metric**. "
        "Here models of several sizes learn k-digit addition (`0123+4567=` → the k+1 answer "
        "digits, least significant first). From the same runs, on the same held-out problems: "
        "the loss per answer digit falls steadily and per-digit accuracy rises early and "
        "gradually, while **exact match** (every digit right) stays near zero until most "
        "digits are right, then shoots up. If each digit were right with probability p "
        "independently, exact match would be $p^{k+1}$ (dotted line): a gradual p gives a "
        "sharp $p^{k+1}$.")
    larger = _preset("em_preset")
    c = st.columns(5)
    digits = c[0].number_input("Digits k", 1, 8, 3, key=K + "em_digits")
    em_shapes = c[1].text_input(
        "Model shapes", "1x16,1x32,2x32,2x48,2x64" if not larger
        else "1x16,1x32,2x32,2x48,2x64,3x96", key=K + f"em_shapes_{larger}")
    em_steps = _steps(c[2], "Steps per model", 3000 if larger else 1000,
                      K + f"em_steps_{larger}")
    em_every = c[3].number_input("Evaluate every", 5, 5000, 50, key=K + "em_every")
    em_seed = c[4].number_input("Seed", 0, 2**31 - 1, 0, key=K + "em_seed",
                                help="initial weights, training order and held-out problems")
    job = reg.latest("emergence")
    if st.button("Train", type="primary", disabled=job is not None and job.active,
                 key=K + "em_run"):
        with errors():
            shapes = [s.strip() for s in em_shapes.split(",") if s.strip()]
            for s in shapes:
                Shape.parse(s)
            _submit("emergence", functools.partial(
                run_emergence, digits=int(digits), shapes=shapes, steps=int(em_steps),
                eval_every=int(em_every), seed=int(em_seed), session=lab.session_id))
    keys = [("bits_per_token", "loss (bits / answer digit)"),
            ("token_accuracy", "per-digit accuracy"), ("exact_match", "exact match")]
    if job is not None:
        live_chart(job, lambda snap: metric_curves(snap, keys, "Across training steps, "
                                                   "one line per model"), key=K + "em_live")
    if _finished(job):
        res = job.result
        steps = res.steps()
        at = res.most_spread()
        if len(steps) > 1:
            at = st.select_slider("Across sizes at step", steps, value=at,
                                  key=K + f"em_at_{job.id}",
                                  help="starts at the step where exact match differs most "
                                       "between sizes")
        rows = res.at_step(at)
        st.plotly_chart(emergence_sizes(rows, res.digits, at), key=K + "em_sizes")
        st.caption(read_sizes(rows, at))
        st.dataframe(readable(pd.DataFrame(rows)), hide_index=True)
        st.download_button("All evaluations (CSV)", csv_text(res.rows),
                           file_name="emergence.csv", key=K + "em_csv")

# --- induction heads -----------------------------------------------------------------------
with tabs[2]:
    st.markdown(
        "Olsson et al. (2022): in-context learning rides on **induction heads**, attention "
        "heads that find the previous occurrence of the current token and copy the token that "
        "followed it ([A][B] … [A] → [B]). A 2-layer model learns next-token prediction on "
        "sequences of distinct random tokens in which one segment of random length occurs "
        "twice, at random places. New tokens are unpredictable (chance: ln of the vocabulary); "
        "the second copy is predictable only by looking back for the current token and "
        "copying what came after it, and since the copies' distance varies, no fixed look-back "
        "does it. In Olsson et al.'s models the loss on repeated text drops suddenly when these "
        "heads form (the **phase change**). Here, at the defaults, the loss on the repeated "
        "segment sits at chance for a few hundred steps, then falls steeply within a few "
        "hundred more, while the loss on new tokens stays at chance; the step range reported "
        "below says how sudden it was (where it fell from 90% to 10% of its drop). Often the "
        "fall comes in two stages: first to about ln L (the model knows it is in a copy and "
        "guesses among the segment's tokens), later lower, as layer-1 heads learn to look at "
        "the token after the previous occurrence (their scores rise then). Which heads carry "
        "it varies with the seed: one head, or several sharing the look-up (their outputs "
        "add, so the sum over the layer's heads is reported too).\n\n"
        "Two choices make this reliable at this size, both measured here: PyTorch's random "
        "initial biases instead of GPT-2's zeros, and a constant learning rate. With zeros and "
        "a decaying rate, two of three seeds stayed on the plateau for all 4,000 steps.")
    larger = _preset("in_preset")
    base = InductionConfig()
    c = st.columns(4)
    in_steps = _steps(c[0], "Steps", 8000 if larger else base.steps, K + f"in_steps_{larger}")
    in_layers = c[1].number_input("Layers", 1, 6, base.n_layer, key=K + "in_layers")
    in_width = c[2].number_input("Width", 8, 256, base.n_embd, step=8, key=K + "in_width")
    in_heads = c[3].number_input("Heads", 1, 8, base.n_head, key=K + "in_heads")
    job = reg.latest("induction")
    if st.button("Train", type="primary", disabled=job is not None and job.active,
                 key=K + "in_run"):
        with errors():
            if int(in_width) % int(in_heads):
                raise ValueError(f"width {in_width} must be a multiple of {in_heads} heads")
            _submit("induction", functools.partial(
                run_induction, config={"steps": int(in_steps), "n_layer": int(in_layers),
                                       "n_embd": int(in_width), "n_head": int(in_heads)},
                session=lab.session_id))
    if job is not None:
        live_chart(job, induction_live, key=K + "in_live")
    if _finished(job):
        res = job.result
        scores = res.final_scores()
        g = st.columns([2, 3])
        g[0].plotly_chart(head_scores(scores, res.uniform_score), key=K + "in_scores")
        g[1].plotly_chart(head_map(res.attention, res.tokens, res.best_head, res.seg_len,
                                   res.first_at, res.again_at, res.map_score), key=K + "in_map")
        g[1].caption(f"The map shows the held-out sequence on which {res.best_head} scores "
                     f"highest ({res.map_score:.2f}); its average over all of them is "
                     f"{scores.get(res.best_head, 0):.2f}, so most sequences look less clean.")
        first, last = res.rows[0], res.rows[-1]
        st.markdown(f"Loss on the repeated segment: {first['repeat_loss']:.3f} → "
                    f"**{last['repeat_loss']:.3f}** nats/token; on new tokens "
                    f"{first['fresh_loss']:.3f} → {last['fresh_loss']:.3f} (chance: ln "
                    f"{res.vocab} = {math.log(res.vocab):.3f}). "
                    f"Best head **{res.best_head}**, induction score "
                    f"{scores.get(res.best_head, 0):.2f} (1 = all its attention on the tokens "
                    "that followed earlier occurrences; evenly spread attention scores "
                    f"{res.uniform_score:.2f}); summed over each layer's heads: "
                    + ", ".join(f"layer {k} {v:.2f}" for k, v in res.layer_scores().items())
                    + ". A head in layer 0 sees only tokens and "
                    "positions, not what came before a key, so it cannot find an earlier "
                    "occurrence by content: a true induction head sits in layer 1 or later, "
                    "fed by a previous-token head below it.")
        change = res.phase_change()
        if change is not None:
            st.markdown(f"Loss on the repeated segment: {change.describe()}.")
        st.download_button("Loss and scores per evaluation (CSV)",
                           csv_text([{k: v for k, v in r.items() if k != "scores"}
                                     | r["scores"] for r in res.rows]),
                           file_name="induction.csv", key=K + "in_csv")

# --- few-shot ------------------------------------------------------------------------------
with tabs[3]:
    st.markdown(
        "Each prompt brings its own random mapping from the letters a–h to digits: "
        "`a3,c7,b1,|c` → `7`. Mappings are never repeated and the test mappings are disjoint "
        "from the training ones, so the weights cannot hold the answer: the model must read "
        "it from the examples in the prompt. Training prompts are 'bursty' (Chan et al. "
        "2022): their example keys may repeat and every example's value is a target, so each "
        "repeat teaches the look-up; test prompts show k distinct keys. The query is written "
        "like an example whose value is missing, so the look-up the repeats teach (at a key, "
        "copy what followed its last occurrence: an induction head) is the one it needs. "
        "Accuracy is measured "
        "for each k, before and after training, next to a perfect in-context learner (the "
        "query's key was among the k shown with probability k/8, else it guesses one of ten "
        "digits).")
    larger = _preset("fs_preset")
    base = FewShotConfig()
    c = st.columns(3)
    fs_steps = _steps(c[0], "Steps", 6000 if larger else base.steps, K + f"fs_steps_{larger}")
    fs_width = c[1].number_input("Width", 8, 256, 96 if larger else base.n_embd, step=8,
                                 key=K + f"fs_width_{larger}")
    fs_layers = c[2].number_input("Layers", 1, 6, base.n_layer, key=K + "fs_layers")
    job = reg.latest("fewshot")
    if st.button("Train", type="primary", disabled=job is not None and job.active,
                 key=K + "fs_run"):
        with errors():
            _submit("fewshot", functools.partial(
                run_fewshot, config={"steps": int(fs_steps), "n_embd": int(fs_width),
                                     "n_layer": int(fs_layers)}, session=lab.session_id))
    if job is not None:
        live_chart(job, lambda snap: metric_curves(snap, [("accuracy", "accuracy")],
                                                   "Held-out accuracy against steps"),
                   key=K + "fs_live")
    if _finished(job):
        res = job.result
        curves = {"before training": res.curve(0), f"after {res.rows[-1]['step']} steps":
                  res.curve()}
        st.plotly_chart(shots_figure(curves), key=K + "fs_fig")
        last = res.curve()
        st.caption(read_shots(last))
        st.dataframe(readable(pd.DataFrame(last)), hide_index=True)
        st.download_button("Accuracy per step and shots (CSV)", csv_text(res.rows),
                           file_name="fewshot.csv", key=K + "fs_csv")

# --- chain of thought ----------------------------------------------------------------------
with tabs[4]:
    st.markdown(
        "The same addition problems learned two ways at equal budget (same model, seed, "
        "steps, batch and operands): **answer only** (`357+468=825.`), where the first digit "
        "written depends on every carry, and with a **scratchpad** (`357+468=512180>825.`: "
        "each digit and carry from the right, then the answer), where every character depends "
        "on a few already written. The operands are right-aligned in columns (`___357+___468=`"
        "), as on paper, so each digit and the step that uses it sit at the same place at "
        "every length. Exact match of the final answer by greedy generation on held-out "
        "problems of each length; most training problems are short, the longest lengths are "
        "rare or never seen.")
    larger = _preset("cot_preset")
    base = CoTConfig()
    c = st.columns(3)
    cot_steps = _steps(c[0], "Steps per variant", 4000 if larger else base.steps,
                       K + f"cot_steps_{larger}")
    cot_width = c[1].number_input("Width", 8, 256, 96 if larger else base.n_embd, step=8,
                                  key=K + f"cot_width_{larger}")
    cot_layers = c[2].number_input("Layers", 1, 6, 3 if larger else base.n_layer,
                                   key=K + f"cot_layers_{larger}")
    job = reg.latest("cot")
    if st.button("Train both", type="primary", disabled=job is not None and job.active,
                 key=K + "cot_run"):
        with errors():
            _submit("cot", functools.partial(
                run_cot, config={"steps": int(cot_steps), "n_embd": int(cot_width),
                                 "n_layer": int(cot_layers)}, session=lab.session_id))
    if job is not None:
        live_chart(job, lambda snap: metric_curves(
            snap, [("exact", "exact match (teacher-forced, mean over lengths)")],
            "Both variants against steps"), key=K + "cot_live")
    if _finished(job):
        res = job.result
        st.plotly_chart(cot_figure(res.rows), key=K + "cot_fig")
        st.caption(read_lengths(res.rows))
        st.dataframe(readable(pd.DataFrame(res.rows)), hide_index=True)
        st.caption("Training FLOPs: " + " · ".join(f"{v}: {f:.3g}" for v, f in
                                                      res.flops.items()))
        st.download_button("Exact match by length (CSV)", csv_text(res.rows),
                           file_name="chain_of_thought.csv", key=K + "cot_csv")
