"""Chinese text in GBK, GB18030, Big5, UTF-8 and UTF-16, generated here: read back exactly.

Two defects found by hostile input: 40 lines of GBK Chinese, three ending in "é", loaded as
EUC-KR garbage (and were refused with 10 lines); a GB18030 chat whose emoji and accented
letters need four-byte sequences was refused as "does not look like text".
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmcore.data.corpus import load_text

# Common characters, everyday Chinese (simplified: in GB2312) and traditional (in Big5).
SIMPLIFIED = ("的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去"
              "之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又"
              "如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月"
              "明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相"
              "次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才")
TRADITIONAL = ("的一是不了人我在有他這中大來上個國到說們為子和你地出道也時年得就那要下以生會自著去"
               "之過家學對可裡後小麼心多天而能好都然沒日於起還發成事只作當想看文無開手十用主行方又"
               "如前所本見經頭面公同三已老從動兩長知民樣現分將外但身些與高意進把法此實回二理美點月")
LATIN = ["hello", "world", "café", "Zoë", "naïve", "über", "señor", "Ångström", "OK", "AI"]
EMOJI = ["😀", "😂", "👍", "🎉", "🙏", "❤", "🌏", "🐼"]


def _gbk_lines_with_accents(n: int, accented: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = ["".join(rng.choice(SIMPLIFIED) for _ in range(rng.randint(12, 30))) + "。"
             for _ in range(n)]
    for i in rng.sample(range(n), accented):
        lines[i] += "é"  # a pinyin letter GBK holds (0xA8A6)
    return "\n".join(lines) + "\n"


def _chat(lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        words = "".join(rng.choice(SIMPLIFIED) for _ in range(rng.randint(5, 20)))
        extra = rng.choice(EMOJI) + (" Zoë, ça va?" if i % 5 == 0 else "")
        out.append(f"{'张三' if i % 2 else '李四'}：{words}{extra}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("lines", [10, 40, 200])
@pytest.mark.parametrize("seed", range(5))
def test_gbk_chinese_with_a_few_accented_lines_is_gbk(lines, seed):
    text = _gbk_lines_with_accents(lines, 3, seed)
    c = load_text(text.encode("gbk"), "zh.txt")
    assert (c.encoding, c.text, c.repairs) == ("gbk", text, ())


@pytest.mark.parametrize("seed", range(5))
def test_gb18030_chat_with_emoji_and_accents_is_read(seed):
    text = _chat(30, seed)
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")  # it needs GB18030's four-byte sequences
    c = load_text(text.encode("gb18030"), "chat.txt")
    assert (c.encoding, c.text, c.repairs) == ("gb18030", text, ())


def _fits(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def _mixed(pool: str, others: list[str]) -> st.SearchStrategy[str]:
    """Lines of Chinese runs with Latin words, emoji or punctuation between them.

    At least 16 Chinese characters, 4 of them different: fewer can be honestly ambiguous
    (8 bytes of GBK are also 4 characters of UTF-16), and "一一一…" in GBK (D2 BB D2 BB…) is
    valid UTF-8 too ("һһһ…"), which wins.
    """
    han = st.text(st.sampled_from(pool), min_size=8, max_size=20)
    piece = st.tuples(han, st.lists(st.sampled_from(others), max_size=2)).map(
        lambda t: t[0] + "".join((" " + w + " ") if w.isascii() else w for w in t[1]))
    line = st.lists(piece, min_size=1, max_size=4).map("".join)
    return st.lists(line, min_size=2, max_size=12).map(lambda ls: "\n".join(ls) + "\n").filter(
        lambda t: len(set(t) & set(pool)) >= 4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mixed(SIMPLIFIED, LATIN + EMOJI + ["，", "。"]),
       encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-le", "gb18030"]))
def test_chinese_latin_emoji_round_trips(text, encoding):
    assert load_text(text.encode(encoding), "t.txt").text == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mixed(SIMPLIFIED, [w for w in LATIN if _fits(w, "gbk")] + ["，", "。"]))
def test_chinese_latin_round_trips_in_gbk(text):  # GBK: no emoji, only pinyin's accents
    assert load_text(text.encode("gbk"), "t.txt").text == text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_mixed(TRADITIONAL, [w for w in LATIN if _fits(w, "big5")] + ["，", "。"]))
def test_traditional_chinese_latin_round_trips_in_big5(text):
    assert load_text(text.encode("big5"), "t.txt").text == text
