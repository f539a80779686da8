"""The corpus chooser shared by the home page, the Corpus page and the Long texts page.

It only ever replaces the current corpus on a real action of the visitor: picking a built-in
corpus in the select box, uploading a file, or pressing "Use this text". Opening a page, a
rerun or switching the "Text source" radio never does, so an uploaded or pasted corpus (and
the tokenizer and models trained on it) survives page switches.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from lmcore.app.frame import errors
from lmcore.app.state import Lab
from lmcore.data.builtin import builtin_corpora
from lmcore.data.corpus import Corpus, from_text, load_text
from lmcore.settings import get_settings

SOURCES = ["Built-in", "Upload a file", "Paste text"]
_SOURCE_OF = {"upload": "Upload a file", "paste": "Paste text"}  # others: "Built-in"


def source_label(corpus_source: str) -> str:
    """The radio option that shows where a corpus with this `Corpus.source` came from."""
    return _SOURCE_OF.get(corpus_source, "Built-in")


def _mark_changed(flag: str) -> None:
    """on_change callback: the visitor changed this widget (not a rerun, not a page switch)."""
    st.session_state[flag] = True


def _use(lab: Lab, make: Callable[[], Corpus]) -> bool:
    """Make the corpus and switch to it, then rerun so the sidebar (drawn first) shows it.

    A corpus that cannot be made leaves the current one in place and shows why; returns False.
    """
    corpus = None
    with errors():
        corpus = make()
    if corpus is None:
        return False
    lab.set_corpus(corpus)
    st.rerun()
    return True  # not reached: st.rerun() ends this script run


def corpus_picker(lab: Lab, key: str = "picker") -> None:
    """Let the visitor pick a built-in corpus, upload a file or paste text; updates `lab`."""
    # The radio's default follows the current corpus, so coming back to a page after an
    # upload shows "Upload a file" (its state is dropped while another page is open).
    default = SOURCES.index(source_label(lab.corpus.source))
    source = st.radio("Text source", SOURCES, index=default, horizontal=True,
                      key=f"{key}.source")
    if source == "Built-in":
        _builtin(lab, key)
    elif source == "Upload a file":
        _upload(lab, key)
    else:
        _paste(lab, key)
    c = lab.corpus
    st.success(f"Using **{c.name}**: {c.chars:,} characters, {c.lines:,} lines, "
               f"encoding `{c.encoding}`.")
    for repair in c.repairs:
        st.info(repair)


def _builtin(lab: Lab, key: str) -> None:
    names = list(builtin_corpora())
    current = names.index(lab.corpus.name) if lab.corpus.name in names else None
    flag = f"{key}.builtin.changed"
    name = st.selectbox("Built-in corpus", names, index=current, key=f"{key}.builtin",
                        placeholder="Choose a built-in corpus…",
                        on_change=_mark_changed, args=(flag,))
    if current is None:
        st.caption(f"The current corpus is **{lab.corpus.name}**; choosing a built-in corpus "
                   "replaces it (and the tokenizer and models trained on it).")
    if st.session_state.pop(flag, False) and name is not None and name != lab.corpus.name:
        _use(lab, builtin_corpora()[name])


def _upload(lab: Lab, key: str) -> None:
    cap = get_settings().upload_mb
    # max_upload_size: the browser refuses a bigger file before sending a byte of it (the
    # server's own cap, server.maxUploadSize, is set to the same by deploy/serve.sh).
    up = st.file_uploader(f"A plain-text file up to {cap} MB (any encoding: UTF-8/16/32, "
                          "GBK, Big5, Shift-JIS, Latin-1 …)", key=f"{key}.upload",
                          max_upload_size=cap)
    if up is None:
        if lab.corpus.source == "upload":
            st.caption(f"**{lab.corpus.name}** was uploaded earlier in this session and is "
                       "still the current corpus; upload another file to replace it.")
        return
    # Each upload has its own file id: a rerun with the same file does not reload it, the same
    # file uploaded again does. A refused file is retried (and its error shown) on each rerun.
    loaded = f"{key}.loaded"
    if st.session_state.get(loaded) != up.file_id:

        def make() -> Corpus:
            corpus = load_text(up.getvalue(), up.name)
            st.session_state[loaded] = up.file_id
            return corpus

        _use(lab, make)


def _paste(lab: Lab, key: str) -> None:
    text = st.text_area("Paste text", height=160, key=f"{key}.paste")
    if lab.corpus.source == "paste" and not text.strip():
        st.caption("The text pasted earlier is still the current corpus; paste new text and "
                   "press the button to replace it.")
    if st.button("Use this text", key=f"{key}.use"):
        _use(lab, lambda: from_text(text, name="pasted text"))
