"""word2vec: a planted synonym pair (two words used in exactly the same contexts of a generated
corpus) become each other's nearest neighbours; analogies, PCA and Chinese character units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmcore.embed.vectors import WordVectors, compare_neighbours, pick_unit, split_units
from lmcore.embed.word2vec import Word2VecConfig, skipgram_pairs, train_word2vec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# every noun has its own contexts, except car / automobile, which share theirs exactly
FRAMES = {
    "vehicle": ["she drove the {} to town", "the {} needs fuel and tyres",
                "park the {} in the garage", "a red {} raced down the road"],
    "dog": ["the {} barked at night", "walk the {} in the park", "the {} chewed a bone"],
    "apple": ["she ate an {} for lunch", "the {} was sweet and ripe", "peel the {} first"],
    "river": ["the {} flows to the sea", "we swam in the {} today", "a bridge over the {}"],
    "book": ["he read the {} twice", "the {} has many pages", "a {} about history"],
}


def planted_corpus(n: int = 1500, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        kind = list(FRAMES)[rng.integers(len(FRAMES))]
        frame = FRAMES[kind][rng.integers(len(FRAMES[kind]))]
        word = (["car", "automobile"][rng.integers(2)] if kind == "vehicle" else kind)
        lines.append(frame.format(word))
    return ". ".join(lines) + "."


def test_planted_synonyms_are_nearest_neighbours():
    torch.set_num_threads(1)
    wv = train_word2vec(planted_corpus(), Word2VecConfig(dim=24, window=3, epochs=8,
                                                          min_count=2, subsample=0, seed=1))
    assert wv.neighbours("car", 1)[0][0] == "automobile"
    assert wv.neighbours("automobile", 1)[0][0] == "car"
    # the pair is closer than any other pair of nouns
    nouns = ["dog", "apple", "river", "book", "car"]
    others = max(wv.cosine(a, b) for a in nouns for b in nouns if a < b)
    assert wv.cosine("car", "automobile") > others


def test_skipgram_pairs_stay_within_the_window():
    ids = np.arange(50)
    c, o = skipgram_pairs(ids, 3, np.random.default_rng(0))
    d = np.abs(c - o)
    assert d.min() >= 1 and d.max() <= 3
    assert set(zip(c.tolist(), o.tolist(), strict=True)) >= {(10, 11), (11, 10)}  # reach >= 1


def test_analogy_and_neighbours_on_a_constructed_table():
    # king - man + woman = queen with exact vectors
    words = ["king", "queen", "man", "woman", "apple"]
    vec = np.array([[1, 1, 0], [1, -1, 0], [0, 1, 0.1], [0, -1, 0.1], [0, 0, 1]], float)
    wv = WordVectors(words, np.array([5, 4, 3, 2, 1]), vec, source="toy")
    assert wv.analogy("king", "man", "woman", 1)[0][0] == "queen"
    assert wv.neighbours("apple", 4)[-1][0] != "apple"
    names, counts, xy, share = wv.pca(5)
    assert xy.shape == (5, 2) and names[0] == "king" and 0 < share.sum() <= 1 + 1e-9
    with pytest.raises(ValueError, match="not in the toy vocabulary"):
        wv.neighbours("pear")


def test_compare_neighbours_within_the_shared_vocabulary():
    rng = np.random.default_rng(0)
    a = WordVectors(["x", "y", "z", "w"], np.ones(4), rng.normal(size=(4, 3)), source="A")
    b = WordVectors(["y", "x", "z", "q"], np.ones(4), rng.normal(size=(4, 3)), source="B")
    out = compare_neighbours(a, b, "x", k=2)
    assert out["common"] == 3
    assert {w for w, _ in out["a"]} == {w for w, _ in out["b"]} == {"y", "z"}
    assert out["shared"] == ["y", "z"]


def test_chinese_uses_character_units():
    text = "我喜欢猫。我喜欢狗。猫和狗都是动物。" * 20
    assert pick_unit(text) == "char" and pick_unit("the cat sat") == "word"
    assert split_units("猫和狗", "char") == ["猫", "和", "狗"]
    wv = train_word2vec(text, Word2VecConfig(unit="char", dim=8, epochs=2, min_count=2))
    assert "猫" in wv.index and wv.source == "word2vec (char units)"


def test_too_little_text_is_refused():
    with pytest.raises(ValueError, match="too short"):
        train_word2vec("one two", Word2VecConfig(min_count=2))
