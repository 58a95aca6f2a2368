"""The assistant's reply: a sentence from the action, the count and the phenotypes found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from workshop_utils.assistant.intent import ACTIONS, Intent
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_choice,
    require_int,
)

# Action -> keyword -> weight. What to count ("nuclei", "cells") only tips a question towards counting.

CAPABILITIES = "I can count nuclei, look for dividing cells, or describe the image."


@dataclass
class Answer:
    """The assistant's reply to one question, with what it found and the time each stage took.

    Args:
        question: the question as asked (the text that was spoken).
        transcript: what the speech model heard.
        intent: the :class:`Intent` parsed from the transcript.
        text: the reply, from :func:`answer_text`.
        count: nuclei counted, or None when the question did not need the nuclei model.
        dividing: (row, column) of each tile called dividing; empty for none.
        phenotype_counts: ``{phenotype: number of tiles}`` the image-text model found; empty for none.
        stage_ms: wall time of each stage (ms), e.g. ``{"asr": 41.0, "segment": 12.5}``.
        labels: the (H, W) instance labels of the segmentation, or None.
        correct: whether the reply matched the truth; None until the lab checks it.

    Example:
        >>> wu.assistant.Answer(question, transcript, intent, text, count, dividing, found, ms, labels)
    """

    question: str
    transcript: str
    intent: Intent
    text: str
    count: int | None = None
    dividing: list[tuple[int, int]] = field(default_factory=list)
    phenotype_counts: dict[str, int] = field(default_factory=dict)
    stage_ms: dict[str, float] = field(default_factory=dict)
    labels: np.ndarray | None = None
    correct: bool | None = None  # set by the lab after checking against the truth


def answer_text(intent: Intent, count: int, phenotype_counts: dict[str, int], dividing: list[tuple[int, int]]) -> str:
    """The sentence the assistant says for an intent and what the models found.

    Args:
        intent: the :class:`Intent` from :func:`parse_intent`; its ``action`` picks the sentence.
        count: nuclei found (>= 0).
        phenotype_counts: ``{phenotype: tiles}`` found, used by ``describe``; ``{}`` for none.
        dividing: (row, column) of each dividing tile, used by ``dividing``; ``[]`` for none.

    Returns:
        One sentence, e.g. ``"I count 14 nuclei in this image."``; an ``unknown`` intent says what it can do.

    Example:
        >>> text = wu.assistant.answer_text(intent, count, found, dividing)
    """
    where = "answer_text"
    if not isinstance(intent, Intent):
        raise bad_input(where, "intent as an assistant.Intent", describe(intent),
                        "Pass assistant.parse_intent(transcript).")
    require_choice(intent.action, where, "intent.action", ACTIONS, "Build the intent with assistant.parse_intent.")
    require_int(count, where, "count", minimum=0)
    if not isinstance(phenotype_counts, Mapping):
        raise bad_input(where, "phenotype_counts as a dict of phenotype -> count", describe(phenotype_counts),
                        "Pass {} when no phenotypes were found.")
    if not isinstance(dividing, (list, tuple)) or any(not isinstance(rc, (tuple, list)) or len(rc) != 2
                                                      for rc in dividing):
        raise bad_input(where, "dividing as a list of (row, column) pairs", describe(dividing),
                        "Pass the (row, column) of each dividing tile, e.g. [(0, 1)], or [] for none.")
    if intent.action == "count":
        return f"I count {count} nuclei in this image."
    if intent.action == "dividing":
        if not dividing:
            return "No: I see no dividing (mitotic) cells."
        places = ", ".join(f"row {r + 1} column {c + 1}" for r, c in dividing)
        return f"Yes: {len(dividing)} dividing cell(s), at {places}."
    if intent.action == "describe":
        parts = ", ".join(f"{n} {name}" for name, n in sorted(phenotype_counts.items(), key=lambda kv: -kv[1]))
        return f"{count} nuclei" + (f"; cells: {parts}." if parts else ".")
    return f"Sorry, I did not understand. {CAPABILITIES}"
