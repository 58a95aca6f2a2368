"""Lab 04's exercise: word error rate, the edit distance between word sequences over the reference length."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workshop_utils.core.inputs import bad_input, describe
from workshop_utils.exercises import as_answer_number, exercise

# (reference, hypothesis, WER): substitutions, deletions, insertions and an empty hypothesis.
CASES: list[tuple[str, str, float]] = [
    ("well b three forty two nuclei", "well b three forty two nuclei", 0.0),
    ("well b three forty two nuclei", "well d three forty two nuclei", 1 / 6),
    ("well b three forty two nuclei", "well b three forty nuclei", 1 / 6),
    ("well b three mitosis", "well b three three mitosis", 1 / 4),
    ("two in metaphase", "two in meta phase", 2 / 3),
    ("apoptosis in well c one", "", 1.0),
    ("well a one", "well a one two in late telophase", 4 / 3),
]


def reference_wer(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words (substitutions + deletions + insertions) divided by reference words."""
    if not isinstance(reference, str) or not isinstance(hypothesis, str):
        raise bad_input("exercises.lab04.reference_wer", "reference and hypothesis as strings (sentences)",
                        f"{describe(reference)}, {describe(hypothesis)}",
                        "Pass two transcripts, e.g. ('well a one', 'well a').")
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def _positional(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.split(), hypothesis.split()
    wrong = sum(r != h for r, h in zip(ref, hyp, strict=False)) + abs(len(ref) - len(hyp))
    return wrong / max(1, len(ref))


@exercise("04-wer", "WER = (substitutions + deletions + insertions) / reference words; it can exceed 1.")
def word_error_rate_function(value: Any) -> str | None:
    """``value`` is a function ``wer(reference, hypothesis) -> float``; it must match the edit-distance WER."""
    if not callable(value):
        return f"expected the function itself (wer), not the result of calling it; got {describe(value)}."
    fn: Callable[[str, str], float] = value
    for reference, hypothesis, expected in CASES:
        call = f"wer({reference!r}, {hypothesis!r})"
        try:
            result = fn(reference, hypothesis)
        except Exception as exc:  # the attendee's own code: report its failure as a hint
            return (f"{call} raised {type(exc).__name__}: {exc}; expected a function of two strings that returns "
                    "a float.")
        got = as_answer_number(result)
        if got is None:
            return f"{call} returned {describe(result)}; expected one finite float, the WER."
        if abs(got - expected) <= 1e-9:
            continue
        case = f"{call} gave {got:.3f}, expected {expected:.3f}"
        hyp_words = len(hypothesis.split())
        if hyp_words and abs(got - expected * len(reference.split()) / hyp_words) <= 1e-9:
            return f"{case}: divide by the number of reference words, not hypothesis words."
        if abs(got - _positional(reference, hypothesis)) <= 1e-9:
            return (f"{case}: comparing words position by position counts one insertion as many substitutions; "
                    "align the sequences with an edit distance (dynamic programming) instead.")
        if abs(got - expected * len(reference.split())) <= 1e-9:
            return f"{case}: that is the number of edits; divide it by the number of reference words."
        if expected > 1.0 and abs(got - 1.0) <= 1e-9:
            return f"{case}: do not cap WER at 1; insertions can push it above 1."
        return f"{case}: count substitutions, deletions and insertions of words (split on spaces)."
    return None
