"""N-gram models: fit every order with each smoothing and see the n trade-off."""

import functools
import math

import pandas as pd
import streamlit as st

from lmcore.app.frame import errors, page, refresh_sidebar
from lmcore.app.job_view import follow, registry
from lmcore.app.ngram_charts import (
    next_token_figure,
    smoothing_label,
    tradeoff_figure,
    turn_summary,
    unseen_figure,
)
from lmcore.app.ngram_job import FitRequest, fit_job
from lmcore.app.provenance import how_computed
from lmcore.app.tables import readable
from lmcore.models.arpa import arpa_string
from lmcore.models.ngram import FALLBACK_DISCOUNTS, MAX_ORDER, SMOOTHINGS

lab = page(
    "N-gram models", "🔢",
    "An n-gram model predicts the next token from the previous n − 1 only: "
    "$p(w_t \\mid w_{t-n+1} \\dots w_{t-1}) = c(w_{t-n+1} \\dots w_t) / c(w_{t-n+1} \\dots w_{t-1})$"
    " by maximum likelihood. **If n is too small the model cannot capture long-range "
    "dependencies; if n is too large we cannot get good estimates of the probabilities**: "
    "most long n-grams of new text were never seen. Smoothing (add-k, Kneser-Ney, stupid "
    "backoff) moves probability to the unseen ones. Fit several orders at once and watch "
    "training perplexity fall while held-out perplexity of a crudely smoothed model (add-k) "
    "turns back up; Kneser-Ney, which backs off to shorter contexts where the long one was "
    "never seen, only levels off: its longer orders stop paying.",
)

corpus = lab.corpus
split = corpus.split()
held_text = split.test or split.valid
if not held_text:
    st.warning("This corpus is too short to hold out a test split; it is scored on its "
               "training text only.")
    held_text = split.train

KINDS = ["char", "word", "bpe"]
choices = KINDS + ([f"current ({lab.tokenizer.kind}, from the Corpus page)"]
                   if lab.tokenizer is not None else [])
c1, c2, c3 = st.columns([1, 1, 2])
tok_choice = c1.selectbox("Tokenizer", choices, key="ngram.tokenizer",
                          help="char and word tokenizers are trained on the training split; "
                               "bpe with the vocabulary size beside")
bpe_vocab = c2.number_input("BPE vocabulary", 100, 20_000, 1000, step=100, key="ngram.vocab",
                            disabled=tok_choice != "bpe")
orders = c3.slider("Orders n", 1, MAX_ORDER, (1, MAX_ORDER), key="ngram.orders")
c4, c5, c6 = st.columns([2, 1, 1])
smoothings = c4.multiselect("Smoothing", list(SMOOTHINGS), default=list(SMOOTHINGS),
                            format_func=smoothing_label, key="ngram.smoothings")
k = c5.number_input("add-k: k", value=1.0, step=0.1, format="%.3f", key="ngram.k",
                    help="k = 1 is Laplace; must be > 0")
alpha = c6.number_input("stupid backoff: α", value=0.4, step=0.05, key="ngram.alpha")


def _cached_tokenizer():
    """The chosen tokenizer if this session already has it (trained by an earlier fit)."""
    if tok_choice.startswith("current"):
        return lab.tokenizer
    return lab.results.get("ngram.tokenizers", {}).get(_tokenizer_key())


def _tokenizer_key() -> tuple:
    return (corpus.fingerprint, tok_choice, int(bpe_vocab) if tok_choice == "bpe" else None)


reg = registry()
if st.button("Fit all orders", type="primary", key="ngram.fit"):
    with errors():
        request = FitRequest(
            corpus=corpus.fingerprint, train_text=split.train, held_text=held_text,
            kind=lab.tokenizer.kind if tok_choice.startswith("current") else tok_choice,
            orders=(int(orders[0]), int(orders[1])), smoothings=tuple(smoothings), k=float(k),
            alpha=float(alpha), vocab_size=int(bpe_vocab) if tok_choice == "bpe" else None,
            tokenizer=_cached_tokenizer())
        lab.results["ngram.job"] = reg.submit("n-gram fit",
                                              functools.partial(fit_job, request=request))
        lab.results["ngram.tokenizer_key"] = (None if tok_choice.startswith("current")
                                              else _tokenizer_key())

job = lab.results.get("ngram.job")
if job is not None:
    follow(job, "ngram")
    done = job.result
    if job.done and done is not None and lab.results.get("ngram", {}).get("job") != job.id:
        lab.results["ngram"] = dict(job=job.id, corpus=done.request.corpus,
                                    tokenizer=done.tokenizer, tradeoff=done.tradeoff)
        key = lab.results.pop("ngram.tokenizer_key", None)
        if key is not None:  # the next fit with the same choice skips training it
            lab.results.setdefault("ngram.tokenizers", {})[key] = done.tokenizer
        best = done.tradeoff.best("kn")
        if best is not None:
            lab.models[f"n-gram KN n={best[1]} ({done.tokenizer.kind})"] = \
                done.tradeoff.models[best]
            refresh_sidebar(lab)

res = lab.results.get("ngram")
if not res or res["corpus"] != corpus.fingerprint:
    if job is None or not job.active:
        st.info("Choose a tokenizer, a range of orders and the smoothings, then press **Fit "
                "all orders**. Fitting is vectorised counting: a few seconds for the whole "
                "range, in the background (Stop keeps the models finished so far).")
    st.stop()

tok, fit = res["tokenizer"], res["tradeoff"]
models, rows = fit.models, fit.rows
st.subheader("The trade-off")
how_computed("lmcore.app.ngram_job:run_fit", "lmcore.models.ngram:tradeoff",
             "lmcore.models.ngram:NGramLM.fit_grid",
             cli="lmcore ngram train FILE --order 5 --smoothing kn --eval TEST")
if not fit.complete:
    st.warning(f"The fit stopped early: showing the {len(models)} of {fit.planned} models "
               "finished before it stopped.")
fell = {}  # the same orders fell back in several models: one note for all of them
for n, fell_back in fit.fallbacks().items():
    fell.setdefault(tuple(fell_back), []).append(n)
for fell_back, ns in fell.items():
    st.warning(f"Kneser-Ney, n = {', '.join(map(str, ns))}: too few n-grams of order "
               f"{', '.join(map(str, fell_back))} were seen exactly 1, 2 or 3 times to estimate "
               "the discounts $D_k = k - (k + 1)\\,Y\\,t_{k+1} / t_k$, so they fell back to "
               "lmplz's --discount_fallback values "
               f"{', '.join(f'{d:g}' for d in FALLBACK_DISCOUNTS)}.", icon="ℹ️")
st.caption(f"{tok.kind} tokens · trained on {len(split.train):,} characters, held-out "
           f"{len(held_text):,} characters. Dashed: training text, solid: held-out text.")
left, right = st.columns(2)
left.plotly_chart(tradeoff_figure(rows, "perplexity", "Perplexity per token",
                                  "perplexity (log scale)", log_y=True), key="ngram.ppl")
right.plotly_chart(tradeoff_figure(rows, "bits_per_char", "Bits per character",
                                   "bits / char"), key="ngram.bpc")
st.markdown(turn_summary(rows))
if corpus.entropy_rate is not None:
    st.info(f"The source's true entropy rate is {corpus.entropy_rate:.4f} bits/char: no model "
            "beats it on held-out text.")

mle_inf = [r for r in rows if r["smoothing"] == "mle" and r["split"] == "held-out"
           and not math.isfinite(r["perplexity"])]
unseen = fit.unseen
c1, c2 = st.columns([1, 1])
c1.plotly_chart(unseen_figure(unseen), key="ngram.unseen")
if mle_inf:
    first = min(mle_inf, key=lambda r: r["order"])
    c2.markdown(
        f"**Why MLE breaks to ∞.** From n = {first['order']} on, the held-out text contains "
        f"n-grams the training text never had ({100 * unseen.get(first['order'], 0):.1f}% of "
        f"the held-out {first['order']}-grams). MLE gives each of them probability 0, and a "
        f"single zero makes the whole text's probability 0: perplexity = ∞ "
        f"({first['zero_prob']:,} of {first['tokens']:,} tokens had p = 0 at n = "
        f"{first['order']}). Smoothing reserves probability for the unseen.")
else:
    c2.markdown("**Unseen n-grams.** The bars show the share of held-out n-grams never seen "
                "in training. An unsmoothed (MLE) model gives each of them probability 0, so "
                "its held-out perplexity becomes infinite as soon as one appears; add MLE to "
                "the smoothings to see it.")

table = pd.DataFrame(rows)
table["smoothing"] = table["smoothing"].map(smoothing_label)
with st.expander("All numbers", expanded=False):
    st.dataframe(readable(table), hide_index=True, width="stretch")
    st.download_button("Download (CSV)", table.to_csv(index=False), "ngram_tradeoff.csv",
                       "text/csv", key="ngram.csv")

st.subheader("Counts per order")
how_computed("lmcore.models.ngram:NGramLM.fit_grid",
             note="Counts are vectorised: one pass over the token ids per order.")
counts = fit.counts
# the unigram table has a row per vocabulary entry, seen or not: count only those seen
st.dataframe(pd.DataFrame([{
    "n": n, "distinct n-grams": int((c > 0).sum()), "n-gram tokens": int(c.sum()),
    "seen once": int((c == 1).sum()),
    "share seen once": f"{(c == 1).sum() / max(1, (c > 0).sum()):.1%}",
    "held-out n-grams unseen": f"{unseen.get(n, float('nan')):.1%}",
} for n, c in enumerate(counts, start=1)]), hide_index=True, width="stretch")

st.subheader("Next-token distribution")
how_computed("lmcore.models.ngram:NGramLM.top_next", "lmcore.models.ngram:NGramLM.context_rows",
             "lmcore.models.arpa:arpa_string", cli="lmcore ngram eval MODEL.arpa FILE")
keys = sorted(models, key=lambda sn: (SMOOTHINGS.index(sn[0]), sn[1]))
c1, c2 = st.columns([1, 2])
default = max((i for i, sn in enumerate(keys) if sn[0] == "kn"), default=len(keys) - 1)
which = c1.selectbox("Model", keys, index=default, key="ngram.model",
                     format_func=lambda sn: f"{smoothing_label(sn[0])}, n = {sn[1]}")
context = c2.text_input("Context", held_text.strip()[:40], key="ngram.context",
                        help="the model sees only its last n − 1 tokens; unknown tokens back "
                             "off to shorter contexts")
with errors():
    model = models[which]
    ids = tok.encode(context)
    top = model.top_next(ids, k=15)
    if not top:
        raise ValueError("this context has no possible continuation under the model")
    names = tok.token_strings([i for i, _ in top])
    seen = model.context_rows(ids)
    st.plotly_chart(next_token_figure(names, [p for _, p in top],
                                      f"p(next | last {max(model.order - 1, 0)} tokens)"),
                    key="ngram.next")
    st.caption(f"The model looks back at most n − 1 = {model.order - 1} tokens; the longest "
               f"context suffix it saw in training has {len(seen)} (the start-of-text marker "
               "counts as one). A shorter one means it backed off.")
    d1, d2 = st.columns(2)
    stem = f"{which[0]}-{which[1]}gram"
    d1.download_button(
        f"Download this model (ARPA, {sum(model.ngram_counts()):,} n-grams)",
        data=lambda: arpa_string(model), file_name=f"{stem}.arpa", mime="text/plain",
        on_click="ignore", key="ngram.arpa",
        help="Readable by KenLM, SRILM and `lmcore ngram eval MODEL.arpa FILE`")
    d2.download_button(
        "Download its tokenizer (JSON)", data=lambda: tok.to_json(),
        file_name=f"{stem}.tokenizer.json", mime="application/json", on_click="ignore",
        key="ngram.tokjson", help="keep it beside the ARPA file as MODEL.tokenizer.json")

st.subheader("Generated text per order")
how_computed("lmcore.models.ngram:NGramLM.generate")
prompt = st.text_input("Prompt (optional)", "", key="ngram.prompt",
                       help="empty: start where a text starts, after the start-of-text marker")
c1, c2, c3, c4 = st.columns(4)
gen_kinds = list(dict.fromkeys(s for s, _ in keys))
gen_s = c1.selectbox("Smoothing", gen_kinds, format_func=smoothing_label,
                     index=gen_kinds.index("kn") if "kn" in gen_kinds else 0,
                     key="ngram.gen_smoothing")
temperature = c2.slider("Temperature", 0.0, 2.0, 1.0, 0.1, key="ngram.temperature")
length = c3.number_input("Tokens", 5, 400, 80, key="ngram.length")
seed = c4.number_input("Seed", 0, 1_000_000, 0, key="ngram.seed")
with errors():
    gen = [(n, m) for (s, n), m in sorted(models.items(), key=lambda kv: kv[0][1])
           if s == gen_s]
    cols = st.columns(len(gen))
    for col, (n, m) in zip(cols, gen, strict=True):
        out = m.generate(tok.encode(prompt), int(length), seed=int(seed),
                         temperature=float(temperature))
        col.markdown(f"**n = {n}**")
        col.text(prompt + tok.decode(out) if out or prompt else "(stopped at once)")
