"""Lab 05's assessment of a real VLM, zero-shot: SmolVLM-256M-Instruct through the data layer, the images it is
asked about with their ground truth, and the scores.

The lab writes the model calls it teaches in its own cells (``AutoProcessor``, the chat template with an image,
``model.generate`` and the answers' log-likelihoods); this module holds the plumbing around them: the model's
files in one verified folder (or one line saying why not), microscopy arrays as RGB pictures, the count and
phenotype questions' images, reading a number out of an answer, and the count scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workshop_utils import cell_images as phenotypes
from workshop_utils.core import data_cache, manifests
from workshop_utils.core.data import dataset_of, fetch
from workshop_utils.core.data_store import expected_size
from workshop_utils.core.errors import DownloadError
from workshop_utils.core.inputs import as_array, bad_input, describe, require_int, require_nonempty, require_same_length
from workshop_utils.core.paths import data_cache_dir
from workshop_utils.core.profiles import require_profile
from workshop_utils.multimodal.checks import require_cells

VLM_MODEL = "smolvlm_256m_instruct"  # data_manifests/smolvlm_256m_instruct.yaml
REAL_IMAGE = ("stardist_dsb2018_nucleus", "img2d.tif", "mask2d.tif")  # one DSB2018 image inside the stardist wheel
# Nuclei per synthetic cell, by construction (cell_images._draw); the other phenotypes have no single count.
NUCLEI_PER_CELL: dict[str, int] = {"interphase": 1, "elongated": 1, "binucleated": 2}
SKIPPED = "skipping the zero-shot SmolVLM section (the rest of the lab does not need it)"
_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen twenty").split()
_NUMBER_WORDS = {**{word: n for n, word in enumerate(_WORDS)}, "none": 0, "a dozen": 12, "thirty": 30,
                 "forty": 40, "fifty": 50, "hundred": 100}
_NUMBER = re.compile(r"\d[\d,]*|\b(?:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b", re.I)


@dataclass(frozen=True)
class ZeroShotSettings:
    """How many images SmolVLM is asked about (real DSB2018 images, synthetic cells) and its answer lengths (tokens)."""

    n_real: int = 4
    n_cells: int = 6
    count_tokens: int = 8
    describe_tokens: int = 20


# smoke skips the section (no download in CI); its entry only keeps every profile's lookup working.
ZERO_SHOT_PROFILES: dict[str, ZeroShotSettings] = {
    "smoke": ZeroShotSettings(),
    "cpu": ZeroShotSettings(),
    "gpu": ZeroShotSettings(n_real=12, n_cells=24),
}


@dataclass(frozen=True)
class CountItem:
    """One image to count nuclei in: a name, the picture and the true count (``real``: a DSB2018 image)."""

    name: str
    image: np.ndarray
    truth: int
    real: bool


def fetch_vlm(profile: str, dataset: str = VLM_MODEL) -> Path | None:
    """The folder holding every file of the VLM's manifest, each verified; None after one line saying why not.

    The smoke profile skips it (no 513 MB download in CI); ``WORKSHOP_OFFLINE=1`` with a cold cache, a download
    that fails or a file that fails its checksum print one line (what, why, and ``make prefetch PROFILE=cpu``).

    Args:
        profile: the lab's profile, ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        dataset: the model's name in ``data_manifests/``.

    Returns:
        The cache folder that ``AutoProcessor.from_pretrained`` and ``AutoModelForImageTextToText.from_pretrained``
        read, or None after the notice line.

    Example:
        >>> vlm_dir = wu.multimodal.fetch_vlm(PROFILE)
    """
    profile = require_profile(profile, "fetch_vlm")
    ds = dataset_of(dataset, "fetch_vlm")
    folder = data_cache_dir() / ds.name
    sizes = [expected_size(entry, folder) for entry in ds.files]
    label = f"{ds.name} ({manifests.size_text(sum(s or 0 for s in sizes))} in {len(ds.files)} files)"
    if profile == "smoke":
        print(f"smoke profile: {SKIPPED}; it downloads {label}. To run it: {data_cache.prefetch_command(ds)}, "
              "then run the lab with PROFILE='cpu'")
        return None
    paths = []
    for entry in sorted(ds.files, key=lambda e: e.size or 0):  # the small files first: a problem shows at once
        try:
            paths.append(fetch(ds, entry.name))
        except DownloadError as exc:
            print(f"{label}: {entry.name} {data_cache.unavailable_reason(entry, exc)}: {SKIPPED}. "
                  f"To run it: {data_cache.prefetch_command(ds)}")
            return None
    if len({path.parent for path in paths}) != 1:
        raise DownloadError(f"fetch_vlm: expected the files of {ds.name} in one folder; got "
                            f"{sorted({str(p.parent) for p in paths})}. Next step: check its manifest's file names.")
    return paths[0].parent


def to_pil(image: Any) -> Any:
    """A microscopy array as the RGB picture a VLM's processor reads.

    Grey images (uint8, uint16 or float) are stretched from their 1st to 99.8th percentile; float RGB images are
    read as values in [0, 1].

    Args:
        image: an (H, W) grey image, e.g. a DSB2018 TIFF, or an (H, W, 3) float RGB image in [0, 1] (a cell).

    Returns:
        A ``PIL.Image.Image`` in mode RGB.

    Example:
        >>> picture = wu.multimodal.to_pil(heldout.images[0])
    """
    from PIL import Image

    array = as_array(image, "to_pil", "image", ndim=(2, 3),
                     fix="Pass one (H, W) grey image or one (H, W, 3) RGB image in [0, 1], e.g. cells.images[0].")
    if array.ndim == 3 and array.shape[-1] != 3:
        raise bad_input("to_pil", "image (H, W, 3) with 3 colour channels last", describe(array),
                        "Move the channel axis last (np.moveaxis(image, 0, -1)), or pass one grey (H, W) image.")
    if array.ndim == 2:
        low, high = np.percentile(array, (1.0, 99.8))
        array = np.repeat(((array - low) / max(float(high - low), 1e-6))[..., None], 3, axis=-1)
    return Image.fromarray((np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8), mode="RGB")


def _labelled(mask: np.ndarray) -> int:
    """Nuclei in an instance mask: its distinct non-zero labels (as ``wu.nuclei.count_nuclei`` counts them)."""
    return int(len(np.unique(mask[mask > 0])))


def real_count_set(n: int, dsb_pairs: Sequence[dict[str, str]] = ()) -> list[CountItem]:
    """Real images with their true nuclei counts: the DSB2018 image shipped in the stardist wheel (lab 01's), then
    up to ``n - 1`` of ``dsb_pairs`` spread evenly over the list.

    Args:
        n: how many images (>= 1); fewer when ``dsb_pairs`` is short.
        dsb_pairs: ``{"image": path, "label": path}`` pairs, e.g. ``wu.nuclei.dsb2018_pairs(dsb_root, "test")``;
            empty for the packaged image alone.

    Returns:
        :class:`CountItem` s; each truth is the number of labelled instances in its mask.

    Example:
        >>> real = wu.multimodal.real_count_set(zs.n_real, dsb_test)
    """
    import tifffile

    n = require_int(n, "real_count_set", "n", minimum=1)
    if isinstance(dsb_pairs, (str, bytes)) or not all(isinstance(p, dict) and {"image", "label"} <= set(p)
                                                       for p in dsb_pairs):
        raise bad_input("real_count_set", "dsb_pairs as a list of {'image': path, 'label': path} dicts",
                        describe(dsb_pairs), 'Pass wu.nuclei.dsb2018_pairs(dsb_root, "test"), or leave it out.')
    name, image_file, mask_file = REAL_IMAGE
    items = [CountItem(f"DSB2018 {image_file}", tifffile.imread(fetch(name, image_file)),
                       _labelled(tifffile.imread(fetch(name, mask_file))), True)]
    pairs = list(dsb_pairs)
    if n > 1 and pairs:
        picked = np.unique(np.linspace(0, len(pairs) - 1, min(n - 1, len(pairs))).round().astype(int))
        for i in picked:
            image, mask = tifffile.imread(pairs[i]["image"]), tifffile.imread(pairs[i]["label"])
            items.append(CountItem(f"DSB2018 {Path(pairs[i]['image']).name[:12]}", image, _labelled(mask), True))
    return items


def cell_count_set(cells: phenotypes.CellSet, n: int) -> list[CountItem]:
    """Synthetic cells whose nuclei count is known by construction (interphase, elongated: 1; binucleated: 2).

    Args:
        cells: a set from ``wu.cell_images.make_cells``, e.g. the held-out one.
        n: how many (>= 1), taken in turn from each of those phenotypes.

    Returns:
        :class:`CountItem` s with ``real=False``.

    Example:
        >>> synthetic = wu.multimodal.cell_count_set(heldout, zs.n_cells)
    """
    cells = require_cells(cells, "cell_count_set")
    picked = _balanced(cells, list(NUCLEI_PER_CELL), require_int(n, "cell_count_set", "n", minimum=1))
    return [CountItem(f"synthetic {cells.label_names[i]} #{i}", cells.images[i],
                      NUCLEI_PER_CELL[cells.label_names[i]], False) for i in picked]


def phenotype_set(cells: phenotypes.CellSet, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` cells taken in turn from each of the six phenotypes, and their labels.

    Args:
        cells: a set from ``wu.cell_images.make_cells``, e.g. the held-out one.
        n: how many (>= 1).

    Returns:
        ``(images, labels)``: (n, H, W, 3) float images in [0, 1] and (n,) indices into ``wu.cell_images.PHENOTYPES``.

    Example:
        >>> cell_images, cell_labels = wu.multimodal.phenotype_set(heldout, zs.n_cells)
    """
    cells = require_cells(cells, "phenotype_set")
    picked = _balanced(cells, list(phenotypes.PHENOTYPES), require_int(n, "phenotype_set", "n", minimum=1))
    return cells.images[picked], cells.labels[picked]


def _balanced(cells: phenotypes.CellSet, names: list[str], n: int) -> list[int]:
    """Indices of up to ``n`` cells, one of each phenotype in ``names`` in turn, in set order."""
    queues = [[i for i, label in enumerate(cells.label_names) if label == name] for name in names]
    picked: list[int] = []
    while len(picked) < n and any(queues):
        picked += [queue.pop(0) for queue in queues if queue][: n - len(picked)]
    if not picked:
        raise bad_input("phenotype sets", f"cells of the phenotypes {names}", "none in this set",
                        "Pass a set from wu.cell_images.make_cells (every phenotype is drawn in turn).")
    return picked


def parse_count(answer: str) -> int | None:
    """The first number in a model's answer, in digits or words ("There are 12 nuclei" -> 12, "two" -> 2).

    Args:
        answer: the generated text.

    Returns:
        The number, or None when the answer holds none.

    Example:
        >>> wu.multimodal.parse_count("I can see 14 nuclei.")
        14
    """
    if not isinstance(answer, str):
        raise bad_input("parse_count", "answer as the generated text (a string)", describe(answer),
                        "Decode the generated ids first: processor.decode(ids, skip_special_tokens=True).")
    match = _NUMBER.search(answer)
    if match is None:
        return None
    text = match.group(0).lower()
    return int(text.replace(",", "")) if text[0].isdigit() else _NUMBER_WORDS[text]


def count_scores(counts: Sequence[int | None], items: Sequence[CountItem]) -> dict[str, float]:
    """Mean absolute count errors (nuclei) of a model's answers; an answer without a number counts as 0.

    Args:
        counts: one parsed count per item (:func:`parse_count`), None where the answer held no number.
        items: the :class:`CountItem` s asked about, in the same order.

    Returns:
        ``count_error`` (all items), ``count_error_real`` and ``count_error_synthetic`` (NaN when a kind is
        absent), ``relative_error_real`` (sum of |error| over sum of truths, as lab 01 reports it) and
        ``answered`` (the fraction of answers with a number).

    Example:
        >>> scores = wu.multimodal.count_scores(counts, count_set)
    """
    require_nonempty(items, "count_scores", "items", "Pass the CountItems the model was asked about.")
    require_same_length("count_scores", counts=counts, items=items)
    if not all(isinstance(item, CountItem) for item in items):
        raise bad_input("count_scores", "items as CountItems", describe(list(items)[:2]),
                        "Pass real_count_set(...) + cell_count_set(...), as the model saw them.")
    for count in counts:
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise bad_input("count_scores", "counts as whole numbers >= 0 or None", describe(count),
                            "Parse each answer with wu.multimodal.parse_count.")
    errors = np.array([abs((c or 0) - item.truth) for c, item in zip(counts, items, strict=True)], dtype=float)
    real = np.array([item.real for item in items])
    truths = np.array([item.truth for item in items], dtype=float)

    def mean(mask: np.ndarray) -> float:
        return float(errors[mask].mean()) if mask.any() else float("nan")

    return {"count_error": float(errors.mean()), "count_error_real": mean(real), "count_error_synthetic": mean(~real),
            "relative_error_real": float(errors[real].sum() / max(truths[real].sum(), 1)) if real.any() else float("nan"),
            "answered": float(np.mean([c is not None for c in counts]))}


def what_it_knows(scores: dict[str, float], phenotype_accuracy: float, n_cells: int) -> list[str]:
    """Sentences on what a VLM does and does not know about these images, generated from the measured scores.

    Args:
        scores: :func:`count_scores`' result.
        phenotype_accuracy: the fraction of cells whose phenotype it picked right (six choices).
        n_cells: how many cells that accuracy is over (it sets what "above chance" means: two standard errors).

    Returns:
        One sentence per finding, each with its figure, so the prose never contradicts the numbers.

    Example:
        >>> print("\\n".join(wu.multimodal.what_it_knows(scores, phenotype_accuracy, len(cell_labels))))
    """
    if not isinstance(scores, dict) or not {"count_error_real", "relative_error_real", "count_error_synthetic",
                                            "answered"} <= set(scores):
        raise bad_input("what_it_knows", "scores as the dict count_scores returns", describe(scores),
                        "Pass wu.multimodal.count_scores(counts, count_set).")
    n = require_int(n_cells, "what_it_knows", "n_cells", minimum=1)
    accuracy = float(as_array(phenotype_accuracy, "what_it_knows", "phenotype_accuracy", ndim=0))
    lines = []
    if not np.isnan(scores["count_error_real"]):
        rel = scores["relative_error_real"]
        verdict = ("it counts them roughly" if rel <= 0.25 else "it counts them only loosely" if rel <= 0.5
                   else "it does not count dozens of small nuclei")
        lines.append(f"Real DSB2018 images: off by {scores['count_error_real']:.1f} nuclei on average ({rel:.0%} of "
                     f"the labelled count): {verdict}.")
    if not np.isnan(scores["count_error_synthetic"]):
        error = scores["count_error_synthetic"]
        verdict = "it tells one nucleus from two" if error <= 0.25 else "it does not reliably tell one nucleus from two"
        lines.append(f"Synthetic cells with 1 or 2 nuclei: off by {error:.2f} on average: {verdict}.")
    lines.append(f"It answered with a number {scores['answered']:.0%} of the time" + (
        ": it understands what a count question asks." if scores["answered"] >= 0.8
        else ": the question's form is not one it reliably follows."))
    chance = 1 / len(phenotypes.PHENOTYPES)
    margin = 2 * np.sqrt(chance * (1 - chance) / n)
    lines.append(f"Phenotypes: {accuracy:.2f} right of {n} cells (chance {chance:.2f}): " + (
        "it links some of the lab's words to what the cells look like." if accuracy >= chance + margin
        else "not clearly above chance: its language model knows the words (section 6), its eyes were not trained "
             "to see them in a microscope image."))
    return lines
