"""AppTests of the home page and the Corpus & tokenizers page."""

from __future__ import annotations

import gzip
import threading

import pytest
from apptest import (
    ROOT,
    assert_no_exception,
    current_corpus,
    error_texts,
    goto,
    join_jobs,
    open_app,
    open_page,
    sidebar_text,
)

from lmcore.app import jobs
from lmcore.data.builtin import PYDOC_NAME, builtin_corpora

HOME = "streamlit_app.py"
CORPUS = "pages/1_Corpus_and_tokenizers.py"
NGRAM = "pages/2_N-gram_models.py"
LONGTEXT = "pages/6_Long_texts.py"
MINE = ("My own notes on language models: a model predicts the next token from the ones "
        "before it. Meine eigenen Notizen.\n") * 30


def _choose_upload(at):
    at.radio(key="corpus.source").set_value("Upload a file").run()
    assert_no_exception(at)
    return at


def test_home_renders_with_builtin_corpus():
    at = open_page("streamlit_app.py")
    assert "lmcore" in at.title[0].value
    assert any("Using" in s.value for s in at.success)


def test_corpus_page_upload_gbk_text_reports_encoding():
    at = _choose_upload(open_page("pages/1_Corpus_and_tokenizers.py"))
    text = "语言模型把文本看作一串符号。A language model predicts the next token.\n" * 40
    at.file_uploader[0].set_value(("zh.txt", text.encode("gbk"), "text/plain")).run()
    assert_no_exception(at)
    assert not error_texts(at)
    used = " ".join(s.value for s in at.success)
    assert "zh.txt" in used
    assert any(m.value.lower().startswith(("gb", "cp936")) for m in at.metric
               if m.label == "Encoding"), [m.value for m in at.metric]


@pytest.mark.parametrize("kind", ["gbk with a few é", "gb18030 chat with emoji"])
def test_corpus_page_upload_of_gbk_and_gb18030_shows_the_right_text(kind):
    """The two files that were read as EUC-KR garbage or refused (issue 13)."""
    from tests.data.test_chinese_encodings import _chat, _gbk_lines_with_accents

    text, enc = ((_gbk_lines_with_accents(40, 3), "gbk") if kind.startswith("gbk")
                 else (_chat(30), "gb18030"))
    at = _choose_upload(open_page(CORPUS))
    at.file_uploader[0].set_value(("zh.txt", text.encode(enc), "text/plain")).run()
    assert_no_exception(at)
    assert not error_texts(at)
    assert current_corpus(at).text == text
    assert [m.value for m in at.metric if m.label == "Encoding"] == [enc]


def test_corpus_page_bad_upload_shows_error_not_traceback():
    at = _choose_upload(open_page("pages/1_Corpus_and_tokenizers.py"))
    at.file_uploader[0].set_value(("notes.txt.gz", gzip.compress(b"hello " * 100),
                                   "application/gzip")).run()
    assert_no_exception(at)
    errs = error_texts(at)
    assert errs and "gzip" in errs[0].lower()
    # the previous corpus is kept, nothing is lost
    assert any("Python reference" in s.value for s in at.success)


def test_corpus_page_empty_paste_is_refused():
    at = open_page("pages/1_Corpus_and_tokenizers.py")
    at.radio(key="corpus.source").set_value("Paste text").run()
    at.text_area(key="corpus.paste").set_value("   \n  ").run()
    at.button(key="corpus.use").click().run()
    assert_no_exception(at)
    assert error_texts(at), "an empty paste must be refused with a message"


def _train_tokenizers(at):
    """Press Train tokenizers: a background job; AppTest cannot run the polling timer, so
    wait for the job, then rerun the page as its end would."""
    at.button(key="corpus.train").click().run()
    assert_no_exception(at)
    join_jobs()
    at.run()
    return at


def test_tokenizer_training_is_a_job_under_the_cap(monkeypatch):
    """A CPU-heavy action: it waits for a job slot like every job, and runs in a worker."""
    monkeypatch.setenv("LMCORE_MAX_JOBS", "1")
    at = open_page("pages/1_Corpus_and_tokenizers.py")
    at.multiselect(key="corpus.kinds").set_value(["char"]).run()
    assert jobs._process_slots.acquire(threading.Event())  # another visitor holds the slot
    try:
        at.button(key="corpus.train").click().run()
        assert_no_exception(at)
        assert any("Waiting for a free job slot" in i.value for i in at.info)
        assert at.button(key="corpus.tok.panel.cancel")
    finally:
        jobs._process_slots.release()
    join_jobs()
    at.run()
    assert at.session_state["lmcore.lab"].tokenizer.kind == "char"
    assert not [i for i in at.info if "Waiting for a free job slot" in i.value]


def test_corpus_page_trains_and_compares_tokenizers():
    at = open_page("pages/1_Corpus_and_tokenizers.py")
    at.radio(key="corpus.source").set_value("Paste text").run()
    text = "the cat sat on the mat. 猫坐在垫子上。 " * 200
    at.text_area(key="corpus.paste").set_value(text).run()
    at.button(key="corpus.use").click().run()
    at.multiselect(key="corpus.kinds").set_value(["char", "byte", "bpe"]).run()
    _train_tokenizers(at)
    assert_no_exception(at)
    assert not error_texts(at)
    table = at.dataframe[0].value
    assert list(table["kind"]) == ["char", "byte", "bpe"]
    # a byte is at most one byte per token; char tokens carry one character each (or less)
    byte_row = table[table["kind"] == "byte"].iloc[0]
    assert abs(byte_row["bytes/token"] - 1.0) < 1e-9


# --------------------------------------------------------------- the corpus survives pages


def _upload(at, key: str, name: str = "mine.txt", data: bytes | None = None):
    at.radio(key=f"{key}.source").set_value("Upload a file").run()
    at.file_uploader(key=f"{key}.upload").set_value(
        (name, MINE.encode() if data is None else data, "text/plain")).run()
    assert_no_exception(at)
    return at


def _assert_uses_mine(at, key: str) -> None:
    c = current_corpus(at)
    assert (c.name, c.source, c.text) == ("mine.txt", "upload", MINE.rstrip("\n") + "\n")
    assert at.radio(key=f"{key}.source").value == "Upload a file"
    assert any("mine.txt" in s.value for s in at.success), [s.value for s in at.success]
    assert "mine.txt" in sidebar_text(at)


def test_home_upload_shows_corpus_in_sidebar():
    at = _upload(open_app(), "home")
    assert not error_texts(at)
    side = sidebar_text(at)
    assert "**Corpus:** mine.txt" in side, side
    assert f"{len(MINE):,} characters" in side


def test_home_bad_upload_shows_error_and_keeps_builtin():
    at = _upload(open_app(), "home", "scan.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    errs = error_texts(at)
    assert errs and "scan.txt" in errs[0] and "png image" in errs[0].lower(), errs
    assert current_corpus(at).name == PYDOC_NAME
    assert PYDOC_NAME in sidebar_text(at)


def test_home_upload_is_kept_when_the_corpus_page_opens():
    at = _upload(open_app(), "home")
    goto(at, CORPUS)
    _assert_uses_mine(at, "corpus")
    assert not error_texts(at)


def test_corpus_page_upload_survives_ngram_and_long_texts_and_back():
    at = goto(open_app(), CORPUS)
    _upload(at, "corpus")
    at.multiselect(key="corpus.kinds").set_value(["char"]).run()
    _train_tokenizers(at)
    assert_no_exception(at)
    tok = at.session_state["lmcore.lab"].tokenizer
    assert tok is not None and tok.kind == "char"
    for path in (NGRAM, CORPUS, LONGTEXT, CORPUS, HOME):
        goto(at, path)
        c = current_corpus(at)
        assert (c.name, c.text) == ("mine.txt", MINE), path
        # the tokenizer trained on it was not thrown away by a silent corpus switch
        assert at.session_state["lmcore.lab"].tokenizer is tok, path
    _assert_uses_mine(at, "home")
    goto(at, CORPUS)
    _assert_uses_mine(at, "corpus")
    assert list(at.dataframe[0].value["kind"]) == ["char"]  # the comparison table is kept


def test_pasted_corpus_survives_a_page_switch():
    at = goto(open_app(), CORPUS)
    at.radio(key="corpus.source").set_value("Paste text").run()
    at.text_area(key="corpus.paste").set_value(MINE).run()
    at.button(key="corpus.use").click().run()
    assert current_corpus(at).source == "paste"
    goto(goto(at, NGRAM), CORPUS)
    assert current_corpus(at).text == MINE
    assert at.radio(key="corpus.source").value == "Paste text"


def test_choosing_builtin_after_upload_switches_only_on_a_pick():
    at = goto(open_app(), CORPUS)
    _upload(at, "corpus")
    at.radio(key="corpus.source").set_value("Built-in").run()
    assert_no_exception(at)
    box = at.selectbox(key="corpus.builtin")
    assert box.value is None  # nothing chosen yet: the upload stays current
    assert current_corpus(at).name == "mine.txt"
    markov = list(builtin_corpora())[1]
    at.selectbox(key="corpus.builtin").set_value(markov).run()
    assert_no_exception(at)
    assert current_corpus(at).name == markov
    # the same file uploaded again is loaded again
    _upload(at, "corpus")
    assert current_corpus(at).name == "mine.txt"


@pytest.mark.parametrize("first", [HOME, CORPUS])
def test_two_sessions_never_see_each_others_upload(first):
    secret = ("Only visitor A may read this sentence about zebras. " * 40).encode()
    a = open_app() if first == HOME else goto(open_app(), CORPUS)
    b = open_app()
    _upload(a, "home" if first == HOME else "corpus", "secret.txt", secret)
    assert current_corpus(a).name == "secret.txt"
    b.run()
    for path in (HOME, CORPUS, NGRAM):
        goto(b, path)
        assert current_corpus(b).name == PYDOC_NAME, path
        assert "zebras" not in current_corpus(b).text
        shown = sidebar_text(b) + " ".join(s.value for s in b.success)
        assert "secret.txt" not in shown, path
    assert a.session_state["lmcore.lab"] is not b.session_state["lmcore.lab"]


def test_small_bpe_vocabulary_is_raised_to_the_byte_alphabet_with_a_message():
    at = open_page(CORPUS)
    at.radio(key="corpus.source").set_value("Paste text").run()
    at.text_area(key="corpus.paste").set_value("the cat sat on the mat. 猫坐在垫子上。 " * 200).run()
    at.button(key="corpus.use").click().run()
    at.multiselect(key="corpus.kinds").set_value(["bpe", "wordpiece", "char"]).run()
    at.number_input(key="corpus.vocab").set_value(100).run()
    _train_tokenizers(at)
    assert_no_exception(at)
    warns = [w.value for w in at.warning]
    assert any("bpe" in w and "from 100 to 263" in w for w in warns), warns
    cache = at.session_state["lmcore.lab"].results["tokenizers"]
    fp = current_corpus(at).fingerprint
    assert cache[(fp, "bpe")].vocab_size == 263  # all the alphabet allows: no merges fit
    # wordpiece at 100 fits this small alphabet; a refusal of one kind would not stop the rest
    assert (fp, "char") in cache and (fp, "wordpiece") in cache
    assert list(at.dataframe[0].value["kind"]) == ["bpe", "wordpiece", "char"]


def test_a_kind_refused_for_its_vocabulary_shows_why_and_the_others_train():
    at = open_page(CORPUS)
    at.radio(key="corpus.source").set_value("Paste text").run()
    # 300 distinct characters: wordpiece's alphabet alone needs more than 100 entries
    text = " ".join(chr(0x4E00 + i) * 3 for i in range(300)) + "\n"
    at.text_area(key="corpus.paste").set_value(text * 3).run()
    at.button(key="corpus.use").click().run()
    at.multiselect(key="corpus.kinds").set_value(["wordpiece", "char"]).run()
    at.number_input(key="corpus.vocab").set_value(100).run()
    _train_tokenizers(at)
    assert_no_exception(at)
    errs = error_texts(at)
    assert errs and "wordpiece" in errs[0] and "use vocab_size >=" in errs[0], errs
    assert list(at.dataframe[0].value["kind"]) == ["char"]


def test_the_server_watches_no_files():
    """With a watcher, a fast-changing .venv in the tree overflowed inotify and watchdog re-walked
    the whole tree holding the GIL, starving every page (a CI browser test timed out)."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["fileWatcherType"] == "none"


def test_the_server_collects_no_garbage_after_every_rerun():
    """Streamlit's gc.collect(2) after each rerun (fragment reruns included) held the GIL for
    about half the server's samples while a job's page was open; the sweeper collects instead."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["runner"]["postScriptGC"] is False
    assert "--runner.postScriptGC false" in (ROOT / "deploy" / "serve.sh").read_text()


def test_repaired_text_can_be_read_in_place_and_downloaded():
    at = _choose_upload(open_page(CORPUS))
    good = "Plain line.\nCafé crème for Álvaro.\n" * 20
    at.file_uploader[0].set_value(("moji.txt", good.encode("utf-8").decode("latin-1")
                                   .encode("utf-8"), "text/plain")).run()
    assert_no_exception(at)
    labels = [e.label for e in at.expander]
    assert "Read the loaded text (60 repaired spans in green, 0 lost characters in red)" \
        in labels, labels
    view = next(e for e in at.expander if e.label.startswith("Read the loaded text"))
    shown = " ".join(c.value for c in view.children.values() if c.type == "markdown")
    # the repaired character, highlighted, with what the file had there on hover
    assert 'title="was: &#x27;Ã©&#x27;"' in shown and ">é</span>" in shown
    assert shown.count("│") == 20  # the 20 lines that hold repairs, numbered
    downloads = [b for b in at.get("download_button") if b.proto.label.startswith(
        "Download the text as loaded")]
    assert len(downloads) == 1


def test_each_tokenizer_pick_takes_at_once():
    """Picking byte, then char, then bpe... each pick sets the session's tokenizer at once
    (the select box once changed identity with its index, and every other pick was lost)."""
    at = open_page("pages/1_Corpus_and_tokenizers.py")
    at.radio(key="corpus.source").set_value("Paste text").run()
    at.text_area(key="corpus.paste").set_value("the cat sat on the mat. 猫坐在垫子上。 " * 200).run()
    at.button(key="corpus.use").click().run()
    at.multiselect(key="corpus.kinds").set_value(["char", "byte", "bpe", "unigram"]).run()
    _train_tokenizers(at)
    for kind in ("byte", "char", "bpe", "unigram", "char"):
        at.selectbox(key="corpus.tok_choice").set_value(kind).run()
        assert_no_exception(at)
        assert at.session_state["lmcore.lab"].tokenizer.kind == kind
        side = " ".join(m.value for m in at.sidebar.markdown)
        assert f"**Tokenizer:** {kind} (" in side  # in the same rerun, not the next one
