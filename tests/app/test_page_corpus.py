"""AppTests of the home page and the Corpus & tokenizers page."""

from __future__ import annotations

import gzip

from apptest import assert_no_exception, error_texts, open_page


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


def test_corpus_page_trains_and_compares_tokenizers():
    at = open_page("pages/1_Corpus_and_tokenizers.py")
    at.radio(key="corpus.source").set_value("Paste text").run()
    text = "the cat sat on the mat. 猫坐在垫子上。 " * 200
    at.text_area(key="corpus.paste").set_value(text).run()
    at.button(key="corpus.use").click().run()
    at.multiselect[0].set_value(["char", "byte", "bpe"]).run()
    at.button[1].click().run()  # "Train tokenizers"
    assert_no_exception(at)
    assert not error_texts(at)
    table = at.dataframe[0].value
    assert list(table["kind"]) == ["char", "byte", "bpe"]
    # a byte is at most one byte per token; char tokens carry one character each (or less)
    byte_row = table[table["kind"] == "byte"].iloc[0]
    assert abs(byte_row["bytes_per_token"] - 1.0) < 1e-9
