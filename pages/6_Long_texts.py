"""Long texts: chunking, four ways to score a text longer than the context, summary tree."""

import functools

import pandas as pd
import streamlit as st

from lmcore.app.charts import line_chart
from lmcore.app.corpus_picker import corpus_picker
from lmcore.app.frame import errors, page
from lmcore.app.job_view import follow, registry
from lmcore.app.longtext_charts import chunks_html, memory_figure, strategy_figure, stride_figure
from lmcore.app.longtext_job import (
    run_continuation,
    run_quick_training,
    run_strategies,
    run_stride_sweep,
    run_summary,
)
from lmcore.app.provenance import how_computed
from lmcore.app.tables import readable
from lmcore.longtext.chunking import split_text
from lmcore.longtext.quick_model import QuickModelConfig
from lmcore.longtext.rouge import rouge
from lmcore.longtext.strategies import (
    STRATEGIES,
    char_bounds,
    max_window,
    plan_windows,
)
from lmcore.longtext.summarize import ChatSummarizer, ExtractiveSummarizer
from lmcore.models.ngram import NGramLM
from lmcore.settings import get_settings

QUICK_NAME = "tiny Transformer (Long texts)"
TRAIN = "Train a tiny Transformer now"
NGRAM = "Fit a 3-gram now (instant)"
MIN_CHARS = 200  # shorter than this there is no long text to cut or stream

lab = page(
    "Long texts", "📜",
    "A model with a context of **C** tokens cannot read a book at once. Cut the text into "
    "chunks, score it by **truncation** (first C tokens), **disjoint chunks** or a **sliding "
    "window** with stride S (each window scores only its last S new tokens, so every token "
    "gets at least C − S tokens of context), or in **one full pass** with the tiled "
    "(FlashAttention) kernel where the positional embeddings reach that far. All in bits per "
    "character, with the process memory plotted live.",
)
corpus_picker(lab, key="longtext")
corpus = lab.corpus
split = corpus.split()
reg = registry()


def _submit(name: str, fn) -> None:
    """Start job `name` and remember which corpus and text its results belong to."""
    job = reg.submit(name, fn)
    lab.results[f"lt.of.{name}"] = (job.id, corpus.fingerprint, about)


def _latest(name: str):
    """This session's latest `name` job if it ran on the current corpus (else None: results
    of another corpus never show under this one's name), and what it ran on."""
    job_id, fingerprint, ran_on = lab.results.get(f"lt.of.{name}", (None, None, ""))
    if job_id is None or fingerprint != corpus.fingerprint:
        return None, ""
    return reg.get(job_id), ran_on


def _loss_figure(snap: dict):
    loss = snap.get("loss")
    if loss and loss.get("step"):
        return line_chart(loss["step"], {"training loss": loss["loss"]},
                          "Training the tiny Transformer", "step", "loss (nats/token)")
    return None


# --- which text and which model ------------------------------------------------------------
st.subheader("Text and model")
how_computed("lmcore.longtext.quick_model:train_quick_transformer",
             "lmcore.longtext.strategies:max_window")
left, right = st.columns(2)
part = left.radio("Text to process", ["Held-out test split", "Whole corpus"], horizontal=True,
                  key="lt.part",
                  help="Models here are trained on the training split; the test split is "
                       "text they have not seen.")
held_out = part.startswith("Held")
source = (split.test or corpus.text) if held_out else corpus.text
if len(source) < MIN_CHARS:
    hint = ("choose 'Whole corpus' above, or " if held_out and len(corpus.text) >= MIN_CHARS
            else "")
    left.info(f"{'The held-out test split' if held_out else 'This text'} has only "
              f"{len(source):,} characters: the long-text tools need at least {MIN_CHARS:,}. "
              f"To go on, {hint}paste or upload a longer text.")
    st.stop()
limit = left.number_input("Use the first N characters", MIN_CHARS, len(source),
                          min(len(source), 12_000), step=1000,
                          key=f"lt.chars.{corpus.fingerprint[:12]}.{part}")  # new text: reset
text = source[: int(limit)]
left.caption(f"{len(text):,} characters of {len(source):,}.")
about = (f"the first {len(text):,} characters of "
         f"{'the held-out test split' if held_out else 'the whole text'} of {corpus.name}")

models = {name: m for name, m in lab.models.items() if getattr(m, "tokenizer", None) is not None}
# Models with a context (Transformers: they run the tiled attention) come first, so one is the
# default whenever the session has one; without one the default is training the tiny model
# here (nothing runs until the button is pressed), the instant 3-gram baseline last.
models = dict(sorted(models.items(), key=lambda kv: max_window(kv[1]) is None))
options = list(models) + [TRAIN, NGRAM]
if lab.results.get("longtext.select") in options:  # just trained: select it
    st.session_state["lt.model"] = lab.results.pop("longtext.select")
pick = right.selectbox("Model", options, key="lt.model",
                       help="Models trained on other pages appear here, Transformers first; "
                            "without one, train a tiny Transformer here (about half a minute) or "
                            "fit a 3-gram baseline instantly.")
model = tokenizer = None
with errors():
    if pick in models:
        model = models[pick]
        tokenizer = model.tokenizer
    else:
        tokenizer = lab.tokenizer or lab.char_tokenizer()
        if pick == NGRAM:
            key = (corpus.fingerprint, tokenizer.fingerprint())
            if lab.results.get("longtext.ngram", (None,))[0] != key:
                lab.results["longtext.ngram"] = (key, NGramLM.from_tokenizer(
                    tokenizer, split.train, order=3, smoothing="kn"))
            model = lab.results["longtext.ngram"][1]
            right.info("Using a 3-gram (Kneser-Ney) fit on the training split: it has no "
                       "context window of its own, so the window below is imposed on it, and "
                       "it never looks back more than 2 tokens.")
        else:
            right.info("The strategies run through a Transformer with the **tiled "
                       "(FlashAttention) attention**, and this session has none yet: train a "
                       "tiny one (2 layers, width 64) on the training split here, in about "
                       "half a minute. For an instant baseline without attention, pick the 3-gram.")
            train_job, _ = _latest("longtext-train")
            q1, q2 = right.columns(2)
            steps = q1.number_input("Training steps", 1, 5000, 800, key="lt.qsteps",
                                    help="800 steps take about half a minute and give a "
                                         "model that uses its context (150 steps: a model "
                                         "that barely does, and little context benefit).")
            qctx = q2.number_input("Context (tokens)", 16, 4096, 128, step=64, key="lt.qctx",
                                   help="Positions the model learns. A full pass needs the "
                                        "whole text within them; longer contexts train "
                                        "slower.")
            if right.button("Train the tiny Transformer", type="primary", key="lt.train",
                            disabled=train_job is not None and train_job.active):
                _submit("longtext-train", functools.partial(
                    run_quick_training, train=split.train, valid=split.valid,
                    tokenizer=tokenizer, config=QuickModelConfig(steps=int(steps),
                                                                 context=int(qctx))))
                train_job, _ = _latest("longtext-train")
            if train_job is not None:
                with right:
                    follow(train_job, "lt.loss", _loss_figure)
                if train_job.status == "done" and train_job.result is not None:
                    if lab.results.get("longtext.quick") is not train_job:
                        lab.results["longtext.quick"] = train_job
                        # the sidebar and other pages see it too
                        lab.models[QUICK_NAME] = train_job.result.load()
                        lab.results["longtext.select"] = QUICK_NAME
                        st.rerun()
quick_job = lab.results.get("longtext.quick")
if pick == QUICK_NAME and quick_job is not None:
    res = quick_job.result.result
    right.success(f"Tiny Transformer trained here ({res.steps} steps): "
                  f"{res.bits_per_char:.3f} bits/char on the validation split.")
if model is not None:
    limit_w = max_window(model)
    right.caption(f"Tokenizer: {tokenizer.kind} · context: "
                  + (f"{limit_w} tokens" if limit_w else "none (n-gram)"))

NO_MODEL = ("Train the tiny Transformer above first (Model: "
            f"“{TRAIN}”, about half a minute), or pick “{NGRAM}” for a baseline.")
tab_chunks, tab_eval, tab_sum, tab_cont = st.tabs(
    ["Chunks", "Strategies", "Summary tree", "Continue the text"])

# --- chunks ---------------------------------------------------------------------------------
with tab_chunks:
    how_computed("lmcore.longtext.chunking:split_text",
                 cli="lmcore longtext chunk FILE --size 256 --overlap 32")
    st.markdown("LangChain's recursive splitter cuts at paragraphs, lines, sentence ends "
                "(。！？； and .!?;), clauses, spaces, then characters; sizes are measured in "
                "tokens of the current tokenizer or in characters. Overlaps are shown in "
                "**orange**.")
    c1, c2, c3 = st.columns(3)
    unit = c1.radio("Measure in", ["tokens", "chars"], horizontal=True, key="lt.unit")
    size = c2.number_input("Chunk size", 1, 100_000, 256, key="lt.size")
    overlap = c3.number_input("Overlap", 0, 100_000, 32, key="lt.overlap")
    with errors():
        chunks = split_text(text, int(size), int(overlap), tokenizer=tokenizer, unit=unit)
        st.caption(f"{len(chunks):,} chunks · {sum(c.overlap_with_prev for c in chunks):,} "
                   "characters in overlaps. The splitter carries whole pieces (sentences, "
                   "words) into the overlap, so an overlap is at most the size asked, and "
                   "none where a chunk starts a new paragraph that was split on its own.")
        st.dataframe(pd.DataFrame([dict(index=c.index, start=c.start, end=c.end,
                                        tokens=c.tokens, chars=c.chars,
                                        overlap=c.overlap_with_prev) for c in chunks]),
                     hide_index=True, height=220, key="lt.chunks.table")
        st.html(chunks_html(text, chunks, limit=15_000))


# --- strategies -----------------------------------------------------------------------------
def _draw_windows(job) -> None:
    win = job.snapshot().get("windows")
    if win and win.get("index"):
        table = pd.DataFrame(win)[["strategy", "index", "tokens", "chars", "bits_per_char",
                                   "seconds", "rss_mb"]]
        st.dataframe(readable(table.iloc[::-1].head(500)), hide_index=True, height=240,
                     key="lt.win.table")


def _sweep_figure(snap: dict):
    rows = snap.get("sweep")
    if rows and rows.get("stride"):
        return stride_figure(pd.DataFrame(rows).to_dict("records"))
    return None


with tab_eval:
    how_computed("lmcore.longtext.strategies:evaluate_ids",
                 "lmcore.longtext.strategies:plan_windows", "lmcore.longtext.strategies:plan_work",
                 cli="lmcore longtext score FILE --model DIR --strategy sliding --window 32 --stride 8")
    st.markdown(r"bits/char $= \frac{-\sum_t \log_2 p(x_t \mid \text{context}_t)}"
                r"{\text{characters scored}}$; the sliding window follows Hugging Face's "
                "fixed-length perplexity recipe.")
    if model is None:
        st.info(NO_MODEL)
    else:
        limit_w = max_window(model)
        if limit_w is None:
            order = getattr(model, "order", None)
            st.caption(f"This {f'{order}-gram' if order else 'model'} has no attention, so the "
                       "attention choice below does not apply: train the tiny Transformer "
                       "(Model, above) to run these strategies through the tiled kernel.")
        c1, c2, c3 = st.columns(3)
        strategies = c1.multiselect("Strategies", list(STRATEGIES),
                                    default=["truncation", "disjoint", "sliding"],
                                    key="lt.strategies")
        w_max = max(2, limit_w or 100_000)  # a model with a context under 2 is refused below
        # 32 by default: a disjoint chunk's first tokens see almost nothing, and with 32-token
        # chunks they are a good share of the text, so the sliding window's gain shows: with
        # the tiny model at its defaults, disjoint 3.215 vs sliding (S=8) 3.028 bits/char on
        # 12,000 held-out characters (128-token windows: 3.102 vs 3.087)
        window = c2.number_input("Window C (tokens)", 2, w_max, min(w_max, 32),
                                 key="lt.window", help="At most the model's context.")
        stride = c3.number_input("Stride S (tokens)", 1, 100_000, max(1, int(window) // 4),
                                 key="lt.stride")
        attention = c1.radio("Attention", ["tiled", "sdpa", "naive"], horizontal=True,
                             key="lt.attn", disabled=limit_w is None)
        with errors():
            ids, offsets = tokenizer.encode_offsets(text)
            bounds = char_bounds(offsets, len(text))
            for s in strategies:  # check the settings here, so mistakes show at once
                if s != "full":
                    plan_windows(len(ids), s, int(window), int(stride))
            if "full" in strategies and limit_w is not None and len(ids) > limit_w:
                raise ValueError(
                    f"a full pass needs all {len(ids):,} tokens within the model's positions "
                    f"({limit_w:,}): shorten the text or drop 'full' (learned positional "
                    "embeddings stop at the context)")
            if c2.button("Run strategies", type="primary", key="lt.run",
                         disabled=not strategies):
                _submit("longtext-strategies", functools.partial(
                    run_strategies, model=model, ids=ids, bounds=bounds,
                    strategies=list(strategies), window=int(window), stride=int(stride),
                    attention=attention if limit_w is not None else None))
        job, ran_on = _latest("longtext-strategies")
        if job is not None:
            st.caption(f"Results on {ran_on}.")
            follow(job, "lt.mem", memory_figure, body=_draw_windows)
            if job.status in ("done", "stopped") and job.result:
                rows = job.result
                st.plotly_chart(strategy_figure(rows), key="lt.compare")
                table = pd.DataFrame(rows)
                st.dataframe(readable(table), hide_index=True, key="lt.result.table")
                bpc = {r["strategy"]: r["bits_per_char"] for r in rows}
                if "disjoint" in bpc and "sliding" in bpc:
                    r_s = next(r for r in rows if r["strategy"] == "sliding")
                    gain = bpc["disjoint"] - bpc["sliding"]
                    st.markdown(
                        f"**Context benefit: {gain:+.3f} bits/char.** Disjoint chunks of "
                        f"{r_s['window']} tokens give a chunk's first token no context at all "
                        f"({bpc['disjoint']:.3f} bits/char); the sliding window with stride "
                        f"{r_s['stride']} gives every token at least "
                        f"{r_s['window'] - r_s['stride']} tokens of it "
                        f"({bpc['sliding']:.3f} bits/char), at "
                        f"{r_s['windows']:,} windows instead of "
                        f"{next(r['windows'] for r in rows if r['strategy'] == 'disjoint'):,}."
                        + ("" if gain > 0 else " Here it did not help: this model makes "
                           "little use of context (train it longer, or pick a model from "
                           "the Transformer page)."))
                scored = {r["strategy"]: r["coverage"] for r in rows}
                if scored.get("truncation", 1.0) < 0.5:
                    st.caption(f"Truncation scores only its first window: "
                               f"{scored['truncation']:.1%} of the text. Its bits/char "
                               "describes the beginning, not the text, so it is no rival to "
                               "the strategies that score all of it.")
                st.download_button("Download results (CSV)", table.to_csv(index=False),
                                   "longtext_strategies.csv", "text/csv", key="lt.csv")

        st.markdown("**Context benefit:** the sliding window at several strides (S = C is "
                    "disjoint chunks; halving S doubles the cost).")
        if st.button("Sweep strides", key="lt.sweep.run"):
            with errors():
                w = int(window)
                strides = sorted({max(1, w >> k) for k in range(0, 6)}, reverse=True)
                _submit("longtext-sweep", functools.partial(
                    run_stride_sweep, model=model, ids=ids, bounds=bounds, window=w,
                    strides=strides, attention=attention if limit_w is not None else None))
        sweep, ran_on = _latest("longtext-sweep")
        if sweep is not None:
            st.caption(f"Sweep on {ran_on}.")
            follow(sweep, "lt.sweep", _sweep_figure)

# --- summary tree ----------------------------------------------------------------------------
with tab_sum:
    how_computed("lmcore.longtext.summarize:summarize_tree",
                 "lmcore.longtext.summarize:ExtractiveSummarizer", "lmcore.longtext.rouge:rouge",
                 cli="lmcore longtext summarize FILE --model DIR")
    st.markdown(
        "Map-reduce: summarize each chunk, join the summaries of neighbours, summarize again, "
        "until one summary fits the budget. The offline summarizer is **extractive**: "
        "score = w·salience + (1−w)·centrality, where salience is the sentence's mean "
        "surprisal under the model (bits/char, scaled to [0, 1] per chunk) and centrality "
        "its TF-IDF cosine to the chunk; sentences are then picked by MMR (λ·score − "
        "(1−λ)·similarity to sentences already picked).")
    c1, c2, c3 = st.columns(3)
    budget = c1.number_input("Summary budget (characters)", 20, 20_000, 400, key="lt.budget")
    chunk_chars = c2.number_input("Chunk size (characters)", 100, 100_000, 2000,
                                  key="lt.sumchunk")
    fan_in = c3.number_input("Summaries joined per level", 2, 16, 4, key="lt.fanin")
    kind = st.radio("Summarizer", ["Extractive (offline)", "OpenAI-compatible chat endpoint"],
                    horizontal=True, key="lt.sumkind")
    url = None
    if kind.startswith("Extractive"):
        weight = st.slider("Salience weight w", 0.0, 1.0, 0.5, key="lt.w",
                           disabled=model is None)
        mmr = st.slider("MMR λ", 0.0, 1.0, 0.7, key="lt.mmr")
    else:
        # A URL typed by a visitor makes the server POST wherever it points (SSRF): only
        # when the operator allows it (LMCORE_ALLOW_LLM_URL, on under `make run`); otherwise
        # the endpoint is the one configured in LMCORE_LLM_URL, or none.
        settings = get_settings()
        configured = settings.llm_url.strip()
        if settings.allow_llm_url:
            url = st.text_input("Endpoint URL (Ollama: http://127.0.0.1:11434)", configured,
                                key="lt.url")
        elif configured:
            url = configured
            st.caption(f"Endpoint configured on this server: `{configured}` (LMCORE_LLM_URL; "
                       "visitors cannot choose another: LMCORE_ALLOW_LLM_URL is off).")
        else:
            st.info("The endpoint summarizer is disabled on this server: no endpoint is "
                    "configured (LMCORE_LLM_URL), and visitors may not enter one "
                    "(LMCORE_ALLOW_LLM_URL is off, as on a hosted demo, so that nobody can "
                    "make the server send requests to an address of their choosing). Use the "
                    "extractive summarizer, or run your own copy with `make run`.")
        if url is not None:
            chat_model = st.text_input("Chat model", "qwen2.5:0.5b", key="lt.chatmodel")
            api_key = st.text_input("API key (if the server needs one)", type="password",
                                    key="lt.apikey")
    endpoint_off = not kind.startswith("Extractive") and url is None
    reference = st.text_area("Reference summary for ROUGE (optional)", key="lt.reference")
    if st.button("Summarize", type="primary", key="lt.sum.run", disabled=endpoint_off):
        with errors():
            if kind.startswith("Extractive"):
                use_model = model if model is not None else None
                summarizer = ExtractiveSummarizer(use_model, tokenizer if use_model else None,
                                                  salience_weight=weight, mmr_lambda=mmr)
            elif url is None:
                raise ValueError("the endpoint summarizer is disabled on this server "
                                 "(LMCORE_LLM_URL is not set, LMCORE_ALLOW_LLM_URL is off)")
            else:
                summarizer = ChatSummarizer(url, chat_model, api_key or None)
            _submit("longtext-summary", functools.partial(
                run_summary, text=text, summarizer=summarizer, budget=int(budget),
                chunk_size=int(chunk_chars), fan_in=int(fan_in)))
    sjob, ran_on = _latest("longtext-summary")
    if sjob is not None:
        st.caption(f"Summary of {ran_on}.")
        follow(sjob, "lt.sumview")
        if sjob.status == "done" and sjob.result:
            root, method = sjob.result
            st.caption(f"Method: {method}")
            st.markdown(f"**Summary** ({len(root.text)} characters, tree depth {root.level}):")
            st.info(root.text)
            if reference.strip():
                with errors():
                    scores = rouge(reference, root.text)
                    st.dataframe(pd.DataFrame([dict(metric=k, precision=v.precision,
                                                    recall=v.recall, f1=v.f1)
                                               for k, v in scores.items()]),
                                 hide_index=True, key="lt.rouge")
            stack = [(0, root)]
            shown = 0
            while stack and shown < 120:
                depth, node = stack.pop()
                shown += 1
                kind_ = "source chunk" if node.level == 0 else f"summary, level {node.level}"
                label = (f"{'　' * depth}{'└ ' if depth else ''}{kind_} · characters "
                         f"{node.start:,}–{node.end:,} · {len(node.text):,} chars")
                with st.expander(label, expanded=depth == 0):
                    st.code(node.text, language=None, wrap_lines=True)
                stack.extend((depth + 1, c) for c in reversed(node.children))
            if stack:
                st.caption("… more nodes not shown (the tree has more than 120).")

# --- continuation ----------------------------------------------------------------------------
with tab_cont:
    how_computed("lmcore.longtext.continuation:continue_text",
                 cli="lmcore longtext continue FILE --model DIR")
    st.markdown("**Partial processing:** the model continues the text from its last window "
                "only; everything before it is invisible to the model.")
    if model is None:
        st.info(NO_MODEL)
    else:
        c1, c2, c3 = st.columns(3)
        w_model = max_window(model)
        if st.session_state.get("lt.n.window", "unset") != w_model:  # a model with another
            # window: a quarter of it, so the model writes with 3/4 of its view on the text
            st.session_state["lt.n"] = max(1, min(60, (w_model or 128) // 4))
            st.session_state["lt.n.window"] = w_model
        n_new = c1.number_input("Tokens to generate", 1, 500, key="lt.n",
                                help="The model keeps the whole continuation in view, so it "
                                     "sees the last (window − this many) tokens of the text.")
        temp = c2.number_input("Temperature", 0.0, 2.0, 0.8, step=0.1, key="lt.temp")
        seed = c3.number_input("Seed", 0, 10**6, 0, key="lt.seed")
        cwin = None if max_window(model) else c1.number_input(
            "Window (tokens)", 2, 10_000, 128, key="lt.cwin")
        if st.button("Continue", key="lt.cont.run"):
            # one model call per token: seconds for a Transformer, so a job with progress
            _submit("longtext-continue", functools.partial(
                run_continuation, model=model, tokenizer=tokenizer, text=text, n=int(n_new),
                window=int(cwin) if cwin else None, seed=int(seed), temperature=float(temp)))
        cjob, _ = _latest("longtext-continue")
        if cjob is not None:
            follow(cjob, "lt.contview")
            out = cjob.result if cjob.status in ("done", "stopped") else None
            if out is not None:
                st.caption(f"The model saw the last {out.context_tokens:,} tokens (from "
                           f"character {out.context_start:,}); {out.unseen_chars:,} characters "
                           "before them were out of its view.")
                st.code(out.context_text[-1500:] + " ⟶ " + out.text, language=None,
                        wrap_lines=True)
