"""Object-level scores for instance segmentations: match predicted nuclei to true ones by IoU, count TP/FP/FN.

Pixel Dice says how much of the foreground is right; it cannot tell one nucleus from two touching ones. Object
scores can: each true nucleus is matched to at most one predicted nucleus (and back) when their intersection over
union (IoU) reaches a threshold, 0.5 by default. Matched pairs are true positives (TP), unmatched predictions
false positives (FP), unmatched true nuclei false negatives (FN), and

    AP = TP / (TP + FP + FN)

which is what the 2018 Data Science Bowl and StarDist (Schmidt et al., MICCAI 2018) call average precision at
that threshold (``stardist.matching``'s "accuracy"). Over a test set, TP, FP and FN are summed over the images
first (:func:`sum_matchings`), the way StarDist's ``matching_dataset(..., by_image=False)`` scores its tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from workshop_utils.core.inputs import as_array, bad_input, describe, require_number

_LABELS_FIX = "Pass an instance label image (0 background, 1..n), e.g. tifffile.imread(mask) or segment_nuclei's labels."


@dataclass(frozen=True)
class Matching:
    """True and predicted nuclei matched one-to-one at ``threshold`` IoU; ``ap`` is TP / (TP + FP + FN).

    ``pairs`` holds ``(truth_id, predicted_id, iou)`` for each match of one image (empty for a sum over images);
    ``false_positive_ids`` and ``false_negative_ids`` are the unmatched predicted and true labels.
    """

    tp: int
    fp: int
    fn: int
    threshold: float
    matched_iou_sum: float = 0.0
    pairs: tuple[tuple[int, int, float], ...] = ()
    false_positive_ids: tuple[int, ...] = ()
    false_negative_ids: tuple[int, ...] = ()

    @property
    def n_true(self) -> int:
        """How many true nuclei (TP + FN)."""
        return self.tp + self.fn

    @property
    def n_pred(self) -> int:
        """How many predicted nuclei (TP + FP)."""
        return self.tp + self.fp

    @property
    def ap(self) -> float:
        """TP / (TP + FP + FN); 1.0 when there was nothing to find and nothing was found."""
        total = self.tp + self.fp + self.fn
        return 1.0 if total == 0 else self.tp / total

    @property
    def precision(self) -> float:
        """TP / (TP + FP): the share of predicted nuclei that are real (1.0 with no predictions)."""
        return 1.0 if self.n_pred == 0 else self.tp / self.n_pred

    @property
    def recall(self) -> float:
        """TP / (TP + FN): the share of true nuclei found (1.0 with no true nuclei)."""
        return 1.0 if self.n_true == 0 else self.tp / self.n_true

    @property
    def mean_matched_iou(self) -> float:
        """The mean IoU of the matched pairs (0.0 without matches): how well the found nuclei are outlined."""
        return self.matched_iou_sum / self.tp if self.tp else 0.0


def _iou_matrix(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (true, predicted) label pair, from their pixel contingency table (one ``np.bincount``).

    Returns ``(iou, truth_ids, pred_ids)``: iou[i, j] is the IoU of true label ``truth_ids[i]`` and predicted
    label ``pred_ids[j]`` (background excluded).
    """
    truth_ids, t = np.unique(truth, return_inverse=True)  # t: 0 is background when the image has any
    pred_ids, p = np.unique(pred, return_inverse=True)
    t_bg, p_bg = int(truth_ids[0] == 0), int(pred_ids[0] == 0)
    counts = np.bincount(t.ravel() * len(pred_ids) + p.ravel(), minlength=len(truth_ids) * len(pred_ids))
    overlap = counts.reshape(len(truth_ids), len(pred_ids))
    area_t, area_p = overlap.sum(axis=1, keepdims=True), overlap.sum(axis=0, keepdims=True)
    inter = overlap[t_bg:, p_bg:]
    union = area_t[t_bg:] + area_p[:, p_bg:] - inter
    return inter / np.maximum(union, 1), truth_ids[t_bg:], pred_ids[p_bg:]


def _labels(value: object, name: str) -> np.ndarray:
    array = as_array(value, "match_instances", name, ndim=2, kind="integer", fix=_LABELS_FIX)
    if array.min() < 0:
        raise bad_input("match_instances", f"{name} with labels >= 0 (0 background)", f"minimum {array.min()}", _LABELS_FIX)
    return array


def match_instances(truth: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> Matching:
    """Match predicted nuclei to true ones one-to-one where IoU >= ``threshold``; TP, FP, FN and AP.

    The matching maximises the number of pairs at or above the threshold, then their IoU (the Hungarian
    algorithm, ``scipy.optimize.linear_sum_assignment``, as ``stardist.matching`` does). From 0.5 up a nucleus
    can overlap only one other by that much, so the pairs are unique anyway.

    Args:
        truth: the true instance labels (H, W), integer dtype, 0 background; ids need not be consecutive.
        pred: the predicted instance labels, same shape, e.g. the labels :func:`segment_nuclei` returns.
        threshold: the IoU a pair needs to count as a match, in (0, 1]; 0.5 is the usual AP@0.5.

    Returns:
        A :class:`Matching` with ``tp``, ``fp``, ``fn``, ``ap``, ``precision``, ``recall``, the matched pairs
        and the unmatched ids (for an overlay of TP, FP and FN nuclei).

    Example:
        >>> m = wu.nuclei.match_instances(real_truth, real_labels); print(f"AP@0.5 {m.ap:.2f}")
    """
    truth, pred = _labels(truth, "truth"), _labels(pred, "pred")
    if truth.shape != pred.shape:
        raise bad_input("match_instances", "truth and pred of the same shape", f"shapes {truth.shape} and {pred.shape}",
                        "Compare the labels of the image the truth belongs to (crop or resize one to match).")
    threshold = require_number(threshold, "match_instances", "threshold", minimum=0.0, maximum=1.0)
    if threshold == 0.0:  # every pair would match, even nuclei that do not touch
        raise bad_input("match_instances", "threshold above 0 (an IoU a match must reach)", "0.0", "Pass e.g. threshold=0.5.")
    iou, truth_ids, pred_ids = _iou_matrix(truth, pred)
    pairs: list[tuple[int, int, float]] = []
    if iou.size:
        good = iou >= threshold
        # cost: every pair at or above the threshold beats any IoU difference, then higher IoU is better
        rows, cols = linear_sum_assignment(-(good.astype(float)) - iou / (2 * max(iou.shape)))
        keep = good[rows, cols]
        pairs = [(int(truth_ids[r]), int(pred_ids[c]), float(iou[r, c])) for r, c in zip(rows[keep], cols[keep], strict=True)]
    matched_t, matched_p = {t for t, _, _ in pairs}, {p for _, p, _ in pairs}
    return Matching(tp=len(pairs), fp=len(pred_ids) - len(pairs), fn=len(truth_ids) - len(pairs), threshold=threshold,
                    matched_iou_sum=float(sum(v for _, _, v in pairs)), pairs=tuple(pairs),
                    false_positive_ids=tuple(int(i) for i in pred_ids if int(i) not in matched_p),
                    false_negative_ids=tuple(int(i) for i in truth_ids if int(i) not in matched_t))


def sum_matchings(matchings: Iterable[Matching]) -> Matching:
    """One :class:`Matching` for a test set: TP, FP and FN summed over its images (StarDist's dataset score).

    Args:
        matchings: one :func:`match_instances` result per image, all at the same threshold.

    Returns:
        A :class:`Matching` whose ``ap`` is sum(TP) / (sum(TP) + sum(FP) + sum(FN)); its ``pairs`` are empty.

    Example:
        >>> total = wu.nuclei.sum_matchings(wu.nuclei.match_instances(t, p) for t, p in zip(truths, preds))
    """
    items = list(matchings) if isinstance(matchings, Iterable) and not isinstance(matchings, Matching) else None
    if not items or not all(isinstance(m, Matching) for m in items):
        raise bad_input("sum_matchings", "a non-empty list of Matching results (one per image)", describe(matchings),
                        "Collect them with [wu.nuclei.match_instances(truth, labels) for each test image].")
    thresholds = sorted({m.threshold for m in items})
    if len(thresholds) > 1:
        raise bad_input("sum_matchings", "matchings at one IoU threshold", f"thresholds {thresholds}",
                        "Match every image with the same threshold, e.g. 0.5.")
    return Matching(tp=sum(m.tp for m in items), fp=sum(m.fp for m in items), fn=sum(m.fn for m in items),
                    threshold=thresholds[0], matched_iou_sum=sum(m.matched_iou_sum for m in items))
