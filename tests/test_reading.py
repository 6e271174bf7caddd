"""What the reading chapters (Embeddings, Positions, Attention) say about a
run is computed from it: a pattern is named where it is planted and not
where it is absent, a rare character is flagged, a near-tie is one."""

import string
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP, texts

from tinyllm.explain import (
    NEAR_TIE,
    RARE,
    case_pairs,
    lagged_correlation,
    near_ties,
    repeating_dimensions,
    smoothness,
    too_rare,
)

LOWER = list(string.ascii_lowercase[:12])
CHARS = [" ", "."] + [c.upper() for c in LOWER] + LOWER


def embeddings(capital_like: float, seed=0, dims=32):
    """Random vectors, each capital `capital_like` of the way towards its lowercase letter's."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(len(CHARS), dims))
    for ch in LOWER:
        low, up = CHARS.index(ch), CHARS.index(ch.upper())
        matrix[up] = capital_like * matrix[low] + (1 - capital_like) * matrix[up]
    return matrix


def test_the_letter_and_capital_pattern_is_found_where_planted():
    found = case_pairs(CHARS, embeddings(0.8))
    assert found["strength"] == "strong" and found["pairs"] == 12 and found["nearest"] == 12
    assert found["pair_mean"] > 0.9 and abs(found["all_mean"]) < 0.1
    assert found["letters"] == LOWER


def test_a_weaker_pattern_is_called_weaker():
    found = case_pairs(CHARS, embeddings(0.2))
    assert found["strength"] == "weak" and 2 * found["nearest"] < found["pairs"]
    assert found["pair_mean"] - found["all_mean"] > 0.1


@pytest.mark.parametrize("seed", range(5))
def test_the_pattern_is_absent_where_not_planted(seed):
    found = case_pairs(CHARS, embeddings(0.0, seed))
    assert found["strength"] is None and found["nearest"] <= 2


def test_no_pattern_without_letters_in_both_cases():
    assert case_pairs(list("ab"), [[1.0, 0.0], [0.0, 1.0]]) is None  # the smallest run: 2 characters
    assert case_pairs(list("aAbB"), np.eye(4)) is None  # two pairs are too few to speak of


def test_rare_characters_are_flagged():
    assert too_rare(1) and too_rare(RARE - 1) and not too_rare(RARE)


def test_near_ties_are_within_the_margin():
    label = dict(habit="space", score=0.17, scores={"space": 0.17, "previous": 0.17 - NEAR_TIE / 2, "self": 0.1})
    assert near_ties(label) == ["previous"]
    label["scores"]["previous"] = 0.17 - 2 * NEAR_TIE
    assert near_ties(label) == []


def test_smoothness_tells_a_wave_from_noise():
    positions = np.arange(64)
    rng = np.random.default_rng(0)
    matrix = np.stack([np.sin(positions / 6), rng.normal(size=64), np.cos(2 * np.pi * positions / 5)], axis=1)
    smooth = smoothness(matrix)
    assert smooth[0] > 0.9 and abs(smooth[1]) < 0.3 and smooth[2] < 0.5
    assert lagged_correlation(matrix, 5)[2] > 0.9  # the period-5 column repeats itself 5 positions on


@pytest.fixture
def the_kid(monkeypatch, tmp_path):
    monkeypatch.setenv("PEEK_KID_DIR", str(Path(APP).parent / "artifacts" / "kid"))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))


@pytest.mark.slow
def test_the_embeddings_page_names_the_kid_s_pattern_and_its_rare_neighbour(the_kid):
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception, at.exception
    said = texts(at)
    # the kid's numbers, computed from its export by the page
    assert "Of the 26 lowercase letters whose capital the kid knows, 24 have it as their nearest" in said
    assert "mean cosine of 0.54, against 0.003" in said
    assert "` $ ` is in the corpus only once" in said  # a's second neighbour
    assert any("rare" in m.label for m in at.metric)


def test_the_dimensions_that_repeat_are_found():
    positions = np.arange(64)
    rng = np.random.default_rng(1)
    matrix = np.stack(
        [np.sin(positions / 9), rng.normal(size=64), np.cos(2 * np.pi * positions / 5), rng.normal(size=64)], axis=1
    )
    best = repeating_dimensions(matrix, 5, k=1)[0]
    assert best["dimension"] == 2 and best["at_period"] > 0.9 and best["lowest"] < -0.7
    assert best["lowest_at"] in (2, 3)  # half a period on: the wave is at its opposite
