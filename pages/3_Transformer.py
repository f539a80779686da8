"""Transformer: size a tiny GPT, train it live in the background, sample from it, look inside."""

import pandas as pd
import streamlit as st

from lmcore.app.frame import errors, page, refresh_sidebar
from lmcore.app.job_view import live_chart, registry
from lmcore.app.provenance import how_computed
from lmcore.app.tables import readable
from lmcore.app.train_charts import (
    attention_heatmap,
    attention_maps,
    comparison_losses,
    generated_html,
    grad_norm_bars,
    training_dashboard,
)
from lmcore.app.train_job import TrainOutcome, dynamics_job, training_job
from lmcore.models.transformer import (
    ACTIVATIONS,
    NORM_POSITIONS,
    NORMS,
    TransformerConfig,
    TransformerLM,
)
from lmcore.runs.store import RunStore
from lmcore.settings import get_settings
from lmcore.train.dynamics import COMPARISONS
from lmcore.train.estimate import (
    calibrate,
    run_seconds,
    shape_only,
    step_seconds,
    vocab_estimate,
)
from lmcore.train.objectives import CausalLM
from lmcore.train.trainer import OPTIMIZERS, UPDATE_RULES, TrainConfig, devices

PRESETS = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, context=64, batch_size=16, steps=200, lr=3e-3),
    "small": dict(n_layer=4, n_head=4, n_embd=128, context=128, batch_size=16, steps=600,
                  lr=3e-3),
}
K = "tf."  # widget key prefix
DEFAULTS = TrainConfig()  # the trainer's defaults for the optimizer knobs

lab = page(
    "Transformer", "🤖",
    "A GPT-style decoder trained on the current corpus to predict the next token. Pick a size, "
    "press **Train** and watch the loss, speed, gradients and memory move while the page stays "
    "usable (training runs in a background job; navigate away and come back). Held-out "
    "numbers are in **bits per character** (comparable across tokenizers) and per-token "
    "perplexity $e^{\\text{loss}}$.",
)
reg = registry()
LEARN_FROM_STEPS = 50  # a finished run this long or longer corrects the next time estimate


@st.cache_resource(ttl=300, show_spinner="measuring this machine's training speed…")
def _flops_per_s() -> float:
    """Training FLOP/s of this server on a job's thread count (no user data: shared); the
    median of 8 steps at the default batch, robust to the forkserver starting beside it.
    Measured again every 5 minutes: one taken while the machine was busy (a test suite beside
    `make run`) made the default run's estimate 60 s for a run of 5.6 s."""
    return calibrate(steps=8, batch=16, threads=get_settings().threads_per_job())


def _apply_preset() -> None:
    for k, v in PRESETS[st.session_state[K + "preset"]].items():
        st.session_state[K + k] = v


for k, v in PRESETS["tiny"].items():  # first visit: the tiny preset
    st.session_state.setdefault(K + k, v)

# --- configuration ------------------------------------------------------------------------
st.subheader("1 · Model and training")
how_computed("lmcore.models.transformer:TransformerConfig", "lmcore.train.estimate:step_seconds",
             "lmcore.train.estimate:calibrate")
top = st.columns([1, 1, 2])
top[0].selectbox("Preset", list(PRESETS), key=K + "preset", on_change=_apply_preset)
tok_kinds = ["char", "byte", "bpe"]
default_tok = lab.tokenizer.kind if lab.tokenizer and lab.tokenizer.kind in tok_kinds else "char"
tok_kind = top[1].selectbox("Tokenizer", tok_kinds, index=tok_kinds.index(default_tok),
                            key=K + "tok")
vocab = None
if tok_kind == "bpe":
    vocab = top[2].number_input("BPE vocabulary", 100, 20_000, 1000, step=100, key=K + "vocab")

c = st.columns(4)
n_layer = c[0].number_input("Layers", 1, 24, key=K + "n_layer")
n_head = c[1].number_input("Heads", 1, 16, key=K + "n_head")
n_embd = c[2].number_input("Width (n_embd)", 4, 1024, step=16, key=K + "n_embd")
context = c[3].number_input("Context (tokens)", 4, 2048, step=16, key=K + "context")
c = st.columns(4)
activation = c[0].selectbox("Activation", ACTIVATIONS, index=ACTIVATIONS.index("gelu"),
                            key=K + "activation")
norm = c[1].selectbox("Norm", NORMS, key=K + "norm")
norm_position = c[2].selectbox("Norm position", NORM_POSITIONS, key=K + "norm_position")
attention_impl = c[3].selectbox("Attention", ["sdpa", "naive", "tiled"], key=K + "attention")
c = st.columns(5)
mlp_ratio = c[0].number_input("MLP ratio", 1.0, 8.0, 4.0, step=0.5, key=K + "mlp_ratio")
dropout = c[1].number_input("Dropout", 0.0, 0.9, 0.0, step=0.05, key=K + "dropout")
residual = c[2].checkbox("Residual connections", True, key=K + "residual")
tie = c[3].checkbox("Tie input/output embeddings", True, key=K + "tie")
bias = c[4].checkbox("Biases", True, key=K + "bias")

c = st.columns(4)
steps = c[0].number_input("Steps", 1, 1_000_000, key=K + "steps")
batch_size = c[1].number_input("Batch size", 1, 512, key=K + "batch_size")
optimizer = c[2].selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index("adamw"),
                           key=K + "optimizer")
lr = c[3].number_input("Learning rate", 1e-6, 10.0, format="%.4g", key=K + "lr")
c = st.columns(4)
warmup = c[0].number_input("Warmup steps", 0, 100_000, 10, key=K + "warmup")
clip = c[1].number_input("Gradient clip (0 = off)", 0.0, 100.0, 1.0, key=K + "clip")
eval_every = c[2].number_input("Evaluate every (steps)", 0, 100_000, 50, key=K + "eval_every")
seed = c[3].number_input("Seed", 0, 2**31 - 1, 0, key=K + "seed")
c = st.columns(4)  # the knobs of the chosen update rule (others do not apply)
min_lr_frac = c[0].number_input("Min learning rate (× lr)", 0.0, 1.0, 0.1, step=0.05,
                                key=K + "min_lr", help="the floor the cosine decays to")
momentum, beta1, beta2, weight_decay = (DEFAULTS.momentum, DEFAULTS.beta1, DEFAULTS.beta2,
                                        DEFAULTS.weight_decay)
if optimizer == "momentum":
    momentum = c[1].number_input("Momentum μ", 0.0, 0.999, DEFAULTS.momentum, step=0.05,
                                 key=K + "momentum")
if optimizer in ("adam", "adamw"):
    beta1 = c[1].number_input("β₁", 0.0, 0.9999, DEFAULTS.beta1, step=0.01, format="%.4g",
                              key=K + "beta1")
    beta2 = c[2].number_input("β₂", 0.0, 0.9999, DEFAULTS.beta2, step=0.001, format="%.4g",
                              key=K + "beta2")
if optimizer == "adamw":
    weight_decay = c[3].number_input("Weight decay λ", 0.0, 10.0, DEFAULTS.weight_decay,
                                     step=0.01, key=K + "weight_decay")

with st.expander(f"The update rule {optimizer} runs", expanded=False):
    st.latex(UPDATE_RULES[optimizer])
    values = {"sgd": "", "momentum": f", $\\mu = {momentum:g}$",
              "adam": f", $\\beta_1 = {beta1:g}$, $\\beta_2 = {beta2:g}$, "
                      f"$\\epsilon = {DEFAULTS.eps:g}$",
              "adamw": f", $\\beta_1 = {beta1:g}$, $\\beta_2 = {beta2:g}$, "
                       f"$\\epsilon = {DEFAULTS.eps:g}$, $\\lambda = {weight_decay:g}$"}
    st.markdown(f"With these settings: $\\eta$ rises linearly to {float(lr):g} over "
                f"{int(warmup)} warmup steps, then follows a cosine down to "
                f"{float(lr) * float(min_lr_frac):g} ({float(min_lr_frac):g} × lr) at step "
                f"{int(steps):,}{values[optimizer]}. With clipping on, $g$ is first rescaled "
                "so that $\\lVert g\\rVert \\le$ the clip value.")

model_config = dict(context=int(context), n_layer=int(n_layer), n_head=int(n_head),
                    n_embd=int(n_embd), mlp_ratio=float(mlp_ratio), activation=activation,
                    norm=norm, norm_position=norm_position, residual=residual,
                    dropout=float(dropout), tie_weights=tie, attention=attention_impl,
                    bias=bias)
train_config = None
with errors():
    known = lab.tokenizer
    if known is not None and known.kind == tok_kind and (vocab is None
                                                         or known.vocab_size == int(vocab)):
        vocab_size, vocab_note = known.vocab_size, "the session's tokenizer"
    else:  # what the tokenizer trained on this corpus will have (exact for char and byte)
        vocab_size = vocab_estimate(tok_kind, lab.corpus.split().train, vocab)
        vocab_note = "estimated from the corpus" if tok_kind != "bpe" else "at most"
    # shapes only (meta device): a 500M-parameter request is refused without allocating it
    probe = shape_only(TransformerConfig(vocab_size=vocab_size, **model_config))
    n_params = probe.num_parameters()
    settings = get_settings()
    settings.check("max_params", n_params)
    settings.check("max_steps", int(steps))
    where = devices()
    device = (st.selectbox("Device", where, key=K + "device",
                           help="the GPU's memory (allocator peak) joins the live memory chart")
              if len(where) > 1 else "cpu")
    if len(where) == 1:
        st.caption("Device: cpu (this server has no GPU; with one, a Device choice appears "
                   "here and the live memory chart adds the CUDA peak).")
    train_config = TrainConfig(steps=int(steps), batch_size=int(batch_size), optimizer=optimizer,
                               lr=float(lr), min_lr=float(lr) * float(min_lr_frac),
                               warmup_steps=int(warmup), momentum=float(momentum),
                               beta1=float(beta1), beta2=float(beta2),
                               weight_decay=float(weight_decay),
                               grad_clip=float(clip) or None, eval_every=int(eval_every),
                               seed=int(seed), device=device)
    raw_step = step_seconds(probe, int(batch_size), flops_per_s=_flops_per_s())
    raw_total = run_seconds(raw_step, int(steps), int(batch_size), int(context),
                            int(eval_every), train_config.eval_tokens)
    # the FLOP count misses Python overhead and a busy machine: once a run has finished
    # here, its measured time over its estimate corrects the next estimate
    speed = lab.results.get(K + "speed")  # measured / estimated seconds, last run
    per_step = raw_step * (speed or 1.0)
    m = st.columns(4)
    m[0].metric("Parameters", f"{n_params:,}")
    m[1].metric("FLOPs / token (train)", f"{probe.flops_per_token():,}")
    ms, total_s = 1000 * per_step, raw_total * (speed or 1.0)
    m[2].metric("≈ time per step", f"{ms:,.1f} ms" if ms < 10 else f"{ms:,.0f} ms")
    m[3].metric("≈ total", f"{total_s:,.1f} s" if total_s < 10 else f"{total_s:,.0f} s")
    st.caption(f"Vocabulary {vocab_size:,} tokens ({vocab_note}). Estimate: 6N + 12·L·T·d "
               "FLOPs per token × tokens per step, plus the evaluations (forward only), at "
               "the training speed measured on this server" + (
                   f", × {speed:.2f}: your last run here took that much longer than its FLOP "
                   "count predicted (Python overhead, a busy machine)." if speed else
                           "; the first run you train here corrects it by what it measures."))

# --- training job ------------------------------------------------------------------------
st.subheader("2 · Train")
how_computed("lmcore.app.train_job:run_training", "lmcore.train.trainer:train",
             "lmcore.train.memory:SavedTensors", "lmcore.train.memory:training_state_bytes",
             cli="lmcore train --corpus FILE --layers 2 --width 64 --steps 200")
job = reg.latest("transformer")
if job is not None and isinstance(job.result, TrainOutcome) \
        and job.result.corpus_fingerprint != lab.corpus.fingerprint:
    reg.forget(job.id)  # trained on a corpus this session has since switched away from
    job = None
busy = job is not None and job.active
b = st.columns([1, 4])
if b[0].button("Train", type="primary", disabled=busy or train_config is None, key=K + "train"):
    lab.results[K + "estimate"] = (raw_total, total_s, int(steps))  # to compare with the run
    job = reg.submit("transformer", training_job(
        lab.corpus, tok_kind, model_config, train_config, CausalLM(),
        session=lab.session_id, vocab_size=int(vocab) if vocab else None,
        tokenizer=lab.tokenizer))
    busy = True
if job is not None:
    live_chart(job, training_dashboard, key=K + "live")
    out = job.result
    if isinstance(out, TrainOutcome) and lab.results.get(K + "installed") != job.id:
        lab.models["transformer"] = TransformerLM(out.model, out.tokenizer)
        refresh_sidebar(lab)
        lab.results[K + "installed"] = job.id
        lab.results[K + "outcome"] = out
        raw, _, planned = lab.results.get(K + "estimate", (None, None, None))
        # a run of a few steps is mostly start-up and its last evaluation: correcting by
        # it made the next default run's estimate 30-100% too long (bench/app_jobs.py)
        if raw and out.result.steps >= LEARN_FROM_STEPS and out.result.elapsed_s > 0:
            done_share = out.result.steps / max(planned or out.result.steps, 1)  # stopped
            lab.results[K + "speed"] = out.result.elapsed_s / (raw * done_share)
        lab.results.pop(K + "reloaded", None)
        st.rerun()  # once per job: the sidebar lists the new model
    if isinstance(out, TrainOutcome):
        r = out.result
        st.success(f"Run `{out.run_id}` ({r.status}, {r.steps:,} steps): train loss "
                   f"{r.train_loss:.4f}, validation loss {r.valid_loss:.4f} nats/token = "
                   f"**{r.bits_per_char:.4f} bits/char**, perplexity {r.perplexity:.2f}. "
                   f"Training took {r.elapsed_s:,.1f} s"
                   + (f" (the page estimated {est:,.0f} s)"
                      if (est := lab.results.get(K + "estimate", (0, 0, 0))[1]) else "")
                   + ". The model is now `transformer` in this session.")
else:
    st.caption("No training yet on this corpus in this session.")

# --- generation --------------------------------------------------------------------------
lm = lab.models.get("transformer")
st.subheader("3 · Generate")
how_computed("lmcore.models.generate:generate_text", "lmcore.models.generate:generate_tokens",
             cli="lmcore generate --model DIR --prompt 'The '")
if not isinstance(lm, TransformerLM):
    st.info("Train a model (or reload a run below) to sample from it.")
else:
    g = st.columns([3, 1, 1, 1, 1, 1])
    prompt = g[0].text_input("Prompt", "The ", key=K + "prompt")
    n_new = g[1].number_input("Tokens", 1, 2000, 200, key=K + "n")
    temperature = g[2].number_input("Temperature", 0.0, 5.0, 0.8, step=0.1, key=K + "temp")
    top_k = g[3].number_input("Top-k (0 = off)", 0, 100_000, 0, key=K + "topk")
    top_p = g[4].number_input("Top-p (1 = off)", 0.01, 1.0, 1.0, step=0.05, key=K + "topp")
    gseed = g[5].number_input("Seed", 0, 2**31 - 1, 0, key=K + "gseed")
    if st.button("Generate", key=K + "generate"):
        with errors():
            from lmcore.models.generate import generate_text

            text, pieces = generate_text(lm.model, lm.tokenizer, prompt, int(n_new),
                                         temperature=float(temperature),
                                         top_k=int(top_k) or None,
                                         top_p=float(top_p) if top_p < 1 else None,
                                         seed=int(gseed))
            lab.results[K + "generated"] = (prompt, pieces)
    if K + "generated" in lab.results:
        prompt_shown, pieces = lab.results[K + "generated"]
        st.markdown(generated_html(prompt_shown, pieces), unsafe_allow_html=True)
        st.caption("Each generated token glows by its surprisal −log₂ p under the model "
                   "(temperature 1, before top-k/top-p); hover for the probability.")

    # --- attention ----------------------------------------------------------------------
    st.subheader("4 · Attention")
    how_computed("lmcore.app.train_charts:attention_maps",
                 "lmcore.models.transformer:SelfAttention")
    a = st.columns([3, 1, 1])
    att_text = a[0].text_input("Text to look at", "def f(x):\n    return x",
                               key=K + "att_text")
    layer = a[1].number_input("Layer", 0, lm.config.n_layer - 1, 0, key=K + "att_layer")
    head = a[2].number_input("Head", 0, lm.config.n_head - 1, 0, key=K + "att_head")
    with errors():
        maps, tokens = attention_maps(lm.model, lm.tokenizer, att_text, max_tokens=64)
        w = maps[int(layer)][int(head)].tolist()  # (T, T)
        st.plotly_chart(attention_heatmap(w, tokens, f"layer {layer}, head {head}"),
                        key=K + "att_fig")
        st.caption("Row i: how query token i spreads its attention over keys 0..i (causal "
                   "mask: the upper triangle is zero). At most the first 64 tokens.")

# --- dynamics ----------------------------------------------------------------------------
st.subheader("5 · Training dynamics")
how_computed("lmcore.app.train_job:run_dynamics", "lmcore.train.dynamics:run_comparison",
             "lmcore.train.dynamics:dead_fraction")
d = st.columns([2, 1, 1, 1])
kind = d[0].selectbox("Compare", list(COMPARISONS), key=K + "dyn_kind")
dyn_steps = d[1].number_input("Steps per variant", 5, 2000, 60, key=K + "dyn_steps")
dyn_layers = d[2].number_input("Comparison layers", 1, 12, 4, key=K + "dyn_layers",
                               help="the comparison's own model; deeper than the tiny preset "
                                    "so that gradients have layers to vanish or explode across")
d[3].write("")
st.markdown(COMPARISONS[kind][0])
st.caption(f"Each variant trains its own model, not the one configured above: "
           f"{int(dyn_layers)} layers, 2 heads, width 64, context 64, batch 8, "
           f"{int(dyn_steps)} steps, same seed and data.")
dyn = reg.latest("dynamics")
if d[3].button("Run comparison", disabled=dyn is not None and dyn.active, key=K + "dyn_run"):
    with errors():
        base = dict(context=64, n_layer=int(dyn_layers), n_head=2, n_embd=64,
                    activation="gelu")
        tc = TrainConfig(steps=int(dyn_steps), batch_size=8, lr=3e-3, warmup_steps=5,
                         eval_every=0, eval_tokens=512, memory_every=0, seed=0)
        get_settings().check("max_steps", int(dyn_steps))
        dyn = reg.submit("dynamics", dynamics_job(kind, lab.corpus, base, tc, CausalLM()))
        lab.results[K + "dyn_kind"] = kind
        lab.results[K + "dyn_layers"] = int(dyn_layers)
if dyn is not None:
    title = (f"{lab.results.get(K + 'dyn_kind', kind)}: training loss "
             f"({lab.results.get(K + 'dyn_layers', int(dyn_layers))}-layer model)")
    live_chart(dyn, lambda snap: comparison_losses(snap, title), key=K + "dyn_live")
    if isinstance(dyn.result, list) and dyn.result:
        res = dyn.result
        st.plotly_chart(grad_norm_bars({r.label: r.grad_norms for r in res}),
                        key=K + "dyn_grad")
        st.dataframe(readable(pd.DataFrame([{
            "variant": r.label, "status": r.status,
            "final train loss": r.losses[-1] if r.losses else None,
            "validation loss": r.valid_loss,
            "units never firing (mean over layers)": (sum(r.dead_fraction)
                                                      / len(r.dead_fraction)
                                                      if r.dead_fraction else None),
            "error": r.error or ""} for r in res])), hide_index=True)
        st.caption("'Units never firing': share of MLP hidden units whose input is ≤ 0 for "
                   "every token of a held-out batch; for ReLU these are dead (zero gradient).")

# --- runs --------------------------------------------------------------------------------
st.subheader("6 · Runs")
how_computed("lmcore.runs.store:RunStore", cli="lmcore runs list")
with errors():
    store = RunStore()
    shared = get_settings().shared_runs
    scope = None if shared else lab.session_id  # None: every run in the store
    runs = store.list(session=scope)
    if shared:
        st.caption(f"Every run recorded in `{store.path}`: this session's, earlier sessions' "
                   "and `lmcore train`'s (LMCORE_SHARED_RUNS is on).")
    if not runs:
        st.caption("Runs you train here are recorded" + ("." if shared else
                                                         " (this session sees only its own)."))
    else:
        st.dataframe(readable(pd.DataFrame([r.row() for r in runs])), hide_index=True)
        ids = [r.id for r in runs]
        chosen = st.multiselect("Compare runs", ids, default=ids[:2], key=K + "cmp")
        if chosen:
            st.dataframe(readable(pd.DataFrame(store.compare(chosen, session=scope))),
                         hide_index=True)
            snap = {}
            for rid in chosen:
                ev = store.metrics(rid).get("eval", {})
                snap[rid] = {"step": ev.get("step", []), "loss": ev.get("valid_loss", [])}
            st.plotly_chart(comparison_losses(snap, "Validation loss of the chosen runs",
                                              "validation loss (nats/token)"),
                            key=K + "cmp_fig")
        one = st.selectbox("Run", ids, key=K + "run")
        r = st.columns(4)
        r[0].download_button("JSON", store.export_json(one, session=scope),
                             file_name=f"{one}.json", key=K + "dl_json")
        r[1].download_button("CSV (metrics)", store.export_csv(one, session=scope),
                             file_name=f"{one}.csv", key=K + "dl_csv")
        if r[2].button("Reload model", key=K + "reload"):
            from lmcore.models.checkpoint import load_model

            ck = store.get(one, session=scope).checkpoint
            if not ck:
                raise ValueError(f"run {one} has no saved model (it did not finish)")
            lab.models["transformer"] = load_model(ck).lm()
            lab.results[K + "reloaded"] = one
            st.rerun()  # the sidebar and the generation section show the loaded model
        if r[3].button("Delete", key=K + "delete", help="the run, its metrics and the model "
                       "lmcore saved for it (weights and tokenizer)"):
            if store.get(one, session=scope).status == "running":
                raise ValueError(f"run {one} is still running: stop it before deleting it")
            store.delete(one, session=scope, remove_model=True)
            st.rerun()
        if lab.results.get(K + "reloaded") in ids:
            st.success(f"Loaded run {lab.results[K + 'reloaded']} as `transformer`.")
