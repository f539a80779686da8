"""Training stages: one tiny model through pretraining, instruction tuning and DPO."""

import functools
import html

import pandas as pd
import streamlit as st

from lmcore.app.frame import errors, page
from lmcore.app.job_view import live_chart, registry
from lmcore.app.stages_charts import answer_html, dpo_figure, loss_figure, mask_html
from lmcore.app.stages_job import run_dpo_stage, run_pretrain_stage, run_sft_stage
from lmcore.runs.store import RunStore
from lmcore.settings import get_settings
from lmcore.stages.chat import mask_demo
from lmcore.stages.pipeline import DPO_DEFAULTS, NEXT_FROM, SFT_DEFAULTS, PretrainConfig
from lmcore.stages.preferences import RULES
from lmcore.stages.sft import StageConfig

K = "stg."
lab = page(
    "Training stages", "🎓",
    "A large model is trained in three stages: **pretraining** (next-token prediction on "
    "text, to learn the language), **instruction tuning** (to learn the format of a "
    "conversation and to follow an instruction) and **preference tuning** (to prefer the "
    "answers people prefer; RLHF). Here one tiny model goes through all three on this "
    "server's CPU, and the page shows what each stage changes: the same held-out instructions "
    "answered after each stage, and their accuracy.",
)
reg = registry()
NAMES = {"pretrain": "stages: pretrain", "sft": "stages: SFT", "dpo": "stages: DPO"}


def _result(stage: str) -> dict | None:
    """The finished result of this session's latest job of `stage` on the current corpus."""
    job = reg.latest(NAMES[stage])
    out = job.result if job is not None and job.done else None
    if isinstance(out, dict) and out.get("corpus_fingerprint") == lab.corpus.fingerprint:
        return out
    return None


def _job(stage: str):
    job = reg.latest(NAMES[stage])
    if job is not None and isinstance(job.result, dict) \
            and job.result.get("corpus_fingerprint") != lab.corpus.fingerprint:
        return None  # a result of another corpus: not shown under this one's name
    return job


def _saved_runs(stage: str) -> dict[str, str]:
    """Recorded runs with a saved model that `stage` can start from: label -> run id."""
    shared = get_settings().shared_runs
    out = {}
    for r in RunStore().list(session=None if shared else lab.session_id):
        kind = r.config.get("stage") or ("pretrain" if "model" in r.config else None)
        model = r.config.get("model") or {}
        if (r.checkpoint and r.status in ("done", "stopped") and kind in NEXT_FROM[stage]
                and model.get("mask", "causal") == "causal"):
            out[f"{r.id} · {kind} · {r.name}"] = r.id
    return out


def _start_picker(stage: str, previous: dict | None, prev_name: str) -> str | None:
    """Where `stage` starts: the previous stage's model from this page, or a saved run."""
    options = {}
    if previous is not None:
        options[f"the {prev_name} model trained above (run {previous['run_id']})"] = \
            previous["run_id"]
    options.update(_saved_runs(stage))
    if not options:
        st.info(f"Nothing to start from yet: run the {prev_name} stage above first (or train "
                "a model on the Transformer page).")
        return None
    label = st.selectbox("Start from", list(options), key=K + stage + ".start")
    return options[label]


def _stage_config(stage: str, d: StageConfig, extra: bool = False) -> StageConfig:
    c = st.columns(5 if extra else 3)
    steps = c[0].number_input("Steps", 1, get_settings().max_steps, d.steps,
                              key=K + stage + ".steps")
    lr = c[1].number_input("Learning rate", 1e-7, 1.0, d.lr, format="%.2g",
                           key=K + stage + ".lr")
    batch = c[2].number_input("Batch size", 1, 256, d.batch_size, key=K + stage + ".batch")
    kw = {}
    if extra:
        kw["beta"] = c[3].number_input("β (pull towards the reference)", 0.01, 10.0, d.beta,
                                       key=K + "beta")
        kw["nll_weight"] = c[4].number_input("NLL weight on the chosen answers", 0.0, 10.0,
                                             d.nll_weight, key=K + "nll")
    return StageConfig(steps=int(steps), lr=float(lr), batch_size=int(batch),
                       eval_every=max(1, int(steps) // 6), **kw)


def _how(text: str) -> None:
    with st.expander("How this is computed"):
        st.markdown(text)


# --- 1 · pretraining -------------------------------------------------------------------
st.subheader("1 · Pretraining")
st.markdown(f"The ordinary causal trainer on **{lab.corpus.name}**, char tokens: the model "
            "learns to continue text and nothing else. (A model trained on the Transformer "
            "page, or any saved run, can start the next stage instead.)")
c = st.columns(4)
p_layers = c[0].number_input("Layers", 1, 8, PretrainConfig.n_layer, key=K + "p.layers")
p_width = c[1].number_input("Width", 16, 512, PretrainConfig.n_embd, step=16, key=K + "p.width")
p_steps = c[2].number_input("Steps", 1, get_settings().max_steps, PretrainConfig.steps,
                            key=K + "p.steps")
p_seed = c[3].number_input("Seed", 0, 2**31 - 1, 0, key=K + "p.seed")
pjob = _job("pretrain")
if st.button("Pretrain", type="primary", key=K + "p.go",
             disabled=pjob is not None and pjob.active):
    with errors():
        cfg = PretrainConfig(n_layer=int(p_layers), n_embd=int(p_width), steps=int(p_steps),
                             seed=int(p_seed))
        pjob = reg.submit(NAMES["pretrain"], functools.partial(
            run_pretrain_stage, corpus=lab.corpus, config=cfg, session=lab.session_id))
if pjob is not None:
    live_chart(pjob, lambda snap: loss_figure(snap, "pretrain"), key=K + "p.live")
_how("`lmcore.stages.pipeline.pretrain` (lmcore/stages/pipeline.py) runs "
     "`lmcore.train.trainer.train` with the causal objective and saves the model with "
     "`lmcore.models.checkpoint.save_model`; the job is `run_pretrain_stage` in "
     "lmcore/app/stages_job.py.")
pre = _result("pretrain")

# --- 2 · SFT -------------------------------------------------------------------------------
st.subheader("2 · Instruction tuning (SFT)")
st.markdown(
    "Instructions with checkable answers are generated from the corpus's own words: "
    "**reverse** a word, **upper**-case it, **count the vowels**, and name the **next word** "
    "that most often follows it in the corpus. The words are split once: held-out "
    "instructions ask about words never seen in tuning. Each example is written in a chat "
    "template with three new special tokens the tokenizer learns (`<|user|>`, "
    "`<|assistant|>`, `<|end|>`; the model's embedding table grows by three rows). The loss "
    "counts **only the response** (green below): the prompt is context, not a target.")
with errors():
    tokens, mask = mask_demo()
    st.markdown(mask_html(tokens, mask), unsafe_allow_html=True)
    st.caption(f"Loss mask of one example: {sum(mask)} of {len(tokens)} tokens are targets "
               "(the response and <|end|>); [BOS], <|user|>, the prompt and <|assistant|> "
               "never contribute.")
sft_cfg = _stage_config("sft", SFT_DEFAULTS)
sft_start = _start_picker("sft", pre, "pretrained")
sjob = _job("sft")
if st.button("Instruction-tune", type="primary", key=K + "s.go",
             disabled=sft_start is None or (sjob is not None and sjob.active)):
    sjob = reg.submit(NAMES["sft"], functools.partial(
        run_sft_stage, corpus=lab.corpus, start=sft_start, config=sft_cfg,
        session=lab.session_id))
if sjob is not None:
    live_chart(sjob, lambda snap: loss_figure(snap, "sft"), key=K + "s.live")
sft = _result("sft")
if sft is not None:
    rows = [{"": f"before SFT ({sft['start_stage']})", **sft["before"]},
            {"": "after SFT", **sft["after"]}]
    st.dataframe(pd.DataFrame(rows).set_index("").map(lambda v: f"{100 * v:.1f}%"))
    st.caption(f"Held-out exact match, greedy answers: {sft['n_test']} instructions about "
               f"words never tuned on ({sft['source']}); {sft['n_train']:,} tuning examples. "
               f"Before SFT the model has never seen the template, so it does not answer; "
               f"after: {100 * sft['after']['all']:.0f}% right.")
_how("`lmcore.stages.sft.train_sft` and `sft_loss` (lmcore/stages/sft.py) with the template "
     "of lmcore/stages/chat.py and the instructions of lmcore/stages/instructions.py; "
     "accuracy by `lmcore.stages.respond.exact_match`; the job is `run_sft_stage`.")

# --- 3 · DPO -------------------------------------------------------------------------------
st.subheader("3 · Preference tuning (DPO)")
st.markdown(
    "The SFT model answers each training instruction four times (sampled), and a rule stands "
    "in for the human raters: " + "; ".join(f"**{k}**: {v}" for k, v in RULES.items())
    + ". The best and worst answers make a pair. **RLHF with PPO** would first fit a reward "
    "model to such pairs and then run reinforcement learning against it with a KL penalty "
    "to the SFT model; **Direct Preference Optimization** (Rafailov et al. 2023) reaches the "
    "optimum of the same KL-regularised objective with a classification loss on the pairs, "
    "$-\\log\\sigma(\\beta[(\\log\\pi(y_w)-\\log\\pi_{ref}(y_w)) - (\\log\\pi(y_l)-"
    "\\log\\pi_{ref}(y_l))])$, against a frozen copy of the SFT model. No reward model, no "
    "sampling during training, no value network: that is why lmcore uses DPO on a CPU. "
    "A tiny model forgets its answers under pure DPO, so the chosen answers' likelihood is "
    "added with the **NLL weight** (RPO, Pang et al. 2024; 0 gives pure DPO).")
dpo_cfg = _stage_config("dpo", DPO_DEFAULTS, extra=True)
dpo_start = _start_picker("dpo", sft, "instruction-tuned")
djob = _job("dpo")
if st.button("Preference-tune", type="primary", key=K + "d.go",
             disabled=dpo_start is None or (djob is not None and djob.active)):
    djob = reg.submit(NAMES["dpo"], functools.partial(
        run_dpo_stage, corpus=lab.corpus, start=dpo_start, config=dpo_cfg,
        session=lab.session_id))
if djob is not None:
    live_chart(djob, dpo_figure, key=K + "d.live")
dpo = _result("dpo")
if dpo is not None:
    b, a = dpo["before"], dpo["after"]
    st.dataframe(pd.DataFrame([
        {"held-out pairs": "win rate (preferred answer more likely)",
         "before DPO": f"{100 * b['win_rate']:.1f}%", "after DPO": f"{100 * a['win_rate']:.1f}%"},
        {"held-out pairs": "implicit reward margin β·Δlog-ratio",
         "before DPO": f"{b['margin']:.3f}", "after DPO": f"{a['margin']:.3f}"},
        {"held-out pairs": "KL(policy ‖ SFT reference), nats/token",
         "before DPO": f"{b['kl']:.4f}", "after DPO": f"{a['kl']:.4f}"},
    ]), hide_index=True)
    st.caption(f"{len(dpo['train_pairs'])} tuning pairs, {len(dpo['test_pairs'])} held-out "
               f"pairs. The win rate went from {100 * b['win_rate']:.1f}% to "
               f"{100 * a['win_rate']:.1f}% while the policy moved {a['kl']:.3f} nats per "
               "token from the reference.")
    st.dataframe(pd.DataFrame(dpo["test_pairs"][:8]), hide_index=True)
_how("`lmcore.stages.dpo.dpo_loss`, `train_dpo` and `preference_metrics` (lmcore/stages/dpo.py);"
     " pairs by `lmcore.stages.preferences.sample_pairs`; the job is `run_dpo_stage`.")

# --- 4 · side by side ---------------------------------------------------------------------
st.subheader("4 · What each stage changed")
done = {name: r for name, r in (("pretrained", pre), ("after SFT", sft), ("after DPO", dpo))
        if r is not None}
if not done:
    st.caption("Run the stages above: the same held-out instructions, answered after each "
               "stage, appear here.")
else:
    table = []
    if sft is not None:
        table.append({"stage": f"before SFT ({sft['start_stage']})", **sft["before"]})
        table.append({"stage": "after SFT", **sft["after"]})
    if dpo is not None:
        table.append({"stage": "after DPO", **dpo["accuracy"]})
    if table:
        st.dataframe(pd.DataFrame(table).set_index("stage").map(lambda v: f"{100 * v:.1f}%"))
        st.caption("Held-out exact match per task, greedy answers.")
    examples = next(iter(done.values()))["examples"]
    head = "".join(f"<th>{name}</th>" for name in done)
    body = []
    for i, ex in enumerate(examples):
        cells = "".join(f"<td>{answer_html(r['answers'][i])}</td>" for r in done.values())
        body.append(f"<tr><td><code>{html.escape(ex['prompt'])}</code></td>"
                    f"<td><code>{html.escape(ex['response'])}</code></td>{cells}</tr>")
    st.markdown(f"<table><tr><th>held-out instruction</th><th>right answer</th>{head}</tr>"
                + "".join(body) + "</table>", unsafe_allow_html=True)
    st.caption("Greedy answers; each token glows by its surprisal (hover: its probability). "
               "The pretrained model has never seen the chat template: it continues the text.")
