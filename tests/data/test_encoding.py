"""decode_bytes directly: the codec it names, and short CJK/Western texts that are ambiguous."""

from __future__ import annotations

import gzip

import pytest

from lmcore.data.encoding import NotTextError, decode_bytes

SAMPLES = {
    "gbk": "语言模型通过预测下一个字来学习文本的统计规律。今天天气很好，我们去公园散步吧。"
           "学习中文需要时间和耐心，但是非常有意思。",
    "big5": "語言模型透過預測下一個字來學習文本的統計規律。今天天氣很好，我們去公園散步吧。"
            "臺灣是一個美麗的島嶼，有很多好吃的東西。",
    "shift_jis": "日本語の文章です。言語モデルは次の文字を予測することで学習します。"
                 "東京は日本の首都で、たくさんの人が住んでいます。",
}


@pytest.mark.parametrize("codec", sorted(SAMPLES))
@pytest.mark.parametrize("length", [8, 16])
def test_short_cjk_windows_decode_exactly(codec, length):
    """Every window of a few characters, alone or followed by English, is read back exactly."""
    text = SAMPLES[codec]
    for start in range(0, len(text) - length, 7):
        for tail in ("", " with some English words"):
            piece = text[start:start + length] + tail
            decoded, enc = decode_bytes(piece.encode(codec), "t.txt", [])
            assert decoded == piece, (codec, enc, piece)


@pytest.mark.parametrize("text", ["naïve", "Größe der Übung", "café crème", "¿Qué tal, señor?"])
def test_short_western_text_is_windows_1252(text):
    assert decode_bytes(text.encode("cp1252"), "w.txt", []) == (text, "cp1252")


def test_repairs_are_appended_and_errors_are_not_text_errors():
    repairs: list[str] = []
    assert decode_bytes(b"\xef\xbb\xbfhi", "b.txt", repairs) == ("hi", "utf-8")
    assert repairs == ["removed the UTF-8 byte-order mark"]
    with pytest.raises(NotTextError, match="gunzip b.txt.gz"):
        decode_bytes(gzip.compress(b"hi"), "b.txt.gz", [])
    assert issubclass(NotTextError, ValueError)


@pytest.mark.parametrize("codec", ["cp1251", "koi8_r"])
def test_russian_single_byte_codecs(codec):
    text = "Привет, как дела? Это тест: модель учится предсказывать следующую букву.\n" * 3
    assert decode_bytes(text.encode(codec), "ru.txt", []) == (text, codec)
