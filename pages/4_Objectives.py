"""Objectives: one backbone trained as a causal, a prefix and a masked LM on one budget, and an
encoder-decoder built from the same pieces."""

import functools

import pandas as pd
import streamlit as st

from lmcore.app.frame import errors, page, refresh_sidebar
from lmcore.app.job_view import follow, follow_all, registry
from lmcore.app.objective_charts import (
    effective_rank_chart,
    fair_table,
    kv_cache_figure,
    loss_curves,
    mask_heatmaps,
)
from lmcore.app.objective_job import generation_job, objective_job, run_encdec_generation
from lmcore.app.provenance import how_computed
from lmcore.app.tables import readable
from lmcore.models.generate import generate_tokens, tokens_within_context
from lmcore.models.transformer import TransformerConfig, TransformerLM
from lmcore.settings import get_settings
from lmcore.train.data import TokenData
from lmcore.train.fair_metrics import PLL_NOTE
from lmcore.train.fill_blanks import fill_blanks, fill_blanks_encdec, make_blanks
from lmcore.train.one_budget import ENCDEC, MODEL_MASKS, build_models
from lmcore.train.trainer import TrainConfig

K = "obj."  # widget key prefix
NAMES = ("causal", "prefix", "masked", ENCDEC)

lab = page(
    "Objectives", "🎭",
    "The same Transformer becomes a **decoder** (causal LM), a **prefix LM** or a **BERT-style "
    "encoder** (masked LM) by changing only the attention mask and which positions carry loss "
    "(UniLM). Causal: $-\\sum_t \\log p(x_t\\mid x_{<t})$. Prefix: the same sum over the suffix "
    "$t \\ge P$ only, with the first $P$ tokens attending to each other in both directions. "
    "Masked: $-\\sum_{i\\in M}\\log p(x_i\\mid \\tilde x)$ over the 15% of positions $M$ that were "
    "hidden (80% [MASK], 10% a random token, 10% unchanged). The **encoder-decoder** (T5, "
    "BART) splits the layers in two stacks from the same pieces: an encoder reads a corrupted "
    "text bidirectionally, a decoder rewrites it left to right and attends to the encoder "
    "(cross-attention): spans replaced by [MASK] (BART's text infilling), or the text's tail "
    "(so it also learns to continue).",
)
reg = registry()
res = lab.results.setdefault("objectives", {})

# --- the three masks ------------------------------------------------------------------------
st.subheader("1 · Three masks over one backbone")
how_computed("lmcore.models.masks:build_mask", "lmcore.models.masks:mask_for")
mc = st.columns([1, 3])
T_show = mc[0].slider("Positions shown", 4, 24, 12, key=K + "mask_T")
P_show = mc[0].slider("Prefix length P", 0, T_show, T_show // 2, key=K + "mask_P")
mc[0].caption("A prefix row may see the whole prefix, and after it only the past; the suffix "
              "is never visible inside the prefix, so no target leaks into its own context.")
mc[1].plotly_chart(mask_heatmaps(T_show, P_show), key=K + "masks")

# --- budget ---------------------------------------------------------------------------------
st.subheader("2 · Train all three with one budget")
how_computed("lmcore.app.objective_job:objective_job", "lmcore.train.one_budget:build_models",
             "lmcore.train.one_budget:train_and_score", "lmcore.train.objectives:CausalLM",
             cli="lmcore objectives --corpus FILE --steps 150")
st.caption("Same architecture, same initial weights (same seed), same steps and batch: every "
           "model sees batch × context tokens per step. Runs as background jobs.")
c = st.columns(5)
steps = c[0].number_input("Steps", 1, get_settings().max_steps, 150, key=K + "steps")
batch = c[1].number_input("Batch", 1, 256, 16, key=K + "batch")
context = c[2].number_input("Context (tokens)", 8, 1024, 64, key=K + "context")
lr = c[3].number_input("Learning rate", 1e-5, 1.0, 3e-3, format="%.4f", key=K + "lr")
seed = c[4].number_input("Seed", 0, 2**31 - 1, 0, key=K + "seed")
c = st.columns(5)
n_layer = c[0].number_input("Layers", 1, 12, 2, key=K + "n_layer")
n_head = c[1].number_input("Heads", 1, 16, 2, key=K + "n_head")
n_embd = c[2].number_input("Width", 4, 512, 64, step=16, key=K + "n_embd")
rate = c[3].number_input("Masking rate", 0.01, 1.0, 0.15, key=K + "rate")
eval_tokens = c[4].number_input("Held-out tokens scored", 32, 20_000, 1024, step=256,
                                key=K + "eval_tokens")
nsp = st.checkbox("Masked model: add BERT's next-sentence prediction head ([CLS] A [SEP] B)",
                  key=K + "nsp")
use_encdec = st.checkbox(
    "Also train an encoder-decoder on the same budget (⌈L/2⌉ encoder + ⌊L/2⌋ decoder layers, "
    "at least one each; the same steps, batch and windows; its noise rate is the masking rate)",
    True, key=K + "encdec")

config_ok = False
with errors():
    configs = {name: TransformerConfig(vocab_size=8, context=int(context), n_layer=int(n_layer),
                                       n_head=int(n_head), n_embd=int(n_embd),
                                       mask=MODEL_MASKS[name], nsp_head=nsp and name == "masked")
               for name in MODEL_MASKS}
    config_ok = True


def _tokenizer():
    """The session's tokenizer, or a character tokenizer of the corpus (kept per corpus)."""
    return lab.tokenizer if lab.tokenizer is not None else lab.char_tokenizer()


def _start() -> None:
    tok = _tokenizer()
    data = TokenData.from_corpus(lab.corpus, tok)
    data.check(int(context) + 1)
    tcfg = TrainConfig(steps=int(steps), batch_size=int(batch), context=int(context),
                       lr=float(lr), seed=int(seed), eval_every=max(int(steps) // 5, 1),
                       eval_tokens=int(eval_tokens), memory_every=0)
    base = TransformerConfig(**{**configs["causal"].to_dict(), "vocab_size": tok.vocab_size})
    models = build_models(base, seed=int(seed), nsp=nsp, encdec=use_encdec)
    for model in models.values():
        get_settings().check("max_params", model.num_parameters())
    res["jobs"] = {name: reg.submit(f"objective: {name}", objective_job(
        name, model, data, tcfg, tok, lab.corpus, rate=float(rate), nsp=nsp,
        session=lab.session_id)).id for name, model in models.items()}
    res["context"] = int(context)
    res["budget"] = (int(steps), float(rate))  # what the warning below quotes
    st.session_state[K + "n"] = tokens_within_context(int(context), 1)  # fill the new context
    for key in ("gen_job", "encdec_gen_job", "fill"):
        res.pop(key, None)


if st.button("Train the three", type="primary", key=K + "train", disabled=not config_ok):
    with errors():
        _start()

jobs = {n: reg.get(j) for n, j in res.get("jobs", {}).items()}
jobs = {n: j for n, j in jobs.items() if j is not None}


if jobs:
    follow_all(jobs, K + "loss", loss_curves)
done = {n: j.result for n, j in jobs.items() if j.status == "done" and j.result}

# --- fair metrics ---------------------------------------------------------------------------
if done:
    st.subheader("3 · Fair held-out numbers")
    how_computed("lmcore.train.fair_metrics:fair_metrics", "lmcore.train.fair_metrics:score_models")
    for name in ("causal", "prefix"):
        if name in done:
            lab.models[f"{name} LM (objectives)"] = TransformerLM(done[name].run.model,
                                                                  done[name].tokenizer)
    refresh_sidebar(lab)
    table = fair_table([m for name in NAMES if name in done for m in done[name].run.metrics])
    st.dataframe(readable(table), hide_index=True, width="stretch")  # '–': does not apply
    st.download_button("Download table (CSV)", table.to_csv(index=False), "objectives.csv",
                       "text/csv", key=K + "csv")
    full = table[(table["model"] == "causal") & (table["scored"] == "full sequence")]
    pll = table[table["scored"].str.contains("pseudo", regex=False)]
    if len(full) and len(pll):
        c_bpc, p_bpc = float(full["bits/char"].iloc[0]), float(pll["pseudo bits/char"].iloc[0])
        if p_bpc < c_bpc:
            st.caption(f"As usual, the masked model's pseudo bits/char ({p_bpc:.3f}) is below "
                       f"the causal model's bits/char ({c_bpc:.3f}): each of its tokens is "
                       "predicted from both sides.")
        else:
            run_steps, run_rate = res.get("budget", (int(steps), float(rate)))
            st.warning(
                f"**This run differs from the usual case.** The masked model's pseudo "
                f"bits/char ({p_bpc:.3f}) is *above* the causal model's bits/char "
                f"({c_bpc:.3f}), though it sees both sides of every token. The budget is why: "
                f"per step the causal model learns from every position, the masked model only "
                f"from the {run_rate:.0%} it hid, so after {run_steps:,} steps it has had "
                f"about {1 / run_rate:.0f}× fewer targets and has not yet learned to use "
                "the right-hand context. Pseudo-perplexity is usually far lower once the "
                "masked model is trained well (a larger budget: more steps).", icon="⚖️")
    st.markdown(
        "- **suffix (same positions)**: causal and prefix models predict the *same* held-out "
        "tokens from the *same* preceding tokens (prefix lengths drawn with the seed); only "
        "how the prefix is read differs, so these two rows compare directly.\n"
        "- **full sequence**: the causal model on every token, the usual perplexity.\n"
        f"- **[pseudo]**: {PLL_NOTE} Its numbers have their own columns.\n"
        "- **masked tokens**: cross-entropy and accuracy on the BERT-corrupted positions only "
        "(a random subset of tokens, not a text), so it has no bits/char and its own "
        "perplexity column. **next-sentence prediction** (with the NSP head): accuracy on "
        "held-out [CLS] A [SEP] B [SEP] pairs, half of them true continuations.\n"
        "- **encdec**: the encoder-decoder on the *same* suffix positions (its encoder reads "
        "the prefix and one [MASK], its decoder the tokens before each target) and full "
        "sequences (encoder input a lone [MASK]): true left-to-right likelihoods, directly "
        "comparable with the causal and prefix rows. **infilled spans**: its training task, "
        "loss and accuracy on the tokens of seeded masked spans.\n"
        "- Averages are token-weighted (total bits / total tokens); bits/char divides the "
        "same total bits by the characters of exactly the scored tokens.")

    st.subheader("4 · Effective rank of attention")
    how_computed("lmcore.train.effective_rank:attention_effective_ranks",
                 "lmcore.train.effective_rank:effective_rank")
    T_ctx = res.get("context", int(context))
    ranks = {f"{n}" + {"prefix": " (P = T/2)", ENCDEC: " (encoder)"}.get(n, ""): done[n].run.ranks
             for n in NAMES if n in done and done[n].run.ranks is not None}
    st.plotly_chart(effective_rank_chart(ranks, T_ctx), key=K + "rank")
    st.caption("exp(entropy of the normalised singular values) of each head's T×T attention "
               "matrix on held-out windows. A causal matrix is triangular with a positive "
               "diagonal; the claim that bidirectional attention collapses to low rank more "
               "easily is measured here on your text, not assumed.")

    # --- fill in the blank ------------------------------------------------------------------
    st.subheader("5 · Fill in the blanks")
    how_computed("lmcore.train.fill_blanks:fill_blanks", "lmcore.train.fill_blanks:make_blanks")
    tok = next(iter(done.values())).tokenizer
    lines = [ln.strip() for ln in lab.corpus.split().valid.splitlines()]
    snippet = next((ln for ln in lines if len(ln) >= 30 and "_" not in ln), "the cat sat")[:60]
    text = st.text_input("A sentence with blanks `_` (one token each)",
                         make_blanks(snippet, n=3, seed=int(seed)), key=K + "blank_text")
    st.caption("Masked model: all blanks at once, using both sides. Prefix model: left to right,"
               " the text before each blank read bidirectionally. Causal model: left to right "
               "from the left context only, and it can simply continue the text. "
               "Encoder-decoder: its encoder reads the sentence with a [MASK] per blank (both "
               "sides), its decoder rewrites it left to right, choosing at each blank. A blank "
               "is filled only with tokens seen in training that decode to printable text.")
    if st.button("Fill", key=K + "fill"):
        with errors():
            out = []
            for name in NAMES:
                if name == ENCDEC and name in done:
                    filled, probs = fill_blanks_encdec(done[name].run.model, tok, text,
                                                       allowed=done[name].fillable)
                elif name in done:
                    filled, probs = fill_blanks(done[name].run.model, tok, text, name,
                                                allowed=done[name].fillable)
                if name in done:
                    out.append({"model": name, "filled": filled, "blanks": " · ".join(
                        f"{t} ({p:.0%})" for t, p in probs)})
            if "causal" in done:
                left = text.split("_")[0]
                g = generate_tokens(done["causal"].run.model,
                                    [[tok.bos_id] + tok.encode(left)], 40,
                                    temperature=0.8, top_k=20, seed=int(seed))
                out.append({"model": "causal (continues)",
                            "filled": left + tok.decode(g.new[0].tolist()), "blanks": ""})
            res["fill"] = pd.DataFrame(out)
    if "fill" in res:
        st.dataframe(res["fill"], hide_index=True, width="stretch")

    # --- generation -------------------------------------------------------------------------
    if "causal" in done:
        st.subheader("6 · Why the decoder generates naturally")
        how_computed("lmcore.app.objective_job:generation_job",
                     "lmcore.models.generate:time_kv_cache", "lmcore.models.transformer:KVCache")
        st.markdown(
            "With a causal mask the keys and values of earlier tokens never change when a "
            "token is appended, so generation caches them and computes one new query row per "
            "token. A bidirectional model would have to re-encode everything (earlier tokens "
            "attend to the new one), and a masked LM has no left-to-right distribution at all.")
        trained_ctx = res.get("context", int(context))
        g = st.columns(4)
        n_new = g[0].number_input(
            "Tokens", 1, 2000, tokens_within_context(trained_ctx, 1), key=K + "n",
            help=f"The default fills the model's context of {trained_ctx} tokens; past it the "
                 "cache is no longer valid (learned positions stop there) and each step "
                 "re-encodes the last window, as without a cache.")
        samples = g[1].number_input(
            "Samples at once", 1, 64, 8, key=K + "samples",
            help="Continuations sampled side by side in one batch, as a server does. A tiny "
                 "model's step is mostly fixed per-call cost, which hides the work the cache "
                 "saves; a batch multiplies the work, not that cost. Try 1 to see it vanish.")
        temp = g[2].number_input("Temperature", 0.0, 3.0, 0.8, key=K + "temp")
        prompt = g[3].text_input("Prompt", "", key=K + "prompt")
        if st.button("Generate with and without the KV cache", key=K + "generate"):
            with errors():
                res["gen_job"] = reg.submit("objectives: generation", generation_job(
                    done["causal"].run.model, tok, prompt, int(n_new), temperature=float(temp),
                    seed=int(seed), samples=int(samples))).id
                res.pop("encdec_gen_job", None)
                # the encoder-decoder runs after the timing, not beside it on the same cores
                res["encdec_args"] = dict(prompt=prompt, n=int(n_new), temperature=float(temp),
                                          seed=int(seed))
        gen_job = reg.get(res["gen_job"]) if "gen_job" in res else None
        if gen_job is not None:
            follow(gen_job, K + "gen")
        if (ENCDEC in done and gen_job is not None and gen_job.status == "done"
                and "encdec_args" in res and "encdec_gen_job" not in res):
            with errors():
                res["encdec_gen_job"] = reg.submit(
                    "objectives: encoder-decoder generation", functools.partial(
                        run_encdec_generation, model=done[ENCDEC].run.model, tokenizer=tok,
                        **res["encdec_args"])).id
        if gen_job is not None and gen_job.status == "done" and gen_job.result is not None:
            demo = gen_job.result
            timing = demo.timing
            b = max(1, len(demo.texts))
            st.caption(f"Prompt {demo.prompt!r} · {demo.n} tokens at temperature "
                       f"{demo.temperature:g} · {b} sample{'s' if b > 1 else ''} at once")
            st.code(demo.prompt + demo.text, language=None)
            if b > 1:
                with st.expander(f"The other {b - 1} samples of the batch"):
                    st.code("\n".join(f"── sample {i + 2} ──\n{demo.prompt + t}"
                                      for i, t in enumerate(demo.texts[1:])), language=None)
            t_c, t_n = demo.seconds["cache"], demo.seconds["no cache"]
            inside = timing.within_context()
            past = (f"; the last {demo.n - inside} ran past the context of {demo.context} "
                    "tokens, where each step re-encodes the last window with or without a "
                    "cache" if inside < demo.n else "")
            st.markdown(
                f"**KV cache: {t_n / max(t_c, 1e-9):.1f}× faster** for these {demo.n} tokens "
                f"× {b} samples (with cache {t_c:.3f} s, without {t_n:.3f} s; medians of 3 "
                f"runs each, step by step){past}. Identical tokens: "
                f"{'yes' if demo.identical else 'NO'}.")
            st.plotly_chart(kv_cache_figure(timing), key=K + "kvfig")
            st.caption(f"Left: without a cache step i re-encodes every token so far, so its "
                       f"time grows with the text; with the cache it runs one query row per "
                       f"sample ({demo.cached_steps} cached steps), nearly flat. Right: so the "
                       "speed-up grows with the number of tokens generated. At this tiny size "
                       "a model call's fixed cost (Python, small matrix products) is most of a "
                       "step, which keeps the ratio modest (with 1 sample at once it nearly "
                       "vanishes); it grows with batch, context and width. The table shows "
                       "the first sample's tokens.")
            probs = pd.DataFrame({"token": demo.tokens, "probability": demo.probs})
            st.dataframe(probs.head(100), hide_index=True, height=220)

        ed_job = reg.get(res["encdec_gen_job"]) if "encdec_gen_job" in res else None
        if ed_job is not None:
            follow(ed_job, K + "edgen")
        if (ENCDEC in done and ed_job is not None and ed_job.status == "done"
                and gen_job is not None and gen_job.status == "done"):
            ed, demo = ed_job.result, gen_job.result
            st.markdown("**The encoder-decoder continues the same prompt** (encoder once over "
                        "prompt + [MASK], then its decoder token by token, re-run in full "
                        "each step):")
            st.code(demo.prompt + ed["text"], language=None)
            rows = {n: {m.metric: m for m in done[n].run.metrics} for n in done}
            suffix = {n: rows[n]["suffix (same positions)"].bits_per_char
                      for n in ("causal", "prefix", ENCDEC) if n in rows}
            params = {n: done[n].run.model.num_parameters() for n in done}
            ms_cache = 1000 * demo.seconds["cache"] / max(demo.n, 1)
            b = max(1, len(demo.texts))
            ms_ed = 1000 * ed["seconds"] / max(ed["n"], 1)
            rank = {n: float(done[n].run.ranks.mean()) for n in done
                    if done[n].run.ranks is not None}
            st.subheader("7 · Why decoder-only won, against this run")
            best = min(suffix, key=suffix.get)
            cut = ed["n"] < demo.n
            st.markdown(
                f"- **Quality at one budget.** On the same held-out suffix positions: causal "
                f"{suffix.get('causal', float('nan')):.3f}, prefix "
                f"{suffix.get('prefix', float('nan')):.3f}, encoder-decoder "
                f"{suffix[ENCDEC]:.3f} bits/char; best here: **{best}**. The encoder-decoder "
                f"has {params[ENCDEC]:,} parameters against the causal model's "
                f"{params['causal']:,} (cross-attention adds weights; each stack has half "
                "the depth), and only its decoder turns them into next-token predictions.\n"
                f"- **Generation.** The decoder-only model with its KV cache: {ms_cache:.2f} ms "
                f"per step ({b} sample{'s' if b > 1 else ''} at once); the encoder-decoder "
                f"without a cache: {ms_ed:.2f} ms per token (one sample, {ed['n']} tokens"
                + (f", stopped at its decoder's {done[ENCDEC].run.model.config.context + 1} "
                   "positions" if cut else "")
                + "). An encoder-decoder can cache its decoder too, but a prompt that grows "
                "in a chat must be re-encoded (its encoder is bidirectional: an appended token "
                "changes every earlier encoder state), while a decoder-only model appends to "
                "one cache.\n"
                "- **One stack.** Decoder-only uses one set of layers for prompt and answer "
                "and one objective that needs no corruption scheme; the encoder-decoder needs "
                "a noise recipe (rate, span lengths, tail share) and splits its depth.\n"
                + ("- **Attention rank.** Mean effective rank of attention (section 4): "
                   + ", ".join(f"{n} {v:.1f}" for n, v in rank.items())
                   + f" of at most {res.get('context', int(context))}; lowest here: "
                   f"**{min(rank, key=rank.get)}**. A bidirectional map has no triangular "
                   "structure to keep it full rank, the low-rank argument against encoders."
                   if rank else ""))
            st.caption("Measured on this session's models at this tiny scale and budget; the "
                       "published comparisons (T5, Raffel et al. 2020; Wang et al. 2022) find "
                       "encoder-decoders competitive or better after fine-tuning, and "
                       "decoder-only best for zero-shot generation, which is how LLMs are used.")
