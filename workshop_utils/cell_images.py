"""Synthetic cell images with phenotypes, stains and magnifications, each paired with a template caption.

Six phenotypes (interphase, mitotic, apoptotic, elongated, binucleated, clustered), two stains (fluorescence on a
dark background, H&E brightfield on a light one) and two magnifications (20x, 40x). Everything is drawn from one
seed, so a training set and a held-out set are reproducible and disjoint by construction (different seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from workshop_utils.core.errors import InputError
from workshop_utils.core.inputs import as_array, require_choice, require_int, require_number, require_rng

PHENOTYPES: tuple[str, ...] = ("interphase", "mitotic", "apoptotic", "elongated", "binucleated", "clustered")
STAINS: tuple[str, ...] = ("fluorescence", "H&E")
MAGNIFICATIONS: tuple[str, ...] = ("20x", "40x")

# Caption phrases seen in training; three wordings per phenotype.
PHRASES: dict[str, tuple[str, ...]] = {
    "interphase": ("an interphase cell with a round nucleus", "a resting cell in interphase",
                   "a non-dividing cell with one oval nucleus"),
    "mitotic": ("a mitotic cell with condensed chromosomes", "a dividing cell in metaphase",
                "a cell in mitosis with a bright chromosome plate"),
    "apoptotic": ("an apoptotic cell with a fragmented nucleus", "a dying cell with a blebbing membrane",
                  "a shrunken cell full of nuclear fragments"),
    "elongated": ("an elongated spindle-shaped cell", "a stretched cell with an elongated nucleus",
                  "a long thin migrating cell"),
    "binucleated": ("a binucleated cell with two nuclei", "a cell with two separate nuclei",
                    "a cell that failed cytokinesis and kept two nuclei"),
    "clustered": ("a cluster of touching cells", "a group of cells clumped together",
                  "several crowded cells in a clump"),
}
STAIN_PHRASES: dict[str, tuple[str, ...]] = {
    "fluorescence": ("fluorescence image", "fluorescent stain"),
    "H&E": ("H&E stained brightfield image", "hematoxylin and eosin stain"),
}
TEMPLATES: tuple[str, ...] = ("{stain} of {phrase} at {mag}", "{phrase}, {stain}, {mag} magnification")
# Zero-shot prompts: one short description per class, never used verbatim as a training caption.
CLASS_PROMPTS: dict[str, str] = {
    "interphase": "a microscope image of an interphase cell",
    "mitotic": "a microscope image of a mitotic cell",
    "apoptotic": "a microscope image of an apoptotic cell",
    "elongated": "a microscope image of an elongated cell",
    "binucleated": "a microscope image of a binucleated cell",
    "clustered": "a microscope image of a cluster of cells",
}
UNSEEN_PROMPT = "a cell undergoing programmed cell death"  # stands in for "apoptotic"; no training caption says it


@dataclass(frozen=True)
class CellSet:
    """Images (N, H, W, 3) float32 in [0, 1] with labels, stain, magnification and one caption each."""

    images: np.ndarray
    labels: np.ndarray  # phenotype index into PHENOTYPES
    stains: np.ndarray  # index into STAINS
    mags: np.ndarray  # index into MAGNIFICATIONS
    captions: tuple[str, ...]
    seed: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def keys(self) -> np.ndarray:
        """One integer per (phenotype, stain, magnification): images with equal keys match the same captions."""
        return (self.labels * len(STAINS) + self.stains) * len(MAGNIFICATIONS) + self.mags

    @property
    def label_names(self) -> list[str]:
        return [PHENOTYPES[i] for i in self.labels]


def all_captions() -> list[str]:
    """Every caption the templates can produce (the text tower encodes each once).

    Returns:
        All combinations of phenotype phrase, stain phrase, magnification and template, in a fixed order
        (6 x 3 x 4 x 2 x 2 = 288 captions).

    Example:
        >>> caption_emb = wu.multimodal.encode_texts(wu.cell_images.all_captions())
    """
    out = []
    for phenotype in PHENOTYPES:
        for phrase in PHRASES[phenotype]:
            for stain in STAINS:
                for stain_phrase in STAIN_PHRASES[stain]:
                    for mag in MAGNIFICATIONS:
                        out += [t.format(stain=stain_phrase, phrase=phrase, mag=mag) for t in TEMPLATES]
    return out



def caption_for(phenotype: str, stain: str, mag: str, rng: np.random.Generator) -> str:
    """A random template caption for one image's attributes."""
    require_choice(phenotype, "caption_for", "phenotype", PHENOTYPES, "Use a name from phenotypes.PHENOTYPES.")
    require_choice(stain, "caption_for", "stain", STAINS, "Use a name from phenotypes.STAINS.")
    require_choice(mag, "caption_for", "mag", MAGNIFICATIONS, "Use a name from phenotypes.MAGNIFICATIONS.")
    require_rng(rng, "caption_for")
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    phrase = PHRASES[phenotype][rng.integers(len(PHRASES[phenotype]))]
    stain_phrase = STAIN_PHRASES[stain][rng.integers(len(STAIN_PHRASES[stain]))]
    return template.format(stain=stain_phrase, phrase=phrase, mag=mag)


# ---------------------------------------------------------------- drawing
def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float,
             edge_px: float = 0.8) -> np.ndarray:
    """Soft-edged filled ellipse (values 0..1) on the pixel grid."""
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = yy - cy, xx - cx
    u, v = (dx * c + dy * s) / max(rx, 0.3), (-dx * s + dy * c) / max(ry, 0.3)
    dist = (np.sqrt(u * u + v * v) - 1.0) * min(rx, ry)
    return np.clip(0.5 - dist / (2 * edge_px), 0.0, 1.0)


def _cell(yy, xx, cy, cx, r, aspect, angle, nuclei, rng) -> tuple[np.ndarray, np.ndarray]:
    """Cytoplasm and nucleus masks of one cell; ``nuclei`` lists (dy, dx, ry, rx, brightness) in cell frame."""
    cyto = _ellipse(yy, xx, cy, cx, r / np.sqrt(aspect), r * np.sqrt(aspect), angle)
    nuc = np.zeros_like(cyto)
    c, s = np.cos(angle), np.sin(angle)
    for dy, dx, ry, rx, bright in nuclei:
        ny, nx = cy + dx * s + dy * c, cx + dx * c - dy * s
        nuc = np.maximum(nuc, bright * _ellipse(yy, xx, ny, nx, ry, rx, angle + rng.normal(0, 0.15)))
    return cyto, nuc


def _draw(phenotype: str, size: int, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cytoplasm and nucleus channels (H, W) of one image of ``phenotype``; ``scale`` is the cell radius in px."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = size / 2 + rng.normal(0, size * 0.04, 2)
    angle = rng.uniform(0, np.pi)
    r = scale * rng.uniform(0.9, 1.1)
    if phenotype == "interphase":
        nuclei = [(rng.normal(0, 0.05 * r), rng.normal(0, 0.05 * r), 0.45 * r, 0.5 * r, rng.uniform(0.55, 0.7))]
        return _cell(yy, xx, centre[0], centre[1], r, rng.uniform(1.0, 1.3), angle, nuclei, rng)
    if phenotype == "mitotic":  # rounded cell with a thin, bright metaphase plate (or two in anaphase)
        plates = [(0, 0, 0.6 * r, 0.17 * r, 1.0)] if rng.random() < 0.6 else \
            [(0, -0.3 * r, 0.5 * r, 0.14 * r, 1.0), (0, 0.3 * r, 0.5 * r, 0.14 * r, 1.0)]
        return _cell(yy, xx, centre[0], centre[1], 0.95 * r, 1.0, angle, plates, rng)
    if phenotype == "apoptotic":  # shrunken, blebbing cell with several small nuclear fragments
        frags = [(*rng.normal(0, 0.28 * r, 2), 0.14 * r, 0.14 * r, 1.0) for _ in range(rng.integers(4, 8))]
        cyto, nuc = _cell(yy, xx, centre[0], centre[1], 0.6 * r, 1.0, angle, frags, rng)
        for _ in range(rng.integers(3, 6)):
            a = rng.uniform(0, 2 * np.pi)
            cyto = np.maximum(cyto, _ellipse(yy, xx, centre[0] + 0.6 * r * np.sin(a), centre[1] + 0.6 * r * np.cos(a),
                                             0.2 * r, 0.2 * r, 0))
        return cyto, nuc
    if phenotype == "elongated":
        nuclei = [(0, 0, 0.3 * r, 0.6 * r, rng.uniform(0.55, 0.7))]
        return _cell(yy, xx, centre[0], centre[1], 1.05 * r, rng.uniform(5.0, 8.0), angle, nuclei, rng)
    if phenotype == "binucleated":
        bright = rng.uniform(0.55, 0.7)
        nuclei = [(0, -0.48 * r, 0.36 * r, 0.36 * r, bright), (0, 0.48 * r, 0.36 * r, 0.36 * r, bright)]
        return _cell(yy, xx, centre[0], centre[1], 1.1 * r, 1.6, angle, nuclei, rng)
    if phenotype == "clustered":  # 3-5 small interphase cells touching each other
        cyto = np.zeros((size, size), np.float32)
        nuc = np.zeros_like(cyto)
        count = rng.integers(3, 6)
        for k in range(count):
            a = angle + 2 * np.pi * k / count + rng.normal(0, 0.2)
            cy, cx = centre + 0.75 * r * np.array([np.sin(a), np.cos(a)])
            rc = 0.55 * r * rng.uniform(0.9, 1.1)
            c1, n1 = _cell(yy, xx, cy, cx, rc, 1.1, rng.uniform(0, np.pi),
                           [(0, 0, 0.5 * rc, 0.55 * rc, rng.uniform(0.55, 0.7))], rng)
            cyto, nuc = np.maximum(cyto, c1), np.maximum(nuc, n1)
        return cyto, nuc
    raise ValueError(f"Unknown phenotype {phenotype!r}; expected one of {', '.join(PHENOTYPES)}.")


def add_microscope_noise(image: np.ndarray, rng: np.random.Generator, *, blur_px: float = 0.7,
                         photons: float = 200.0, read_noise: float = 0.02, gradient: float = 0.15) -> np.ndarray:
    """Optical blur, uneven illumination, shot noise (``photons`` at full scale) and read noise on a [0, 1] image."""
    where = "add_microscope_noise"
    image = as_array(image, where, "image", ndim=3, fix="Pass one (H, W, 3) RGB image in [0, 1], e.g. cells.images[0].")
    require_rng(rng, where)
    for name, value in (("blur_px", blur_px), ("read_noise", read_noise), ("gradient", gradient)):
        require_number(value, where, name, minimum=0.0)
    require_number(photons, where, "photons", minimum=0.0, strict=True)
    out = ndimage.gaussian_filter(image, sigma=(blur_px, blur_px, 0)) if blur_px > 0 else image
    h, w = out.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    a, b = rng.normal(0, gradient, 2)
    out = out * (1.0 + a * (yy - 0.5) + b * (xx - 0.5))[..., None]
    out = rng.poisson(np.clip(out, 0, None) * photons) / photons
    out = out + rng.normal(0, read_noise, out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _stain(cyto: np.ndarray, nuc: np.ndarray, stain: str, rng: np.random.Generator) -> np.ndarray:
    """Colour the two masks: fluorescence (green cytoplasm, blue nuclei, dark) or H&E (pink, purple, light)."""
    texture = ndimage.gaussian_filter(rng.normal(0, 1, nuc.shape), 0.8) * 0.12
    nuc = np.clip(nuc * (1 + texture), 0, 1)
    if stain == "fluorescence":
        tint = rng.uniform(0.85, 1.15, 3)
        rgb = np.stack([0.3 * nuc, 0.5 * cyto * (1 - 0.7 * nuc), 0.05 * cyto + nuc], -1) * tint
        return np.clip(rgb, 0, 1)
    absorb_cyto = np.array([0.1, 0.55, 0.35]) * rng.uniform(0.8, 1.2)  # eosin: pink
    absorb_nuc = np.array([1.1, 1.4, 0.5]) * rng.uniform(0.8, 1.2)  # haematoxylin: purple
    od = cyto[..., None] * absorb_cyto + nuc[..., None] * absorb_nuc
    return np.clip(np.exp(-od) * rng.uniform(0.9, 1.0), 0, 1)


def make_cells(n: int, seed: int, size: int = 32) -> CellSet:
    """``n`` captioned cell images of ``size``×``size`` px, balanced over phenotypes; reproducible from ``seed``.

    Stain and magnification are drawn at random per cell; a different seed gives a disjoint held-out set.

    Args:
        n: how many cells to draw (>= 1).
        seed: the random seed (>= 0) everything is drawn from.
        size: the image side (px, >= 16).

    Returns:
        A :class:`CellSet`: ``images`` (n, size, size, 3) float32 in [0, 1], ``labels``, ``stains``, ``mags``
        (indices into ``PHENOTYPES``, ``STAINS``, ``MAGNIFICATIONS``), one caption each, and the seed.

    Example:
        >>> train = wu.cell_images.make_cells(clip_settings.n_train, clip_settings.seed, clip_settings.image_size)
    """
    try:
        require_int(n, "make_cells", "n", minimum=1)
        require_int(size, "make_cells", "size", minimum=16)
        require_int(seed, "make_cells", "seed", minimum=0)
    except InputError as err:  # one sentence for the whole call, as lab 05 documents it
        raise InputError(f"{err} make_cells needs n >= 1 cells of size >= 16 px and a seed >= 0, "
                         "e.g. make_cells(60, seed=0).") from None
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(PHENOTYPES))
    stains = rng.integers(0, len(STAINS), n)
    mags = rng.integers(0, len(MAGNIFICATIONS), n)
    images = np.empty((n, size, size, 3), np.float32)
    captions = []
    for i in range(n):
        phenotype, stain, mag = PHENOTYPES[labels[i]], STAINS[stains[i]], MAGNIFICATIONS[mags[i]]
        radius = size * (0.2 if mag == "20x" else 0.29)  # 40x shows each cell ~1.5x larger
        cyto, nuc = _draw(phenotype, size, radius, rng)
        images[i] = add_microscope_noise(_stain(cyto, nuc, stain, rng), rng, blur_px=rng.uniform(0.4, 0.9))
        captions.append(caption_for(phenotype, stain, mag, rng))
    return CellSet(images, labels, stains, mags, tuple(captions), seed)
