"""The capstone's microscope assistant: spoken question -> transcript -> intent -> models on Triton -> answer.

Stages (each timed by the lab): ``asr`` (lab 04's NeMo model), ``intent`` (keyword matching that tolerates ASR
spelling slips), ``segment`` (lab 02's ONNX nuclei model served by Triton, lab 03), ``phenotype`` (lab 05's
image-text model on crops around the nuclei found) and ``answer`` (text plus an overlay).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import phenotypes

# Action -> keyword -> weight. What to count ("nuclei", "cells") only tips a question towards counting.
INTENT_KEYWORDS: dict[str, dict[str, float]] = {
    "dividing": {"dividing": 1.0, "divide": 1.0, "mitosis": 1.0, "mitotic": 1.0, "metaphase": 1.0},
    "describe": {"describe": 1.0, "description": 1.0},
    "count": {"count": 1.0, "many": 1.0, "number": 1.0, "nuclei": 0.5, "cells": 0.25},
}
CAPABILITIES = "I can count nuclei, look for dividing cells, or describe the image."
FIELD_TILE_PX = 32


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
    not read as "many". Ties go to the more specific action (dividing, then describe, then count).
    """
    if not isinstance(transcript, str):
        raise TypeError(f"parse_intent needs the transcript as a string; got {type(transcript).__name__}.")
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
    if scores[action] < 1.0:
        return Intent("unknown", tuple(w for ws in matched.values() for w in ws), scores[action])
    return Intent(action, tuple(matched[action]), scores[action])


@dataclass
class Field:
    """A synthetic field of view: a grid of single-cell tiles with known phenotypes (for questions about them)."""

    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1], fluorescence stain
    phenotypes: list[str]  # row by row
    grid: int
    tile_px: int = FIELD_TILE_PX

    @property
    def image(self) -> np.ndarray:
        """The grey image the nuclei model sees (brightest channel)."""
        return self.rgb.max(axis=2)

    def truth_dividing(self) -> list[tuple[int, int]]:
        """(row, column) of the mitotic tiles."""
        return [divmod(i, self.grid) for i, name in enumerate(self.phenotypes) if name == "mitotic"]


def compose_field(seed: int, wanted: Sequence[str], grid: int = 4) -> Field:
    """Tile ``grid``×``grid`` fluorescence cells drawn with lab 05's generator; ``wanted`` lists their phenotypes."""
    if len(wanted) != grid * grid:
        raise ValueError(f"compose_field needs grid*grid={grid * grid} phenotypes; got {len(wanted)}.")
    unknown = sorted(set(wanted) - set(phenotypes.PHENOTYPES))
    if unknown:
        raise ValueError(f"Unknown phenotypes {unknown}; expected some of {phenotypes.PHENOTYPES}.")
    pool = phenotypes.make_cells(40 * len(phenotypes.PHENOTYPES), seed=seed, size=FIELD_TILE_PX)
    fluorescence = phenotypes.STAINS.index("fluorescence")
    tiles, taken = [], set()
    for name in wanted:
        label = phenotypes.PHENOTYPES.index(name)
        index = next(i for i in range(len(pool.labels))
                     if pool.labels[i] == label and pool.stains[i] == fluorescence and i not in taken)
        taken.add(index)
        tiles.append(pool.images[index])
    rows = [np.concatenate(tiles[r * grid:(r + 1) * grid], axis=1) for r in range(grid)]
    return Field(rgb=np.concatenate(rows, axis=0).astype(np.float32), phenotypes=list(wanted), grid=grid)


def tile_crops(rgb: np.ndarray, labels: np.ndarray, tile_px: int = FIELD_TILE_PX) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """The grid tiles in which the segmentation found at least one nucleus, with their (row, column)."""
    crops, where = [], []
    for r in range(rgb.shape[0] // tile_px):
        for c in range(rgb.shape[1] // tile_px):
            window = labels[r * tile_px:(r + 1) * tile_px, c * tile_px:(c + 1) * tile_px]
            if window.any():
                crops.append(rgb[r * tile_px:(r + 1) * tile_px, c * tile_px:(c + 1) * tile_px])
                where.append((r, c))
    return crops, where


def calibrate_threshold(phenotype: str, max_false_positive_rate: float = 0.01, n_cells: int = 600,
                        seed: int = 7001) -> float:
    """The lowest P(``phenotype``) at which at most ``max_false_positive_rate`` of other cells are called it.

    A yes/no question about a whole field multiplies per-cell mistakes (16 cells at 3% each: a false "yes" one
    time in three), so the assistant calls a phenotype only above an operating point chosen on labelled cells
    that none of the scripted fields use (lab 05's generator, fluorescence, another seed).
    """
    if phenotype not in phenotypes.PHENOTYPES:
        raise ValueError(f"Unknown phenotype {phenotype!r}; expected one of {phenotypes.PHENOTYPES}.")
    from .multimodal import phenotype_probabilities

    cells = phenotypes.make_cells(n_cells, seed=seed, size=FIELD_TILE_PX)
    keep = cells.stains == phenotypes.STAINS.index("fluorescence")
    column = list(phenotypes.PHENOTYPES).index(phenotype)
    scores = phenotype_probabilities(cells.images[keep], list(phenotypes.PHENOTYPES), rotations=True)[:, column]
    negatives = np.sort(scores[cells.labels[keep] != column])
    # Smallest threshold with at most the allowed share of negatives at or above it.
    allowed = int(np.floor(max_false_positive_rate * len(negatives)))
    return float(np.nextafter(negatives[len(negatives) - allowed - 1], 1.0))


class TritonPredictor:
    """A ``segment_nuclei`` predictor that sends each tile batch to ``nuclei_unet`` on a Triton server (HTTP)."""

    def __init__(self, http_url: str, model: str = "nuclei_unet", headers: dict[str, str] | None = None) -> None:
        import tritonclient.http as httpclient

        self._module = httpclient
        self._client = httpclient.InferenceServerClient(http_url.removeprefix("http://"))
        self.model = model
        self.headers = headers or {}
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        from .acceleration import INPUT_NAME, OUTPUT_NAME

        data = np.ascontiguousarray(batch, dtype=np.float32)
        request = self._module.InferInput(INPUT_NAME, list(data.shape), "FP32")
        request.set_data_from_numpy(data)
        result = self._client.infer(self.model, [request], outputs=[self._module.InferRequestedOutput(OUTPUT_NAME)],
                                    headers=self.headers)
        self.calls += 1
        return result.as_numpy(OUTPUT_NAME)

    def close(self) -> None:
        self._client.close()


@dataclass
class Answer:
    """The assistant's reply to one question, with what it found and the time each stage took."""

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
    """The sentence the assistant says for an intent and what the models found."""
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


def overlay(ax: Any, image: np.ndarray, labels: np.ndarray, title: str, marks: dict[tuple[int, int], str] | None = None,
            tile_px: int = FIELD_TILE_PX) -> None:
    """Draw the image, nucleus outlines and per-tile phenotype labels on a matplotlib axis."""
    from skimage.segmentation import find_boundaries

    ax.imshow(image, cmap="gray")
    edges = np.ma.masked_where(~find_boundaries(labels), np.ones_like(labels))
    ax.imshow(edges, cmap="autumn", alpha=0.9, interpolation="nearest")
    for (r, c), text in (marks or {}).items():
        ax.text(c * tile_px + 2, r * tile_px + 6, text, color="cyan", fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
