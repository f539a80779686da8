"""Embeddings: word2vec on the corpus, a Transformer's token table, contextual vectors."""

import functools
import html

import pandas as pd
import streamlit as st

from lmcore.app.embed_charts import contextual_figure, loss_figure, pca_figure
from lmcore.app.embed_job import run_embedding_transformer, run_word2vec
from lmcore.app.frame import errors, page, refresh_sidebar
from lmcore.app.job_view import live_chart, registry
from lmcore.embed.vectors import UNITS, compare_neighbours, pick_unit, suggest_word
from lmcore.embed.word2vec import Word2VecConfig

lab = page(
    "Embeddings", "🧭",
    "Words as vectors. **word2vec** (skip-gram with negative sampling) learns a vector per word "
    "so that σ(u_context · v_word) is high for words seen together and low for random ones: "
    "words used in the same contexts end up pointing the same way, so **cosine similarity** "
    "finds neighbours and **a − b + c** sometimes finds analogies. A Transformer learns such a "
    "table too (its token embeddings), as a side effect of predicting the next token. Both "
    "give a word **one** vector wherever it appears; a Transformer's **hidden states** give "
    "it a different vector in every sentence, which is what replaced word2vec (BERT).",
)
corpus = lab.corpus
split = corpus.split()
train_text = split.train or corpus.text
reg = registry()
TRANSFORMER_NAME = "embeddings transformer"


def session_transformers() -> dict:
    """Session models that are Transformers with a tokenizer (their table and hidden states
    are what this page reads)."""
    from lmcore.models.transformer import TransformerLM

    return {n: m for n, m in lab.models.items()
            if isinstance(m, TransformerLM) and m.tokenizer is not None}


# --- word2vec -------------------------------------------------------------------------------
st.subheader("word2vec on this corpus")
auto = pick_unit(train_text)  # the unit widgets are keyed by it: a new corpus, a new default
c = st.columns(5)
unit = c[0].selectbox("Unit", UNITS, index=UNITS.index(auto), key=f"emb.unit.{auto}",
                      help="word: runs of letters/digits, case kept. char: every letter or "
                           "digit alone. Chinese is written without spaces, so it defaults "
                           "to characters (each 字 is a unit).")
dim = c[1].selectbox("Dimensions", [16, 32, 64, 100], index=2, key="emb.dim")
window = c[2].slider("Window", 1, 8, 4, key="emb.window")
epochs = c[3].slider("Epochs", 1, 10, 3, key="emb.epochs")
w_chars = int(c[4].number_input("Training characters", min(1000, len(train_text)),
                                len(train_text), min(len(train_text), 200_000), step=10_000,
                                key="emb.chars"))
if auto == "char":
    st.caption("This text is mostly Chinese (or another script written without spaces): the "
               "units are single characters.")
if st.button("Train word2vec", key="emb.train", type="primary"):
    with errors():
        cfg = Word2VecConfig(unit=unit, dim=int(dim), window=int(window), epochs=int(epochs),
                             min_count=2 if unit == "char" else 3)
        lab.results["emb.w2v"] = reg.submit("word2vec", functools.partial(
            run_word2vec, text=train_text[:w_chars], config=cfg))
w2v_job = lab.results.get("emb.w2v")
if w2v_job is not None:
    live_chart(w2v_job, loss_figure, key="emb.loss")
w2v = w2v_job.result if w2v_job is not None and w2v_job.status == "done" else None
if w2v is not None:
    st.caption(f"{len(w2v.words):,} units of {w2v.dim} dimensions ({w2v.source}), trained on "
               f"{w_chars:,} characters.")

# --- the Transformer's table -----------------------------------------------------------------
st.subheader("A Transformer's token embeddings")
models = session_transformers()
c1, c2, c3 = st.columns([2, 1, 1])
t_kind = c1.selectbox("Tokenizer of a small Transformer trained here", ["word", "char", "bpe"],
                      index=1 if auto == "char" else 0, key=f"emb.tkind.{auto}",
                      help="2 layers, width 64, context 64, causal LM. A word tokenizer gives "
                           "one row per word, comparable with word2vec's word units.")
t_steps = c2.number_input("Steps", 20, 3000, 300, step=50, key="emb.tsteps")
if c3.button("Train it", key="emb.ttrain"):
    with errors():
        lab.results["emb.tjob"] = reg.submit("embeddings transformer", functools.partial(
            run_embedding_transformer, corpus=corpus, kind=t_kind, steps=int(t_steps)))
tjob = lab.results.get("emb.tjob")
if tjob is not None:
    live_chart(tjob, functools.partial(loss_figure, series="transformer",
                                       title="Transformer training loss (next token)"),
               key="emb.tchart")
    if tjob.status == "done" and lab.results.get("emb.tloaded") != tjob.id:
        with errors():
            from lmcore.models.checkpoint import load_model

            lab.models[f"{TRANSFORMER_NAME} ({t_kind})"] = load_model(tjob.result).lm()
            refresh_sidebar(lab)
            lab.results["emb.tloaded"] = tjob.id
            models = session_transformers()
if not models:
    st.info("No Transformer in this session yet: train a small one here, or on the "
            "**Transformer** page; its token table and hidden states join the panels below.",
            icon="🤖")
tables = {}
if w2v is not None:
    tables[w2v.source] = w2v
t_name = st.selectbox("Transformer", list(models), key="emb.tmodel") if models else None
if t_name is not None:
    with errors():
        from lmcore.embed.token_table import token_vectors

        lm = models[t_name]
        tv = token_vectors(lm.model, lm.tokenizer, train_text[:200_000])
        tables[f"{t_name}: {tv.source}"] = tv
        st.caption(f"{len(tv.words):,} letter/digit tokens of {tv.dim} dimensions from the "
                   f"model's input embedding (wte).")

# --- neighbours, analogies, map --------------------------------------------------------------
st.subheader("Neighbours, analogies and a map")
if not tables:
    st.info("Train word2vec above (a few seconds) or a Transformer to fill this panel.",
            icon="🧭")
else:
    first = next(iter(tables.values()))
    word = st.text_input("Word", suggest_word(first), key="emb.word").strip()
    k = st.slider("Neighbours", 3, 20, 10, key="emb.k")
    with errors():
        cols = st.columns(len(tables))
        for col, (name, table) in zip(cols, tables.items(), strict=True):
            col.markdown(f"**{name}**")
            if word in table.index:
                col.dataframe(pd.DataFrame(table.neighbours(word, k),
                                           columns=["neighbour", "cosine"]), hide_index=True)
            else:
                col.warning(f"{word!r} is not in this table's {len(table.words):,} units.")
        if len(tables) == 2:
            a, b = tables.values()
            if word in a.index and word in b.index:
                cmp = compare_neighbours(a, b, word, k)
                st.caption(
                    f"Within the {cmp['common']:,} units both tables know, the two top-{k} "
                    f"lists of {word!r} share {len(cmp['shared'])}: "
                    f"{', '.join(cmp['shared']) or 'none'}. word2vec is trained only to "
                    "predict neighbours of a word; a Transformer's table is a by-product of "
                    "predicting the next token after a few hundred steps, so its neighbours "
                    "mix meaning and form.")
    st.markdown("**Analogy a − b + c** (3CosAdd over unit-length vectors; a, b, c excluded)")
    src = st.selectbox("Table", list(tables), key="emb.asrc")
    table = tables[src]
    # Python's docs write the constant True and the word true: their offset carries over
    defaults = ("True", "true", "false") if {"True", "true", "false"} <= set(table.index) \
        else tuple(table.words[i] for i in table.top(3))
    c = st.columns(3)
    a_w = c[0].text_input("a", defaults[0], key="emb.a").strip()
    b_w = c[1].text_input("b", defaults[1], key="emb.b").strip()
    c_w = c[2].text_input("c", defaults[2], key="emb.c").strip()
    with errors():
        rows = table.analogy(a_w, b_w, c_w, 8)
        st.dataframe(pd.DataFrame(rows, columns=[f"{a_w} − {b_w} + {c_w} ≈", "cosine"]),
                     hide_index=True)
    n_map = st.slider("Units on the map (most frequent)", 20, 500, 200, step=20, key="emb.n")
    with errors():
        st.plotly_chart(pca_figure(table, int(n_map), highlight=word), key="emb.pca")
        st.caption("PCA keeps the two directions of largest variance of the unit-length "
                   "vectors; the rest of the geometry (the neighbour lists above use all of "
                   "it) is flattened away, so two units close on the map need not be neighbours "
                   "above. Colour: how often the unit occurs (log scale); the title says how "
                   "much of the variance the two axes keep.")

# --- contextual vectors ----------------------------------------------------------------------
st.subheader("Contextual vectors: one word, many sentences")
if t_name is None:
    st.info("This panel needs a Transformer (train one above).", icon="🤖")
else:
    lm = models[t_name]
    c1, c2 = st.columns([2, 1])
    default_word = suggest_word(tables[f"{t_name}: {tv.source}"]) if tables else "the"
    cword = c1.text_input("Word to follow", default_word, key="emb.cword").strip()
    places = c2.slider("Places in the text", 2, 10, 6, key="emb.places")
    with errors():
        from lmcore.embed.contextual import contextual_vectors

        res = contextual_vectors(lm.model, lm.tokenizer, split.test or corpus.text, cword,
                                 int(places))
        st.plotly_chart(contextual_figure(res), key="emb.ctx")
        m = st.columns(2)
        m[0].metric("Mean cosine between places (hidden states)", f"{res.mean_cosine:.3f}")
        m[1].metric("Same measure for the token-table rows", f"{res.static_cosine:.3f}")
        mask = lm.model.config.mask
        st.caption(
            f"The final hidden state (after the last norm) at {cword!r}, averaged over its "
            f"tokens, in {len(res.snippets)} places of the held-out text. The table row is "
            "the same vector every time (cosine 1 when the word is always the same tokens); "
            "the hidden state moves with the text around it. This model is "
            + ("causal: it sees only the text to the left of the word, so what follows "
               "cannot change its vector." if mask != "bidirectional" else
               "bidirectional: both sides of the word shape its vector."))
        for i, (snip, (s, e)) in enumerate(zip(res.snippets, res.spans, strict=True)):
            st.markdown(
                f"**#{i + 1}** <span style='font-family:monospace;font-size:0.85rem'>…"
                f"{html.escape(snip[:s])}<mark>{html.escape(snip[s:e])}</mark>"
                f"{html.escape(snip[e:])}…</span>", unsafe_allow_html=True)
