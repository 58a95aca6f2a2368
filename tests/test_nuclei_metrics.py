"""Object-level scores: nuclei matched one-to-one at IoU >= 0.5, TP / FP / FN and AP = TP / (TP + FP + FN)."""

from __future__ import annotations

import numpy as np
import pytest

from workshop_utils import nuclei
from workshop_utils.core.errors import InputError


def discs(shape=(64, 64), centres=((16, 16), (16, 46), (46, 30)), radius=8, ids=None) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for index, (cy, cx) in enumerate(centres):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = ids[index] if ids else index + 1
    return labels


def test_perfect_match_whatever_the_ids() -> None:
    truth = discs()
    pred = discs(ids=[7, 3, 40])  # same nuclei, other (non-consecutive) ids
    m = nuclei.match_instances(truth, pred.astype(np.uint16))
    assert (m.tp, m.fp, m.fn, m.ap) == (3, 0, 0, 1.0)
    assert sorted((t, p) for t, p, _ in m.pairs) == [(1, 7), (2, 3), (3, 40)]
    assert m.mean_matched_iou == pytest.approx(1.0) and m.precision == m.recall == 1.0


def test_a_split_nucleus_costs_false_positives_and_may_lose_its_match() -> None:
    truth = discs()
    pred = truth.copy()
    left = (pred == 1) & (np.arange(64)[None, :] < 13)  # a small piece cut off: the rest still overlaps > 0.5
    pred[left] = 9
    m = nuclei.match_instances(truth, pred)
    assert (m.tp, m.fp, m.fn) == (3, 1, 0) and m.false_positive_ids == (9,)
    assert m.ap == pytest.approx(3 / 4)
    thirds = truth.copy()
    column = np.broadcast_to(np.arange(64)[None, :], truth.shape)
    thirds[(truth == 1) & (column < 14)] = 9  # cut in three: no piece reaches IoU 0.5
    thirds[(truth == 1) & (column >= 14) & (column < 19)] = 10
    m = nuclei.match_instances(truth, thirds)
    assert (m.tp, m.fp, m.fn) == (2, 3, 1) and m.false_negative_ids == (1,)
    assert m.ap == pytest.approx(2 / 6)


def test_a_merged_pair_matches_at_most_one_of_them() -> None:
    truth = discs(centres=((32, 20), (32, 38)), radius=8)  # two nuclei, 2 px apart
    merged = np.zeros_like(truth)
    merged[truth > 0] = 1
    merged[30:35, 27:32] = 1  # a bridge: one blob
    m = nuclei.match_instances(truth, merged)
    assert m.n_pred == 1 and m.n_true == 2
    assert m.tp == 0 and (m.fp, m.fn) == (1, 2)  # the blob has IoU < 0.5 with each: a merge costs three errors
    assert m.ap == 0.0
    assert nuclei.dice(merged, truth) > 0.95, "Dice hardly sees a merge; AP does"
    bigger = discs(centres=((32, 20), (32, 38)), radius=8, ids=[1, 2])
    bigger[bigger == 2] = 0
    bigger[(truth == 2) & (np.arange(64)[None, :] < 34)] = 1  # one nucleus swallows a third of its neighbour
    m = nuclei.match_instances(truth, bigger)
    assert (m.tp, m.fp, m.fn) == (1, 0, 1) and m.pairs[0][:2] == (1, 1)


def test_an_empty_prediction_misses_everything_and_empty_against_empty_is_perfect() -> None:
    truth = discs()
    m = nuclei.match_instances(truth, np.zeros_like(truth))
    assert (m.tp, m.fp, m.fn, m.ap) == (0, 0, 3, 0.0) and m.recall == 0.0 and m.precision == 1.0
    m = nuclei.match_instances(np.zeros_like(truth), truth)
    assert (m.tp, m.fp, m.fn, m.ap) == (0, 3, 0, 0.0)
    nothing = nuclei.match_instances(np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32))
    assert (nothing.tp, nothing.fp, nothing.fn, nothing.ap) == (0, 0, 0, 1.0)


def test_threshold_sets_what_counts_as_a_match() -> None:
    truth = discs(centres=((32, 32),), radius=10)
    shifted = np.roll(truth, 4, axis=1)
    iou = ((truth > 0) & (shifted > 0)).sum() / ((truth > 0) | (shifted > 0)).sum()
    assert 0.5 <= iou < 0.75
    assert nuclei.match_instances(truth, shifted).pairs[0][2] == pytest.approx(iou)
    assert nuclei.match_instances(truth, shifted, threshold=0.75).tp == 0
    assert nuclei.match_instances(truth, shifted, threshold=0.3).tp == 1


def test_one_to_one_even_when_two_predictions_overlap_one_nucleus() -> None:
    truth = discs(centres=((32, 32),), radius=10)
    pred = np.zeros_like(truth)
    pred[truth > 0] = 1
    pred[(truth > 0) & (np.arange(64)[:, None] > 36)] = 2  # the lower part a second label
    m = nuclei.match_instances(truth, pred, threshold=0.1)  # both reach 0.1, only one may match
    assert m.tp == 1 and m.fp == 1 and m.pairs[0][1] == 1


def test_sum_matchings_adds_counts_over_images_before_dividing() -> None:
    truth = discs()
    perfect = nuclei.match_instances(truth, truth)
    empty = nuclei.match_instances(truth, np.zeros_like(truth))
    total = nuclei.sum_matchings([perfect, empty])
    assert (total.tp, total.fp, total.fn) == (3, 0, 3) and total.ap == pytest.approx(0.5)
    assert total.pairs == () and total.mean_matched_iou == pytest.approx(1.0)
    assert nuclei.sum_matchings(m for m in [perfect]).ap == 1.0


@pytest.mark.parametrize("call, message", [
    (lambda: nuclei.match_instances(np.zeros((8, 8), np.int32), np.zeros((8, 4), np.int32)), "same shape"),
    (lambda: nuclei.match_instances(np.zeros((8, 8)), np.zeros((8, 8), np.int32)), "integer dtype"),
    (lambda: nuclei.match_instances(np.zeros((2, 8, 8), np.int32), np.zeros((2, 8, 8), np.int32)), "2-D"),
    (lambda: nuclei.match_instances(-np.ones((8, 8), np.int32), np.zeros((8, 8), np.int32)), "labels >= 0"),
    (lambda: nuclei.match_instances(np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32), threshold=0), "above 0"),
    (lambda: nuclei.match_instances(np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32), threshold=1.5), "at most 1"),
    (lambda: nuclei.sum_matchings([]), "non-empty list of Matching"),
    (lambda: nuclei.sum_matchings([0.5]), "non-empty list of Matching"),
])
def test_bad_input_says_what_was_expected(call, message) -> None:
    with pytest.raises(InputError, match=message):
        call()
