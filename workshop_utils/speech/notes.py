"""The lab-notes grammar: what a cell biologist dictates, as text with its character vocabulary.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_int,
)

LABELS: list[str] = list(" abcdefghijklmnopqrstuvwxyz'")  # the character vocabulary of the CTC model

ROWS = list("abcdefgh")  # 96-well plate rows, spoken as letters ("bee")
_UNITS = "zero one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
PHASES = ["prophase", "metaphase", "anaphase", "telophase", "interphase"]
PHENOTYPES = ["mitosis", "apoptosis", "necrosis", "blebbing", "normal"]
OBJECTS = ["nuclei", "cells"]
# Spoken questions to the microscope assistant of lab 06; part of the grammar so the model knows their words.
QUESTIONS = [
    "how many {objects} are in this image",
    "how many {objects} are in {well}",
    "count the {objects} in this image",
    "are any cells dividing",
    "are any cells dividing in {well}",
    "describe this image",
    "describe {well}",
]


def number_words(n: int) -> str:
    """Spell 0-99 the way it is spoken: 42 -> 'forty two'."""
    n = require_int(n, "number_words", "n")
    if not 0 <= n <= 99:
        raise bad_input("number_words", "n in 0-99 (well columns and counts)", f"n={n}",
                        "Pass a number from 0 to 99; the grammar speaks nothing larger.")
    if n < 10:
        return _UNITS[n]
    if n < 20:
        return _TEENS[n - 10]
    tens, units = divmod(n, 10)
    return _TENS[tens - 2] + ("" if units == 0 else " " + _UNITS[units])


def require_words(words: Any, where: str) -> list[str]:
    """``extra_words`` as a list of non-blank strings spelled with the model's characters (a-z, space, ')."""
    if isinstance(words, (str, bytes)) or not isinstance(words, Iterable):
        raise bad_input(where, "extra_words as a list of words", describe(words),
                        "Wrap a single word in a list: extra_words=['cytokinesis'].")
    listed = list(words)
    for word in listed:
        if not isinstance(word, str) or not word.strip():
            raise bad_input(where, "each extra word as a non-blank string", describe(word),
                            "Drop blank entries or convert them with str().")
        bad = sorted(set(word) - set(LABELS))
        if bad:
            raise bad_input(where, "words spelled with a-z, space and ' only", f"word {word!r} with {bad}, outside "
                            "the model's vocabulary", f"Spell it in lower case letters, e.g. {word.lower()!r}, "
                            "or write symbols out as words.")
    return listed


def lab_note(rng: random.Random, extra_words: Sequence[str] = ()) -> str:
    """One dictated note, lower-case words only: 'well b three forty two nuclei two in metaphase'."""
    if not isinstance(rng, random.Random):
        raise bad_input("lab_note", "rng as a random.Random", describe(rng),
                        "Pass random.Random(seed), or call speech.lab_notes(n, seed) for a list of notes.")
    return _note(rng, require_words(extra_words, "lab_note"))


def _note(rng: random.Random, extra_words: Sequence[str]) -> str:
    well = f"well {rng.choice(ROWS)} {number_words(rng.randint(1, 12))}"
    kind = rng.randrange(5)
    if kind == 0:
        count, objects = number_words(rng.randint(0, 99)), rng.choice(OBJECTS)  # draw order fixes the corpus
        text = f"{well} {count} {objects} {number_words(rng.randint(0, 9))} in {rng.choice(PHASES)}"
    elif kind == 1:
        text = f"{well} {rng.choice(PHENOTYPES)}"
    elif kind == 2:
        text = f"{rng.choice(PHENOTYPES)} in {well}"
    elif kind == 3:
        text = f"{well} {number_words(rng.randint(0, 99))} {rng.choice(OBJECTS)}"
    else:  # a question for the microscope assistant (the capstone, lab 06)
        text = rng.choice(QUESTIONS).format(objects=rng.choice(OBJECTS), well=well)
    if extra_words:
        text = f"{text} {rng.choice(list(extra_words))}"
    return text


def lab_notes(n: int, seed: int = 0, extra_words: Sequence[str] = ()) -> list[str]:
    """``n`` dictated notes from a seeded generator (the same seed gives the same notes).

    Args:
        n: how many notes (>= 1).
        seed: the generator's seed.
        extra_words: words of which one, drawn at random, ends every note; ``()`` for none.

    Returns:
        ``n`` lowercase notes such as well positions with counts and phenotypes, or questions for the assistant.

    Example:
        >>> for note in wu.speech.lab_notes(4, seed=SEED): print(note)
    """
    n = require_int(n, "lab_notes", "n", minimum=1)
    words = require_words(extra_words, "lab_notes")
    rng = random.Random(require_int(seed, "lab_notes", "seed"))
    return [_note(rng, words) for _ in range(n)]
