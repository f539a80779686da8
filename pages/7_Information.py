"""Information: entropy, conditional entropy, self-information, KL, Huffman, real compression."""

import functools
import math
import sys

import pandas as pd
import streamlit as st

from lmcore.app.channel_charts import ber_figure, capacity_figure, cer_figure, diff_html
from lmcore.app.channel_job import run_code_sweep, run_noisy_channel
from lmcore.app.frame import errors, page
from lmcore.app.highlight import heat_html
from lmcore.app.info_charts import (
    coders_figure,
    conditional_figure,
    convergence_figure,
    learning_figure,
)
from lmcore.app.info_job import run_compression, run_convergence, run_learning_curve
from lmcore.app.job_view import follow, registry
from lmcore.app.provenance import how_computed
from lmcore.app.tables import readable
from lmcore.data.builtin import builtin_corpora, markov_order
from lmcore.info.adaptive import AdaptiveLM
from lmcore.info.channel import Channel, estimate_capacity, received_chars
from lmcore.info.codes import default_family
from lmcore.info.compressors import COMPRESSORS, fixed_bytes, missing
from lmcore.info.convergence import ConvergenceConfig
from lmcore.info.entropy import (
    UNITS,
    conditional_entropies,
    merge_spans,
    surprisal,
    symbols,
    text_entropy,
    text_kl,
)
from lmcore.info.huffman import huffman_code
from lmcore.info.mixing import mixing_coder
from lmcore.models.ngram import NGramLM
from lmcore.models.ngram_vocab import tokenizer_vocab

lab = page(
    "Information", "📐",
    "Shannon's quantities measured on your text. **Self-information** I(x) = −log₂ p(x) is "
    "what one outcome costs an optimal code; **entropy** H(p) = E[−log₂ p(X)] is its average "
    "and the floor of every lossless code (Huffman gets within one bit: H ≤ L < H + 1); "
    "**cross-entropy** H(p, q) = E_p[−log₂ q(X)] is what coding p's samples with q's code "
    "costs, which is exactly a language model's held-out loss; **KL** D(p‖q) = H(p, q) − H(p) "
    "≥ 0 is the waste. A language model driving an arithmetic coder turns its cross-entropy "
    "into a real file size, within a few bytes.",
)
corpus = lab.corpus
split = corpus.split()
reg = registry()
ngram_cache = lab.results.setdefault("info.ngrams", {})
LEARN_CODE_CHARS = 1500  # held-out characters the learning curve range-codes per point


def char_models() -> tuple:
    """The corpus's char tokenizer and KN n-grams of orders 1..6 fitted on its training split
    (one count pass, cached in this session)."""
    key = corpus.fingerprint
    if key not in ngram_cache:
        train = split.train or corpus.text
        tok = lab.char_tokenizer()
        grid = NGramLM.fit_grid([tok.encode(train)], tokenizer_vocab(tok),
                                orders=range(1, 7), smoothings=["kn"], tokenizer=tok)
        ngram_cache.clear()
        ngram_cache[key] = (tok, {n: grid[("kn", n)] for n in range(1, 7)})
    return ngram_cache[key]


def coder_models() -> dict:
    """Session models that carry a tokenizer (needed to turn text into ids and back)."""
    return {name: m for name, m in lab.models.items()
            if getattr(m, "tokenizer", None) is not None}


def transformer_names() -> list[str]:
    """Session models that are Transformers (none can exist before their module is loaded,
    so this page does not import torch just to look)."""
    mod = sys.modules.get("lmcore.models.transformer")
    return [] if mod is None else [n for n, m in lab.models.items()
                                   if isinstance(m, mod.TransformerLM)]


def mixable_transformers(tok, text: str) -> list[str]:
    """Session Transformers on the char n-grams' tokenizer: the mixing coder can add them."""
    probe = text[:2000]
    return [n for n in transformer_names() if lab.models[n].vocab_size == tok.vocab_size
            and lab.models[n].tokenizer.encode(probe) == tok.encode(probe)]


def chars_input(where, label: str, available: int, default: int, step: int, key: str,
                **kw) -> int:
    """A character count from min(100, available) to `available` (a tiny text still works)."""
    return int(where.number_input(label, min(100, available), available,
                                  min(available, default), step=step, key=key, **kw))


limit = chars_input(st, "Analyse the first N characters of the corpus", corpus.chars, 100_000,
                    10_000, "info.chars")
text = corpus.text[:limit]
if corpus.chars < 1000:
    st.warning(f"This corpus has only {corpus.chars:,} characters: every panel still runs, but "
               "estimates from so little text are rough (load 10,000+ characters on the "
               "Corpus page for meaningful numbers).", icon="📏")
units = [u for u in UNITS if u != "token" or lab.tokenizer is not None]

# --- entropy at several granularities ---------------------------------------------------
st.subheader("Entropy at several granularities")
how_computed("lmcore.info.entropy:text_entropy")
with errors():
    rows = []
    for u in units:
        te = text_entropy(text, u, lab.tokenizer)
        rows.append({"unit": u if u != "token" else f"token ({lab.tokenizer.kind})",
                     "symbols": te.symbols, "distinct": te.distinct,
                     "H (bits/symbol)": te.bits_per_symbol, "log2 distinct": te.max_bits,
                     "order-0 code (bits/char)": te.bits_per_char})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption("H of the unigram distribution at each granularity. Bits per character = "
               "H × symbols / characters: coarser units fold some context into the symbol, "
               "so a word- or BPE-level order-0 code spends fewer bits per character. "
               + ("" if lab.tokenizer else "Train a tokenizer on the Corpus page to add "
                  "a token row."))

# --- conditional entropy -----------------------------------------------------------------
st.subheader("Conditional entropy against context order")
how_computed("lmcore.info.entropy:conditional_entropies")
K = st.slider("Largest context order K", 1, 12, 8, key="info.K")
with errors():
    ce = conditional_entropies(text, int(K))
    st.plotly_chart(conditional_figure(ce, corpus.entropy_rate), key="info.cond")
    st.info(ce.note, icon="📉")
    if corpus.entropy_rate is not None:
        st.caption(f"This synthetic source's exact entropy rate is {corpus.entropy_rate:.4f} "
                   "bits/char: the dotted line.")

# --- self-information ---------------------------------------------------------------------
st.subheader("Self-information over a passage")
how_computed("lmcore.info.entropy:surprisal", "lmcore.info.entropy:merge_spans")
choices = ["KN char n-gram (training split)", *coder_models()]
left, right = st.columns([2, 1])
which = left.selectbox("Model", choices, key="info.smodel")
order = right.slider("n-gram order", 1, 6, 4, key="info.sorder",
                     disabled=which != choices[0])
passage = st.text_area("Passage (held-out text by default)",
                       (split.test or corpus.text)[:600], height=120, key="info.passage")
with errors():
    if not passage:
        raise ValueError("the passage is empty: type or paste some text to score")
    model = char_models()[1][int(order)] if which == choices[0] else coder_models()[which]
    tok = model.tokenizer
    ids, offsets = tok.encode_offsets(passage)
    bits = surprisal(model, ids)
    if not all(math.isfinite(b) for b in bits):
        raise ValueError("this model gives probability 0 to some token of the passage "
                         "(an MLE model?); choose a smoothed one")
    spans, span_bits = merge_spans(offsets, bits.tolist())
    labels = [f"{passage[s:e]!r}: {b:.2f} bits (p = {2 ** -b:.3g})"
              for (s, e), b in zip(spans, span_bits, strict=True)]
    st.markdown(heat_html(passage, spans, span_bits, labels=labels), unsafe_allow_html=True)
    st.caption(f"{bits.sum():,.1f} bits for {len(passage):,} characters = "
               f"{bits.sum() / len(passage):.3f} bits/char. The more surprising a token "
               "(−log₂ p), the redder it glows; hover for its bits.")

# --- KL divergence ------------------------------------------------------------------------
st.subheader("KL divergence between two texts")
how_computed("lmcore.info.entropy:text_kl")
mode = st.radio("Compare", ["The two halves of the text", "Two texts I type"],
                horizontal=True, key="info.klmode")
if mode.startswith("The two"):
    text_p, text_q = text[: len(text) // 2], text[len(text) // 2:]
else:
    a, b = st.columns(2)
    text_p = a.text_area("Text P", "the cat sat on the mat", key="info.klp")
    text_q = b.text_area("Text Q", "a dog ate my homework", key="info.klq")
c1, c2 = st.columns(2)
kl_unit = c1.selectbox("Unit", units, key="info.klunit")
alpha = c2.number_input("Add-α smoothing (keeps both directions finite)", 0.0, 10.0, 0.5,
                        step=0.1, key="info.alpha")
with errors():
    r = text_kl(text_p, text_q, kl_unit, lab.tokenizer, alpha=float(alpha))
    m = st.columns(4)
    m[0].metric("D(P‖Q) bits/symbol", f"{r.kl_pq:.4f}")
    m[1].metric("D(Q‖P) bits/symbol", f"{r.kl_qp:.4f}")
    m[2].metric("H(P)", f"{r.h_p:.4f}")
    m[3].metric("H(P, Q)", f"{r.cross_pq:.4f}")
    st.caption("D(P‖Q) = H(P, Q) − H(P): the bits per symbol wasted coding P's text with a "
               "code built for Q. The average is taken under P, so it punishes Q for "
               "under-predicting what P uses, not for what P never uses; that is why the two "
               "directions differ. Largest terms p·log₂(p/q):")
    st.dataframe(pd.DataFrame([{"symbol": repr(o), "p": p, "q": q, "p log2 p/q": t}
                               for o, p, q, t in r.top]), hide_index=True)

# --- Huffman ------------------------------------------------------------------------------
st.subheader("Huffman code of the unigram distribution")
how_computed("lmcore.info.huffman:huffman_code")
h_unit = st.selectbox("Unit", units, key="info.hunit")
with errors():
    code = huffman_code(symbols(text, h_unit, lab.tokenizer))
    H, L = code.entropy, code.average_length
    m = st.columns(3)
    m[0].metric("Entropy H", f"{H:.4f} bits")
    m[1].metric("Average code length L", f"{L:.4f} bits")
    m[2].metric("H ≤ L < H + 1", "holds" if code.satisfies_bound() else "VIOLATED")
    if len(code.codes) == 1:
        st.caption("One symbol only: H = 0 but a code word needs one bit, so L = H + 1.")
    table = pd.DataFrame(code.rows()[:80])
    table["symbol"] = table["symbol"].map(repr)
    st.dataframe(table, hide_index=True, height=260)

# --- compression -------------------------------------------------------------------------
st.subheader("Compression of the held-out text")
how_computed("lmcore.info.comparison:compression_table", "lmcore.info.coding:encode",
             "lmcore.info.mixing:mixing_coder", cli="lmcore compress --model DIR FILE")
held = split.test or corpus.text
c1, c2, c3 = st.columns(3)
n_chars = chars_input(c1, "Held-out characters to code", len(held), 3000, 1000, "info.cchars",
                      help="Coding runs the model once per token, in Python: about "
                           "5,000-10,000 characters per second for an n-gram, about 1,000 "
                           "for the mixing coder.")
orders = c2.multiselect("KN char n-gram orders", list(range(1, 7)), list(range(1, 7)),
                        key="info.corders")
adaptive = c3.checkbox("Adaptive model (best n-gram + online learning)", True,
                       key="info.adaptive")
mixing = c3.checkbox("Mixing coder", True, key="info.mixing",
                     help="KN 2-, 4- and 6-grams, the adaptive model, an online PPM, a word "
                          "model and match models (which also read the training split), "
                          "combined per character by an online logistic mixer that learns "
                          "whom to trust as it codes (PAQ/cmix style).")
primed = st.checkbox("Equal terms: also give each compressor the training split first "
                     "(count only the extra bytes)", True, key="info.primed",
                     disabled=not split.test,
                     help="The models below were trained on the training split; a primed "
                          "compressor reads it too, then codes the held-out text: its size "
                          "is size(train + held-out) − size(train).")
session = st.multiselect("Session models", list(coder_models()), list(coder_models()),
                         key="info.cmodels")
if not transformer_names():
    st.info("No Transformer in this session yet: train one on the **Transformer** page (a "
            "few hundred steps take a minute) and it joins this table as `transformer`, coded "
            "like the n-grams.", icon="🤖")
elif mixing:
    tok_now = char_models()[0]
    mixable = mixable_transformers(tok_now, held)
    st.caption(
        f"The mixing coder also mixes in {', '.join(f'`{n}`' for n in mixable)} (a row of "
        "its own): a Transformer predicts differently from counts, and the mixer learns where "
        "to trust it (a Transformer costs about 1 ms a character more)." if mixable else
        "The session's Transformer uses another tokenizer than the character n-grams, so the "
        "mixing coder cannot add it: train one with the **char** tokenizer (Corpus page) to "
        "mix it in.")
if len(held) < 1000:
    st.caption(f"The held-out part has only {len(held):,} characters: fixed headers (gzip 20 "
               "bytes, xz 60, lmcore's about 30) weigh heavily on rates over so little text.")
part = held[:n_chars]
if st.button("Compress and decompress", key="info.compress", type="primary"):
    with errors():
        if not orders and not session and not adaptive and not mixing:
            raise ValueError("choose at least one model to code with")
        tok, grid = char_models()
        models = {f"KN char {n}-gram": grid[n] for n in sorted(orders)}
        if adaptive:
            best = max(orders) if orders else 6
            models[f"adaptive over KN {best}-gram"] = AdaptiveLM(grid[best])
        if mixing:
            models["mixing coder"] = mixing_coder([grid[n] for n in (2, 4, 6)],
                                                  tok.encode(split.train))
            for name in mixable_transformers(tok, part):
                models[f"mixing coder + {name}"] = mixing_coder(
                    [grid[n] for n in (2, 4, 6)], tok.encode(split.train),
                    transformer=lab.models[name])
        models.update({name: coder_models()[name] for name in session})
        prime = split.train if primed and split.test else None
        lab.results["info.cjob"] = reg.submit("compression", functools.partial(
            run_compression, text=part, models=models, prime=prime))


def _trip(r) -> str:
    if r.error is not None:
        return "⚠️ not coded"
    return "✅ identical" if r.round_trip else "❌ differs"


def _show_compression(job) -> None:
    rows = job.result
    st.plotly_chart(coders_figure(rows), key="info.coders")
    df = pd.DataFrame([{
        "coder": r.coder, "saw training text": "yes" if r.saw_training else "no",
        "bits/char": r.bits_per_char, "bits/byte": r.bits_per_byte,
        "cross-entropy (bits/char)": r.cross_entropy, "size (bytes)": r.size,
        "model size (KB)": r.model_bytes / 1024, "adjusted bits/char": r.adjusted_bits_per_char,
        "encode s": r.encode_s, "decode s": r.decode_s, "round trip": _trip(r),
        "sha256 in": r.sha_in[:16], "sha256 out": r.sha_out[:16], "note": r.error or ""}
        for r in rows])
    st.dataframe(readable(df, digits=4), hide_index=True)
    heavy = [(r.coder, fixed_bytes(r.coder)) for r in rows
             if r.coder in COMPRESSORS and r.size and fixed_bytes(r.coder) > 0.2 * r.size]
    chars = next((round(8 * r.size / r.bits_per_char) for r in rows if r.bits_per_char > 0), 0)
    if heavy and chars:
        st.caption("Fixed costs weigh on a short text: " + "; ".join(
            f"{name} writes {n:,} bytes even for one character" for name, n in heavy)
            + f" (over these {chars:,} characters that alone is "
            f"{8 * max(n for _, n in heavy) / chars:.2f} bits/char). Code more characters to "
            "see what the compressor itself does; the primed rows pay it once, for the "
            "training text.")
    for r in rows:
        if r.error is not None:
            st.warning(f"`{r.coder}` could not code this text: {r.error}", icon="⚠️")
    seen = [r.coder for r in rows if r.saw_training]
    st.caption("Sizes are measured: every file, the compressors' too, is decoded back and the "
               "output hashed. Adjusted bits/char adds the model's own size (Delétang et al. "
               "2023, 'Language Modeling Is Compression'): a decoder needs the model too. "
               + (f"Rows that saw the training text: {', '.join(seen)}. Compare those with "
                  "each other: a compressor that did not see it starts from nothing, while "
                  "every model here learned from it." if seen else
                  "No row saw the training text."))
    gone = missing()
    if gone:
        st.caption("Not measured here: " + "; ".join(f"{k}: {v}" for k, v in gone.items()))


cjob = lab.results.get("info.cjob")
if cjob is not None:
    follow(cjob, "info.c")
    if cjob.status == "done":
        _show_compression(cjob)


# --- synthetic source ----------------------------------------------------------------------
st.subheader("A source with a known entropy rate")
how_computed("lmcore.info.comparison:learning_curve",
             "lmcore.info.convergence:transformer_convergence", "lmcore.data.markov:MarkovSource")
synthetic = {name: make for name, make in builtin_corpora().items() if "Markov" in name}
if corpus.entropy_rate is not None:
    synthetic = {corpus.name: lambda: corpus, **synthetic}
c1, c2 = st.columns([2, 1])
src_name = c1.selectbox("Source", list(synthetic), key="info.source")
curve_orders = c2.multiselect("n-gram orders", list(range(1, 7)), [1, 2, 3, 4],
                              key="info.sorders")
if st.button("Fit on growing text and measure", key="info.curve"):
    with errors():
        src = synthetic[src_name]()
        sp = src.split()
        sizes = [s for s in (300, 1000, 3000, 10_000, 30_000, 100_000) if s < len(sp.train)]
        sizes.append(len(sp.train))
        rate = src.entropy_rate
        lab.results["info.ltext"] = sp.test[:20_000]
        lab.results["info.ljob"] = reg.submit("entropy-rate curve", functools.partial(
            run_learning_curve, train=sp.train, test=sp.test[:20_000], sizes=sizes,
            orders=list(curve_orders), entropy_rate=rate, code_chars=LEARN_CODE_CHARS))
ljob = lab.results.get("info.ljob")
if ljob is not None:

    ljob_text = lab.results.get("info.ltext", "")
    follow(ljob, "info.l")
    if ljob.status == "done":
        points, rate = ljob.result
        st.plotly_chart(learning_figure(points, rate), key="info.learning")
        gap = max(abs(p.code_bits_per_char - p.code_cross_entropy) for p in points
                  if p.code_cross_entropy is not None) if points else 0.0
        st.caption(
            f"Cross-entropy on {len(ljob_text):,} held-out characters (solid) and the "
            f"real range-coded length of the first {LEARN_CODE_CHARS:,} of them (dashed) "
            "fall toward the true entropy rate (dotted) once the order reaches the "
            "source's and the training text is large enough; a too-small order stays "
            "above it however much text it sees. The two lines are measured on different "
            "amounts of text, so the dashed one can sit a little below the solid one: a "
            "short slice can be easier than the whole held-out text (a sample, against "
            "what is close to the expectation). On the same slice the coder is within "
            f"{gap:.4f} bits/char of the model's cross-entropy (hover a dashed point for "
            "it). A dip a hair below the rate is sampling noise of the finite held-out "
            "text, not a model beating the source.")


# --- a Transformer on the synthetic source -------------------------------------------------
def _order_note(k: int | None) -> str:
    """What the source's order means for a Transformer learning it (k: the order, if known)."""
    if k is None:
        return ""
    if k == 1:
        return ("This source is of order 1: the next character depends on the previous one "
                "only, the easiest thing for attention to find, and the bigram above counts "
                "its way to the rate with a few thousand characters.")
    return (f"This source is of order {k}: the next character depends on the {k} previous "
            f"ones together, and fewer of them may say almost nothing (check the plug-in "
            f"H(X | k previous) in the conditional-entropy panel on that corpus). Where they "
            f"do, gradient descent has no slope to follow until the model reads all {k} "
            f"together, so a small budget stalls near the entropy of no context while the "
            f"{k + 1}-gram above counts its way to the rate.")


st.markdown("**A Transformer learning the source.** A tiny char Transformer trains on the "
            "source above; every few steps its held-out cross-entropy is measured and a slice "
            "of held-out text is range-coded with it, so both curves are real numbers.")
c1, c2, c3 = st.columns(3)
t_steps = c1.number_input("Training steps", 10, 5000, 300, step=50, key="info.tsteps")
t_every = c2.number_input("Measure every (steps)", 5, 1000, 30, step=5, key="info.tevery")
t_width = c3.selectbox("Width", [16, 32, 64], index=1, key="info.twidth")
if st.button("Train a Transformer and measure", key="info.tcurve"):
    with errors():
        cfg = ConvergenceConfig(steps=int(t_steps), measure_every=int(t_every),
                                n_embd=int(t_width))
        src = synthetic[src_name]()
        sp = src.split()
        lab.results["info.trate"] = src.entropy_rate
        lab.results["info.tsrc"] = src.name

        lab.results["info.tjob"] = reg.submit(
            "Transformer entropy-rate curve", functools.partial(
                run_convergence, train=sp.train, test=sp.test, entropy_rate=src.entropy_rate,
                config=cfg))
tjob = lab.results.get("info.tjob")
if tjob is not None:
    t_rate = lab.results.get("info.trate")
    follow(tjob, "info.tchart", lambda snap: convergence_figure(snap.get("curve", {}), t_rate))
    res = tjob.result
    if res is not None and res.points:
        last = res.points[-1]
        gap = f", {last.cross_entropy - t_rate:+.3f} from the rate" if t_rate else ""
        st.caption(
            f"After {last.step:,} steps ({res.parameters:,} parameters): held-out "
            f"cross-entropy {last.cross_entropy:.3f} bits/char{gap}; range-coded payload "
            f"{last.code_bits_per_char:.3f} bits/char on {res.chars_coded:,} held-out "
            f"characters (the model's own cross-entropy there: "
            f"{last.code_cross_entropy:.3f}), round trip "
            f"{'verified' if res.round_trip else 'FAILED'}. The coded slice is a sample of "
            "the held-out text, so the dashed line may sit a little below the solid one; on "
            "the slice itself the payload is at or just above the model's cross-entropy. "
            "The gap to the dotted line is "
            "the KL divergence per character between source and model: what it has not "
            "learned yet. " + _order_note(markov_order(lab.results.get("info.tsrc", ""))))

# --- Shannon's second theorem: noisy channels and codes --------------------------------------
st.subheader("Shannon's second theorem: sending your text through a noisy channel")
st.markdown(
    "A **binary symmetric channel** flips each bit with probability p; a **binary erasure "
    "channel** loses it (and says so) with probability e. Their **capacity**, the most "
    "information one use can carry, is C = 1 − H(p) and C = 1 − e bits. Shannon's noisy-channel "
    "theorem: every rate R < C can be sent with an error probability as small as we like (with "
    "long enough codes), and no rate above C can. Below, the lines are the formulas and the "
    "points are measured: random bits are sent and the mutual information I(X; Y) of what went "
    "in and what came out is counted.")
c1, c2, c3 = st.columns(3)
ch_kind = c1.radio("Channel", ["bsc", "bec"], horizontal=True, key="info.chkind",
                   format_func=lambda k: {"bsc": "binary symmetric", "bec": "binary erasure"}[k])
ch_p = c2.slider("Error / erasure rate", 0.0, 0.5, 0.05, step=0.01, key="info.chp")
ch_chars = chars_input(c3, "Characters of the corpus to send", corpus.chars, 2000, 500,
                       "info.chchars", help="Each character is 8+ bits (UTF-8); the sweep "
                                            f"sends them with {len(default_family())} codes.")
with errors():
    channel = Channel(ch_kind, float(ch_p))
    measured = [estimate_capacity(Channel(k, p), bits=20_000, seed=i)
                for k in ("bsc", "bec") for i, p in enumerate((0.01, 0.05, 0.1, 0.2, 0.3, 0.5))]
    st.plotly_chart(capacity_figure(measured, channel), key="info.capacity")
    st.markdown(
        f"**Codes on your text.** The first {ch_chars:,} characters become "
        f"{8 * len(text[:ch_chars].encode('utf-8')):,} bits and cross {channel.label} "
        f"(capacity {channel.capacity:.3f}) inside repetition codes (majority vote), Hamming "
        "(7, 4) (syndrome decoding: every single flipped bit in a block of 7 is corrected) and "
        "seeded random linear codes of length n = 8, 16, 24 decoded by maximum likelihood "
        "(nearest codeword, or the coset leader of the syndrome; on the erasure channel the "
        "parity checks solved over GF(2)). Random codes are Shannon's own proof device: at a "
        "rate below capacity, a longer block pushes the error down; above it, none does.")
    if st.button("Send the text through every code", key="info.chrun", type="primary"):
        lab.results["info.chjob"] = reg.submit("channel codes", functools.partial(
            run_code_sweep, text=text[:ch_chars], kind=ch_kind, p=float(ch_p)))
chjob = lab.results.get("info.chjob")
if chjob is not None:
    follow(chjob, "info.ch")
    if chjob.status == "done" and chjob.result:
        runs = chjob.result
        st.plotly_chart(ber_figure(runs), key="info.ber")
        st.dataframe(pd.DataFrame([r.as_row() for r in runs]), hide_index=True)
        below = [r for r in runs if r.code.startswith("random") and r.below_capacity]
        best = min(below, key=lambda r: r.ber, default=None)
        if best is not None:
            st.caption(
                f"Measured, not drawn: {runs[0].message_bits:,} message bits per code. "
                f"Uncoded, {runs[0].ber:.2%} of the bits arrive wrong; the best random code "
                f"below capacity, {best.code} at rate {best.rate:.2f}, leaves "
                f"{best.ber:.2%}. An open marker means no error was seen; it sits at the "
                "95% upper bound (3 / bits). Exact ML decoding limits n to 24 here, so the "
                "approach to the capacity line is visible but partial.")
        pick = st.selectbox("Show the received text of", [r.code for r in runs],
                            index=min(5, len(runs) - 1), key="info.chshow")
        run = next(r for r in runs if r.code == pick)
        sent = text[:ch_chars]
        st.markdown(diff_html(sent, received_chars(run.decoded, sent)),
                    unsafe_allow_html=True)


st.markdown(
    "**The noisy channel in language.** Speech recognition, OCR and spelling correction treat "
    "what they observe as a corrupted copy of a text and decode "
    "argmax P(text) · P(observed | text): the language model supplies P(text). Here held-out "
    "text is corrupted by a known character error model (each character replaced, with "
    "probability p, by another one chosen uniformly) and recovered by Viterbi search with a "
    "KN character n-gram of order n as the prior. A unigram prior has no context and can "
    "almost never overrule the channel; with a few characters of context the model starts "
    "to hear the text through the noise (which order does best on your text is measured "
    "below, and with little training text the longest is not always the best).")
c1, c2, c3 = st.columns(3)
nc_rate = c1.slider("Character error rate", 0.01, 0.3, 0.05, step=0.01, key="info.ncrate")
nc_chars = chars_input(c2, "Held-out characters to corrupt", len(held), 600, 100,
                       "info.ncchars", help="Decoding calls the n-gram once per kept "
                                            "state and character: ~1,000 characters take "
                                            "a few seconds per order.")
nc_beam = c3.number_input("Viterbi beam (states kept)", 1, 64, 8, key="info.ncbeam")
if st.button("Corrupt and decode, n = 1..5", key="info.ncrun"):
    with errors():
        lab.results["info.ncjob"] = reg.submit("noisy-channel decoding", functools.partial(
            run_noisy_channel, train_text=split.train or corpus.text, held_text=held[:nc_chars],
            error_rate=float(nc_rate), orders=[1, 2, 3, 4, 5], beam=int(nc_beam)))
ncjob = lab.results.get("info.ncjob")
if ncjob is not None:
    follow(ncjob, "info.nc")
    res = ncjob.result if ncjob.status == "done" else None
    if res is not None and res.rows:
        st.plotly_chart(cer_figure(res.rows), key="info.cer")
        st.dataframe(pd.DataFrame([r.as_row() for r in res.rows]), hide_index=True)
        best = min(res.rows, key=lambda r: r.cer_after)
        st.caption(f"CER of the corrupted text {res.rows[0].cer_before:.2%}; the best "
                   f"prior, n = {best.order}, brings it to {best.cer_after:.2%} "
                   f"({best.fixed} errors fixed, {best.broken} introduced). Red marks "
                   "characters that differ from the original; hover shows what was there.")
        a, b = st.columns(2)
        a.markdown("**Observed (corrupted)**")
        a.markdown(diff_html(res.original, res.observed), unsafe_allow_html=True)
        b.markdown(f"**Decoded with the {best.order}-gram prior**")
        b.markdown(diff_html(res.original, best.decoded), unsafe_allow_html=True)

