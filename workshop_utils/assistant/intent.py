"""What the attendee asked: a transcript mapped to an action, tolerant of the slips a small ASR model makes.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from workshop_utils.core.errors import InputError
from workshop_utils.core.inputs import (
    describe,
    require_number,
)

# Action -> keyword -> weight. What to count ("nuclei", "cells") only tips a question towards counting.

INTENT_KEYWORDS: dict[str, dict[str, float]] = {
    "dividing": {"dividing": 1.0, "divide": 1.0, "mitosis": 1.0, "mitotic": 1.0, "metaphase": 1.0},
    "describe": {"describe": 1.0, "description": 1.0},
    "count": {"count": 1.0, "many": 1.0, "number": 1.0, "nuclei": 0.5, "cells": 0.25},
}


ACTIONS: tuple[str, ...] = (*INTENT_KEYWORDS, "unknown")
# The questions the assistant is built for (speech.QUESTIONS, about "this image"). When the keywords do not settle
# the action, a transcript this close to one of them (whole-sentence similarity) is read as that question: a small
# CTC model writes "how man nue nauclei ar in this image", where no single word is a keyword any more.
KNOWN_QUESTIONS: dict[str, str] = {
    "how many nuclei are in this image": "count",
    "how many cells are in this image": "count",
    "count the nuclei in this image": "count",
    "count the cells in this image": "count",
    "are any cells dividing": "dividing",
    "describe this image": "describe",
}
SENTENCE_THRESHOLD = 0.85  # measured: ASR slips of these questions score 0.90-0.94, unrelated sentences below 0.6


@dataclass(frozen=True)
class Intent:
    """What the assistant will do, and the transcript words that decided it."""

    action: str  # "count", "dividing", "describe" or "unknown"
    matched: tuple[str, ...]
    score: float


def _similar(word: str, keyword: str) -> float:
    return difflib.SequenceMatcher(None, word, keyword).ratio()


def parse_intent(transcript: str, threshold: float = 0.75) -> Intent:
    """Map a transcript to an action; a word may be a slightly misspelt keyword (ASR slips).

    Each word counts for the one keyword it is most similar to; short words must match exactly, so "any" is
    not read as "many". Ties go to the more specific action (dividing, then describe, then count). When no action
    scores 1, the whole transcript is compared with :data:`KNOWN_QUESTIONS` and read as the closest one if it is
    at least :data:`SENTENCE_THRESHOLD` similar.

    Args:
        transcript: one transcript, e.g. ``wu.asr.transcribe([clip])[0]``; case does not matter.
        threshold: the similarity (0-1, difflib ratio) at which a word of 4+ letters counts as a keyword.

    Returns:
        An :class:`Intent`: ``action`` (``"count"``, ``"dividing"``, ``"describe"`` or ``"unknown"`` when no action
        scores 1 or more), the ``matched`` words and the winning ``score``.

    Example:
        >>> wu.assistant.parse_intent("how many nucleii are there").action
        'count'
    """
    if not isinstance(transcript, str):
        raise InputError(f"parse_intent: expected the transcript as a string; got {describe(transcript)}. "
                                 "Pass one transcript, e.g. asr.transcribe([clip])[0].")
    require_number(threshold, "parse_intent", "threshold", minimum=0.0, maximum=1.0)
    scores = {action: 0.0 for action in INTENT_KEYWORDS}
    matched: dict[str, list[str]] = {action: [] for action in INTENT_KEYWORDS}
    for word in transcript.lower().split():
        similarity, action, keyword = max(
            (_similar(word, k), a, k) for a, keywords in INTENT_KEYWORDS.items() for k in keywords
        )
        if similarity == 1.0 or (similarity >= threshold and len(word) >= 4):
            scores[action] += INTENT_KEYWORDS[action][keyword]
            matched[action].append(word)
    action = max(INTENT_KEYWORDS, key=lambda a: scores[a])  # dict order breaks ties
    if scores[action] >= 1.0:
        return Intent(action, tuple(matched[action]), scores[action])
    sentence = " ".join(transcript.lower().split())
    closeness, question = max((_similar(sentence, q), q) for q in KNOWN_QUESTIONS)
    if closeness >= SENTENCE_THRESHOLD:
        return Intent(KNOWN_QUESTIONS[question], (question,), closeness)
    return Intent("unknown", tuple(w for ws in matched.values() for w in ws), scores[action])
