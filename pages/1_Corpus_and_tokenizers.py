"""Corpus & tokenizers: what text the lab uses, how it was decoded, how it splits into tokens."""

import functools

import pandas as pd
import streamlit as st

from lmcore.app.charts import frequency_bar, grouped_bars
from lmcore.app.corpus_picker import corpus_picker
from lmcore.app.frame import errors, page, refresh_sidebar
from lmcore.app.highlight import repairs_html, token_boundaries_html, token_groups
from lmcore.app.job_view import follow, registry
from lmcore.app.provenance import how_computed
from lmcore.app.tables import readable
from lmcore.app.tokenizer_job import run_tokenizers
from lmcore.data.corpus import load_text
from lmcore.data.frequency import char_frequency, token_frequency
from lmcore.data.repairs import repair_marks
from lmcore.data.tokenizers import MIN_VOCAB, Tokenizer, tokenizer_stats, train_tokenizer

KINDS = ["char", "byte", "word", "bpe", "wordpiece", "unigram"]
SIZED = ("bpe", "wordpiece", "unigram")  # the kinds the vocabulary box applies to

lab = page(
    "Corpus & tokenizers", "📚",
    "Everything starts from bytes. lmcore detects the encoding, repairs mojibake, and then "
    "cuts the text into **tokens**: characters, bytes, words or learned subwords. A model's "
    "per-token perplexity depends on this choice; **bits per character** does not, which is "
    "why the lab reports it everywhere.",
)

corpus_picker(lab, key="corpus")
c = lab.corpus
split = c.split()

st.subheader("The text")
cols = st.columns(5)
cols[0].metric("Characters", f"{c.chars:,}")
cols[1].metric("Lines", f"{c.lines:,}")
cols[2].metric("UTF-8 bytes", f"{c.bytes_utf8:,}")
cols[3].metric("Encoding", c.encoding)
cols[4].metric("Fingerprint", c.fingerprint[:10])
st.caption(f"Deterministic split: train {len(split.train):,} · validation {len(split.valid):,} · "
           f"test {len(split.test):,} characters.")
if c.entropy_rate is not None:
    st.info(f"This synthetic source has an exactly known entropy rate of "
            f"**{c.entropy_rate:.4f} bits per character**: no model can do better on average.")
with st.expander("Encoding and repair report", expanded=bool(c.repairs)):
    st.write(f"Source: {c.source}; detected encoding: `{c.encoding}`.")
    st.write("\n".join(f"- {r}" for r in c.repairs) if c.repairs else "No repairs were needed.")
marks_key = ("corpus.marks", c.fingerprint)
if lab.results.get("corpus.marks", (None,))[0] != marks_key:
    lab.results["corpus.marks"] = (marks_key, repair_marks(c.text, c.decoded))
marks = lab.results["corpus.marks"][1]
n_fixed = sum(m.kind == "repaired" for m in marks)
n_lost = sum(m.kind == "lost" for m in marks)
with st.expander(f"Read the loaded text ({n_fixed:,} repaired spans in green, {n_lost:,} lost "
                 "characters in red)" if marks else "Read the loaded text",
                 expanded=bool(marks) and c.source == "upload"):
    if marks:
        st.caption("Each line that holds a repair or a lost character, with its line number. "
                   "Hover a green span to see what the file had there before the repair; a "
                   "red □ is a character whose bytes the file no longer holds (U+FFFD).")
    else:
        st.caption("Nothing in this text was repaired or lost; its beginning:")
    st.markdown(repairs_html(c.text, marks), unsafe_allow_html=True)
    stem = c.name.rsplit(".", 1)[0] if "." in c.name else c.name
    st.download_button("Download the text as loaded (UTF-8)", c.text.encode("utf-8"),
                       f"{stem}.utf8.txt", "text/plain; charset=utf-8", key="corpus.download",
                       help="exactly the text every page uses: decoded, repaired, newlines LF")
st.plotly_chart(frequency_bar(char_frequency(c.text), "Character frequency"),
                key="char_freq")
how_computed(load_text, repair_marks, char_frequency, cli="lmcore corpus info FILE",
             note="load_text decodes, repairs and normalises the bytes; the built-in corpora "
                  "come from lmcore/data/builtin.py.")

st.subheader("Tokenizers")
st.markdown("Train tokenizers on the training split and compare them on the test split. "
            "*chars/token* says how much text one model step sees; *unk share* says how much "
            "text a tokenizer cannot represent.")
left, right = st.columns([2, 1])
kinds = left.multiselect("Kinds", KINDS, default=["char", "byte", "bpe", "unigram"],
                         key="corpus.kinds")
vocab = int(right.number_input(
    "Vocabulary size (bpe, wordpiece, unigram)", 100, 50_000, 1000, step=100,
    key="corpus.vocab", help=f"Byte-level BPE needs at least {MIN_VOCAB['bpe'][0]} "
                             f"({MIN_VOCAB['bpe'][1]}); a smaller size is raised to that."))
cache = lab.results.setdefault("tokenizers", {})
reg = registry()
if st.button("Train tokenizers", type="primary", key="corpus.train"):
    sizes, notes = {}, []
    for kind in kinds:
        size = None
        if kind in SIZED:
            least, why = MIN_VOCAB[kind]
            size = max(vocab, least) if kind == "bpe" else vocab
            if size != vocab:
                notes.append(f"{kind}: vocabulary size raised from {vocab:,} to {size:,}, the "
                             f"least a byte-level BPE can have ({why}).")
        sizes[kind] = size
    job = reg.submit("tokenizers", functools.partial(run_tokenizers, text=split.train,
                                                     sizes=sizes))
    lab.results["corpus.tokjob"] = (job.id, c.fingerprint, notes)
job_id, job_corpus, notes = lab.results.get("corpus.tokjob", (None, None, []))
tok_job = reg.get(job_id) if job_id is not None and job_corpus == c.fingerprint else None
if tok_job is not None:
    for note in notes:
        st.warning(note)
    follow(tok_job, "corpus.tok")
    done = tok_job.result
    if done is not None:
        if lab.results.get("corpus.tokdone") != tok_job.id:  # once: into this session's cache
            for kind, tok in done.tokenizers.items():
                cache[(job_corpus, kind)] = tok
            lab.results["corpus.tokdone"] = tok_job.id
        for why in done.errors.values():  # one kind refused: the others trained
            st.error(why, icon="⚠️")
how_computed(run_tokenizers, train_tokenizer, tokenizer_stats, Tokenizer.encode_offsets,
             token_groups,
             cli="lmcore tokenize FILE --compare char,byte,bpe,unigram")
trained = {k: t for (fp, k), t in cache.items() if fp == c.fingerprint}
if trained:
    stats = {k: tokenizer_stats(t, split.test or split.train) for k, t in trained.items()}
    table = pd.DataFrame([s.as_dict() for s in stats.values()])
    st.dataframe(readable(table, percent=("unk_share",)), hide_index=True, width="stretch")
    st.download_button("Download table (CSV)", table.to_csv(index=False), "tokenizers.csv",
                       "text/csv")
    st.plotly_chart(grouped_bars(list(stats), {
        "chars per token": [s.chars_per_token for s in stats.values()],
        "bytes per token": [s.bytes_per_token for s in stats.values()],
    }, "How much text one token carries", "per token"), key="tok_compare")
    # A fixed key: with `index=` following the choice, every pick changed the widget's
    # identity and the next pick was dropped (byte -> char left byte in place).
    if st.session_state.get("corpus.tok_choice") not in trained:
        st.session_state["corpus.tok_choice"] = (
            lab.tokenizer.kind if lab.tokenizer and lab.tokenizer.kind in trained
            else next(iter(trained)))
    def _picked(trained: dict = trained) -> None:  # before the rerun: the sidebar sees it too
        lab.tokenizer = trained[st.session_state["corpus.tok_choice"]]

    choice = st.selectbox("Current tokenizer (used by the other pages)", list(trained),
                          key="corpus.tok_choice", on_change=_picked)
    lab.tokenizer = trained[choice]
    refresh_sidebar(lab)  # a tokenizer set by the training job's end shows at once
    tok = lab.tokenizer
    sample = st.text_area("Sample text coloured by token boundaries",
                          (split.test or c.text)[:600], height=120)
    with errors():
        ids, offsets = tok.encode_offsets(sample)
        st.markdown(token_boundaries_html(sample, offsets), unsafe_allow_html=True)
        st.caption(f"{len(ids)} tokens for {len(sample)} characters "
                   f"({len(sample) / max(len(ids), 1):.2f} chars/token).")
        st.plotly_chart(frequency_bar(token_frequency(tok, split.train[:200_000]),
                                      f"Token frequency ({tok.kind})"), key="tok_freq")
    st.download_button("Download tokenizer (JSON)", tok.to_json(), f"{tok.kind}.json",
                       "application/json")
