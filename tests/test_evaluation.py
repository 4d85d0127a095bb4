"""aiterms.evaluation against slow obvious implementations and hand-computed cases."""
from __future__ import annotations

import itertools
import math

import pytest

from aiterms.evaluation import accuracy, majority_vote, mean_pass_at_k, pass_at_k


def pass_at_k_by_enumeration(n: int, c: int, k: int) -> float:
    """The definition: the fraction of k-subsets of the n samples that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(pass_at_k_by_enumeration(n, c, k), abs=1e-12)


def test_pass_at_k_known_values_and_large_n():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)           # pass@1 is the fraction correct
    assert pass_at_k(2, 1, 2) == 1.0
    assert pass_at_k(200, 0, 10) == 0.0
    assert pass_at_k(200, 10, 100) == pytest.approx(1 - math.comb(190, 100) / math.comb(200, 100))
    assert mean_pass_at_k([[True, False], [False, False]], 1) == pytest.approx(0.25)


@pytest.mark.parametrize("args,match", [((3, 4, 1), "c"), ((3, 1, 4), "k"), ((3, 1, 0), "k"), ((0, 0, 1), "n"),
                                        ((3, -1, 1), "c"), ((3.0, 1, 1), "n")])
def test_pass_at_k_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(*args)


def test_majority_vote():
    assert majority_vote([3, 5, 3, None, 5, 5]) == 5
    assert majority_vote([7, 8, 8, 7]) == 7                     # tie: the one that appears first
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


def test_accuracy():
    assert accuracy([1, None, 3], [1, 2, 4]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same length"):
        accuracy([1], [1, 2])
