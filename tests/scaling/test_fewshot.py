"""The few-shot reading: what the accuracy-against-shots rows show, in words from the rows."""

from __future__ import annotations

import pytest

from lmcore.scaling.fewshot import read_shots
from lmcore.scaling.tasks import ideal_mapping_accuracy


def _rows(acc, shown):
    return [{"shots": k, "accuracy": a, "ideal": ideal_mapping_accuracy(k),
             "accuracy_key_shown": float("nan") if s is None else s}
            for k, (a, s) in enumerate(zip(acc, shown, strict=True))]


# seed 0 at the defaults (4,500 steps, 2x64), as the page showed it
SEED0 = _rows([0.09, 0.23, 0.315, 0.42, 0.515, 0.68, 0.67, 0.685, 0.66],
              [None, 1.0, 1.0, 1.0, 1.0, 1.0, 0.8442, 0.7746, 0.66])
# seed 2: still on the plateau after 4,500 steps (copies one of the shown values)
PLATEAU = _rows([0.09, 0.19, 0.20, 0.17, 0.19, 0.25, 0.22, 0.31, 0.25],
                [None, 1.0, 0.53, 0.32, 0.28, 0.29, 0.27, 0.35, 0.25])


def test_a_learned_look_up_is_read_from_its_rows():
    text = read_shots(SEED0)
    assert text.startswith("Mean accuracy over k = 0..8: 0.47, against 0.55 for a perfect "
                           "in-context learner")
    assert "at k = 8 (the whole mapping shown): 0.66." in text
    assert "It keeps up with a perfect learner up to k = 5 and falls behind after." in text
    assert ("every key is read right up to k = 5 (0.95 or more), and accuracy is 0.66 at k = 8: "
            "more examples compete") in text


def test_the_plateau_is_named_with_the_random_pick_it_matches():
    text = read_shots(PLATEAU)
    assert ("it picks among the shown values almost at random (0.53 at k = 2 and 0.25 at k = "
            "8, against 0.55 and 0.21 for a random pick)") in text
    assert "train longer or try another seed" in text
    assert "every key is read right" not in text


def test_a_perfect_learner_keeps_up_everywhere_and_nothing_falls():
    perfect = _rows([ideal_mapping_accuracy(k) for k in range(9)], [None] + [1.0] * 8)
    text = read_shots(perfect)
    assert "It keeps up with a perfect learner at every k." in text
    assert text.endswith("accuracy is 1.00 at k = 1 and 1.00 at k = 8.")
    assert read_shots([]) == ""


@pytest.mark.parametrize("shown", [0.0, 0.02])
def test_an_untrained_model_is_not_called_a_random_pick(shown):
    text = read_shots(_rows([0.0] * 9, [None] + [shown] * 8))
    assert "random pick" not in text and "keeps up" not in text
