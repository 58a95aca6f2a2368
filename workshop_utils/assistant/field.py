"""The capstone's test images: a synthetic field of cells with known phenotypes, its crops, calibration, overlay.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from workshop_utils import cell_images as phenotypes
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    describe,
    require_choice,
    require_int,
    require_nonempty,
    require_number,
)

# Action -> keyword -> weight. What to count ("nuclei", "cells") only tips a question towards counting.

FIELD_TILE_PX = 32


def require_phenotype_names(names: Any, where: str, name: str) -> list[str]:
    """A list of phenotype names, each from ``phenotypes.PHENOTYPES``."""
    items = require_nonempty(names, where, name, "Pass a list of phenotype names, e.g. ['interphase'] * 16.")
    unknown = sorted({str(n) for n in items} - set(phenotypes.PHENOTYPES))
    if unknown:
        raise bad_input(where, f"{name} to name phenotypes from {', '.join(phenotypes.PHENOTYPES)}", f"{unknown}",
                        "Unknown phenotypes cannot be drawn: check the spelling (lowercase), e.g. 'mitotic'.")
    return cast("list[str]", items)  # require_nonempty returns a list, and every name was checked above


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
    """Tile ``grid``×``grid`` fluorescence cells drawn with lab 05's generator; ``wanted`` lists their phenotypes.

    Args:
        seed: the generator seed (>= 0) for the pool of cells the tiles are taken from.
        wanted: one phenotype name per tile, row by row (``grid * grid`` names from ``cell_images.PHENOTYPES``).
        grid: tiles per side; each tile is 32 px, so the field is ``32 * grid`` px square.

    Returns:
        A :class:`Field`: ``rgb`` (H, W, 3) float32 in [0, 1], the ``phenotypes`` by tile, ``grid`` and ``tile_px``;
        ``field.image`` is the grey image the nuclei model sees.

    Example:
        >>> field_ = wu.assistant.compose_field(3, ["interphase"] * 15 + ["mitotic"])
    """
    where = "compose_field"
    grid = require_int(grid, where, "grid", minimum=1)
    seed = require_int(seed, where, "seed", minimum=0)
    wanted = require_phenotype_names(wanted, where, "wanted")
    if len(wanted) != grid * grid:
        raise bad_input(where, f"one phenotype per tile: grid*grid={grid * grid} names", f"{len(wanted)}",
                        f"Pass {grid * grid} names or change grid.")
    pool = phenotypes.make_cells(40 * len(phenotypes.PHENOTYPES), seed=seed, size=FIELD_TILE_PX)
    fluorescence = phenotypes.STAINS.index("fluorescence")
    have = Counter(phenotypes.PHENOTYPES[label] for label in pool.labels[pool.stains == fluorescence])
    short = {name: n for name, n in Counter(wanted).items() if n > have[name]}
    if short:
        most = ", ".join(f"{have[name]} {name}" for name in short)
        raise bad_input(where, f"at most {most} tiles (the fluorescence cells seed {seed} draws)", f"{short}",
                        "Mix phenotypes in the field, or use a smaller grid.")
    tiles, taken = [], set()
    for name in wanted:
        label = phenotypes.PHENOTYPES.index(name)
        index = next(i for i in range(len(pool.labels))
                     if pool.labels[i] == label and pool.stains[i] == fluorescence and i not in taken)
        taken.add(index)
        tiles.append(pool.images[index])
    rows = [np.concatenate(tiles[r * grid:(r + 1) * grid], axis=1) for r in range(grid)]
    return Field(rgb=np.concatenate(rows, axis=0).astype(np.float32), phenotypes=list(wanted), grid=grid)


def _require_image_and_labels(image: Any, labels: Any, tile_px: Any, where: str, *, tile_fits: bool = True,
                              ) -> tuple[np.ndarray, np.ndarray, int]:
    """An (H, W) or (H, W, 3) image, (H, W) labels of the same size, and a tile (no bigger than the image)."""
    image = as_array(image, where, "image", ndim=(2, 3), fix="Pass the field's image (field.rgb or field.image).")
    labels = as_array(labels, where, "labels", ndim=2, kind="mask",
                      fix="Pass the (H, W) int labels from nuclei.segment_nuclei (its second result).")
    if labels.shape != image.shape[:2]:
        raise bad_input(where, "labels the same height and width as the image",
                        f"image {image.shape[:2]} vs labels {labels.shape}", "Segment the same image you pass here.")
    tile_px = require_int(tile_px, where, "tile_px", minimum=1, maximum=min(labels.shape) if tile_fits else None)
    return image, labels, tile_px


def tile_crops(rgb: np.ndarray, labels: np.ndarray, tile_px: int = FIELD_TILE_PX) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """The grid tiles in which the segmentation found at least one nucleus, with their (row, column).

    Args:
        rgb: the field's (H, W, 3) or (H, W) image, e.g. ``field.rgb``.
        labels: the (H, W) instance labels of the same image, from :func:`segment_nuclei` (0 = background).
        tile_px: the tile's side (px); tiles that do not fit whole at the right or bottom edge are skipped.

    Returns:
        ``(crops, where)``: the tile images with a nucleus, and the (row, column) of each, in row-major order.

    Example:
        >>> crops, where = wu.assistant.tile_crops(field_.rgb, labels)
    """
    rgb, labels, tile_px = _require_image_and_labels(rgb, labels, tile_px, "tile_crops")
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

    Args:
        phenotype: the phenotype to call, from ``cell_images.PHENOTYPES``, e.g. ``"mitotic"``.
        max_false_positive_rate: the largest share (0-0.5) of other fluorescence cells allowed at or above it.
        n_cells: labelled cells to generate (at least 60); only the fluorescence ones are scored.
        seed: the generator seed of the calibration cells (not one the scripted fields use).

    Returns:
        The threshold on P(``phenotype``) from :func:`phenotype_probabilities` (with rotations).

    Example:
        >>> MITOTIC_THRESHOLD = wu.assistant.calibrate_threshold("mitotic", max_false_positive_rate=0.01)
    """
    where = "calibrate_threshold"
    require_choice(phenotype, where, "phenotype", phenotypes.PHENOTYPES,
                   "Unknown phenotype: check the spelling (lowercase), e.g. 'mitotic'.")
    require_number(max_false_positive_rate, where, "max_false_positive_rate", minimum=0.0, maximum=0.5)
    require_int(n_cells, where, "n_cells", minimum=60)  # about 5 fluorescence cells of each phenotype
    require_int(seed, where, "seed", minimum=0)
    from workshop_utils.multimodal import phenotype_probabilities

    cells = phenotypes.make_cells(n_cells, seed=seed, size=FIELD_TILE_PX)
    keep = cells.stains == phenotypes.STAINS.index("fluorescence")
    column = list(phenotypes.PHENOTYPES).index(phenotype)
    scores = phenotype_probabilities(cells.images[keep], list(phenotypes.PHENOTYPES), rotations=True)[:, column]
    negatives = np.sort(scores[cells.labels[keep] != column])
    # Smallest threshold with at most the allowed share of negatives at or above it.
    allowed = int(np.floor(max_false_positive_rate * len(negatives)))
    return float(np.nextafter(negatives[len(negatives) - allowed - 1], 1.0))


def overlay(ax: Any, image: np.ndarray, labels: np.ndarray, title: str, marks: dict[tuple[int, int], str] | None = None,
            tile_px: int = FIELD_TILE_PX) -> None:
    """Draw the image, nucleus outlines and per-tile phenotype labels on a matplotlib axis.

    Shows ``image`` in grey with the outlines of ``labels`` over it and each mark in cyan at its tile's top-left
    corner, sets ``title`` and hides the axes.

    Args:
        ax: the matplotlib ``Axes`` to draw on.
        image: the (H, W) or (H, W, 3) image.
        labels: (H, W) instance labels of the same size, from :func:`segment_nuclei`.
        title: the axis title, e.g. the question and the answer.
        marks: ``{(row, column): text}`` written on those tiles, e.g. each tile's phenotype; None for none.
        tile_px: the tile's side (px) that places the marks.

    Example:
        >>> wu.assistant.overlay(ax, image, answer.labels, answer.text, item.get("marks"))
    """
    where = "overlay"
    if not hasattr(ax, "imshow") or not hasattr(ax, "text"):
        raise bad_input(where, "ax as a matplotlib Axes", describe(ax), "Pass one axis: fig, ax = plt.subplots().")
    image, labels, tile_px = _require_image_and_labels(image, labels, tile_px, where, tile_fits=False)
    if not isinstance(title, str):
        raise bad_input(where, "title as a string", describe(title), "Pass e.g. answer.text.")
    if marks is not None and not isinstance(marks, Mapping):
        raise bad_input(where, "marks as a dict of (row, column) -> text (or None)", describe(marks),
                        "Pass dict(zip(where, kinds)) from tile_crops, or leave it out.")
    from skimage.segmentation import find_boundaries

    ax.imshow(image, cmap="gray")
    edges = np.ma.masked_where(~find_boundaries(labels), np.ones_like(labels))
    ax.imshow(edges, cmap="autumn", alpha=0.9, interpolation="nearest")
    for (r, c), text in (marks or {}).items():
        ax.text(c * tile_px + 2, r * tile_px + 6, text, color="cyan", fontsize=6)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
