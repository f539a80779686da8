"""The corpus chooser shared by the home page and the Corpus page: built-in, upload or paste."""

from __future__ import annotations

import streamlit as st

from lmcore.app.frame import errors
from lmcore.app.state import Lab
from lmcore.data.builtin import builtin_corpora
from lmcore.data.corpus import from_text, load_text


def corpus_picker(lab: Lab, key: str = "picker") -> None:
    """Let the visitor pick a built-in corpus, upload a file or paste text; updates `lab`."""
    source = st.radio("Text source", ["Built-in", "Upload a file", "Paste text"],
                      horizontal=True, key=f"{key}.source")
    if source == "Built-in":
        names = list(builtin_corpora())
        current = names.index(lab.corpus.name) if lab.corpus.name in names else 0
        name = st.selectbox("Built-in corpus", names, index=current, key=f"{key}.builtin")
        if name != lab.corpus.name:
            with errors():
                lab.set_corpus(builtin_corpora()[name]())
    elif source == "Upload a file":
        up = st.file_uploader("A plain-text file (any encoding: UTF-8/16/32, GBK, Big5, "
                              "Shift-JIS, Latin-1 …)", key=f"{key}.upload")
        if up is not None:
            data = up.getvalue()
            marker = (up.name, len(data), hash(data))
            if st.session_state.get(f"{key}.loaded") != marker:
                with errors():
                    lab.set_corpus(load_text(data, up.name))
                    st.session_state[f"{key}.loaded"] = marker
    else:
        text = st.text_area("Paste text", height=160, key=f"{key}.paste")
        if st.button("Use this text", key=f"{key}.use"):
            with errors():
                lab.set_corpus(from_text(text, name="pasted text"))
    c = lab.corpus
    st.success(f"Using **{c.name}**: {c.chars:,} characters, {c.lines:,} lines, "
               f"encoding `{c.encoding}`.")
    for repair in c.repairs:
        st.info(repair)
