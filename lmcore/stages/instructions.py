"""Instructions with checkable answers, generated in code from the corpus's own words.

Four tasks: reverse a word, upper-case it, count its vowels, and name the word that most often
follows it in the corpus. The words are split once into training and held-out sets, so every
held-out instruction is about a word never seen in an instruction during tuning. A corpus with
too few Latin words (Chinese text, say) gets seeded pseudo-words instead, and says so.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from lmcore.stages.chat import Example

TASKS = ("reverse", "upper", "vowels", "next")
VOWELS = set("aeiou")
_WORD = re.compile(r"[a-z]{3,5}")
MIN_WORDS = 60  # fewer distinct corpus words than this: use pseudo-words


def answer(task: str, word: str, successors: dict[str, str] | None = None) -> str:
    """The one right response to `task` about `word`."""
    if task == "reverse":
        return word[::-1]
    if task == "upper":
        return word.upper()
    if task == "vowels":
        return str(sum(ch in VOWELS for ch in word))
    if task == "next":
        if not successors or word not in successors:
            raise ValueError(f"no clear next word after {word!r} in this corpus")
        return successors[word]
    raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def prompt(task: str, word: str) -> str:
    return {"reverse": f"reverse: {word}", "upper": f"upper: {word}",
            "vowels": f"count the vowels in: {word}",
            "next": f"next word after: {word}"}[task]


def successor_table(text: str, min_count: int = 3) -> dict[str, str]:
    """word -> the word that follows it most often, when that is clear (>= min_count times
    and strictly more often than the runner-up); lower-cased Latin words only."""
    words = re.findall(r"[A-Za-z]+", text)
    follow: dict[str, Counter] = defaultdict(Counter)
    for a, b in zip(words, words[1:], strict=False):
        a, b = a.lower(), b.lower()
        if _WORD.fullmatch(a) and _WORD.fullmatch(b):
            follow[a][b] += 1
    out = {}
    for w, c in follow.items():
        top = c.most_common(2)
        if top[0][1] >= min_count and (len(top) == 1 or top[0][1] > top[1][1]):
            out[w] = top[0][0]
    return out


@dataclass
class InstructionSet:
    """Training and held-out instructions; `source` says where the words came from."""

    train: list[Example]
    test: list[Example]
    source: str
    train_words: list[str] = field(default_factory=list)
    test_words: list[str] = field(default_factory=list)

    def by_task(self, split: str = "test") -> dict[str, list[Example]]:
        out: dict[str, list[Example]] = {t: [] for t in TASKS}
        for ex in (self.test if split == "test" else self.train):
            out[ex.task].append(ex)
        return {t: v for t, v in out.items() if v}


def corpus_words(text: str) -> list[str]:
    """Distinct lower-case Latin words of 3-5 letters, in order of first appearance."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(text.lower()):
        seen.setdefault(w, None)
    return list(seen)


def pseudo_words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out: dict[str, None] = {}
    while len(out) < n:
        out.setdefault("".join(rng.choice(letters) for _ in range(rng.randint(3, 5))), None)
    return list(out)


def instruction_set(text: str, *, seed: int = 0, test_per_task: int = 40,
                    train_per_task: int = 600, test_share: float = 0.3) -> InstructionSet:
    """Instructions about the words of `text`, words split into train/held-out by `seed`."""
    words = corpus_words(text)
    source = f"{len(words):,} distinct words of the corpus"
    if len(words) < MIN_WORDS:
        words = pseudo_words(400, seed)
        source = ("seeded pseudo-words (the corpus has fewer than "
                  f"{MIN_WORDS} distinct Latin words of 3-5 letters)")
    rng = random.Random(seed)
    words = sorted(words)
    rng.shuffle(words)
    n_test = max(1, int(len(words) * test_share))
    test_words, train_words = words[:n_test], words[n_test:]
    successors = successor_table(text)
    train: list[Example] = []
    test: list[Example] = []
    for task in TASKS:
        pool_train = [w for w in train_words if task != "next" or w in successors]
        pool_test = [w for w in test_words if task != "next" or w in successors]
        if not pool_train or not pool_test:
            continue  # e.g. no clear successors in a tiny corpus: the task is left out
        for i in range(train_per_task):
            w = pool_train[i % len(pool_train)]
            train.append(Example(task, prompt(task, w), answer(task, w, successors)))
        for w in pool_test[:test_per_task]:
            test.append(Example(task, prompt(task, w), answer(task, w, successors)))
    rng.shuffle(train)
    return InstructionSet(train, test, source, train_words, test_words)
