"""Synthetic fluorescence microscopy of cell nuclei, with ground-truth instance labels.

``synthetic_nuclei(size_px, seed)`` returns a ``uint16`` camera image and an ``int32`` label image (0 background,
1..n one id per nucleus). It is built to look like the DSB2018 DAPI image the labs test on (nuclei of 8-17 px
semi-axis, dim ~3x over background, some small bright mitotic ones) and to be hard enough that training matters:
clusters of touching and overlapping nuclei, a range of sizes, shapes and brightness, chromatin texture, blur,
uneven illumination, unlabelled debris and haze, and Poisson + Gaussian camera noise.

The imaging steps are small public functions (``blur``, ``uneven_illumination``, ``add_debris``,
``add_microscope_noise``) so other generators (lab 05's phenotypes) can reuse them on their own clean images.
Everything is deterministic given the seed.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from workshop_utils.core.inputs import as_array, bad_input, describe, require_int, require_number, require_rng

Rng = np.random.Generator

RADIUS_PX = (8.0, 17.0)  # semi-major axis range of an interphase nucleus, pixels
NUCLEI_PER_MPX = (350.0, 800.0)  # nuclei per megapixel (the DSB image has ~480)


def _rng(seed: int | Rng | None, where: str = "synthetic_nuclei") -> Rng:
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise bad_input(where, "seed as a non-negative int, None or a np.random.Generator", describe(seed),
                        "Pass e.g. seed=0.") from None



def _require_shape(shape: Any, where: str, name: str = "shape", minimum: int = 1) -> tuple[int, int]:
    """``shape`` as (height, width) of whole numbers of at least ``minimum`` px; an int n means (n, n)."""
    sides = (shape, shape) if isinstance(shape, numbers.Integral) and not isinstance(shape, bool) else shape
    if not isinstance(sides, (tuple, list)) or len(sides) != 2:
        raise bad_input(where, f"{name} as (height, width) or one int", describe(shape),
                        f"Pass e.g. {name}=(256, 256).")
    height = require_int(sides[0], where, f"{name}[0]", minimum=minimum)
    return height, require_int(sides[1], where, f"{name}[1]", minimum=minimum)


def nucleus_shape(a_px: float, b_px: float, theta: float, rng: Rng, wobble: float = 0.06) -> np.ndarray:
    """Boolean mask of one ellipse-like nucleus (semi-axes in px, angle in rad) with a wavy outline."""
    where = "nucleus_shape"
    require_number(a_px, where, "a_px", minimum=0.0, strict=True)
    require_number(b_px, where, "b_px", minimum=0.0, strict=True)
    require_number(theta, where, "theta")
    require_number(wobble, where, "wobble", minimum=0.0, maximum=1.0)
    require_rng(rng, where)
    half = int(np.ceil(max(a_px, b_px) * (1 + 3 * wobble))) + 1
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    phi = np.arctan2(v * a_px / b_px, u)
    radius = np.ones_like(phi)
    for k in (2, 3, 5):
        radius += rng.normal(0, wobble / k * 2) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    return (u / a_px) ** 2 + (v / b_px) ** 2 <= radius**2


def _paste(labels: np.ndarray, shape_mask: np.ndarray, cy: int, cx: int, label: int) -> float:
    """Draw ``shape_mask`` under existing nuclei at (cy, cx); return the fraction of it left visible."""
    h, w = labels.shape
    half = shape_mask.shape[0] // 2
    y0, x0 = cy - half, cx - half
    ys, xs = slice(max(y0, 0), min(y0 + shape_mask.shape[0], h)), slice(max(x0, 0), min(x0 + shape_mask.shape[1], w))
    part = shape_mask[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    window = labels[ys, xs]
    free = part & (window == 0)
    if part.sum() == 0:
        return 0.0
    visible = free.sum() / shape_mask.sum()
    if visible >= 0.65:  # reject heavy occlusion: a nucleus hidden behind others is not labellable
        window[free] = label
    return float(visible)


def place_nuclei(shape: tuple[int, int], rng: Rng, n_nuclei: int, cluster_p: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """Instance labels of ``n_nuclei`` nuclei, many in touching clusters; also each label's kind (1 mitotic)."""
    where = "place_nuclei"
    shape = _require_shape(shape, where)
    require_rng(rng, where)
    require_int(n_nuclei, where, "n_nuclei", minimum=0)
    require_number(cluster_p, where, "cluster_p", minimum=0.0, maximum=1.0)
    labels = np.zeros(shape, np.int32)
    centres: list[tuple[int, int, float]] = []
    kinds = [0]
    for _ in range(n_nuclei * 3):
        if len(centres) >= n_nuclei:
            break
        mitotic = rng.random() < 0.06
        a = rng.uniform(3.0, 6.0) if mitotic else rng.uniform(*RADIUS_PX)
        b = a * (rng.uniform(0.6, 1.0) if mitotic else rng.uniform(0.5, 0.95))
        if centres and rng.random() < cluster_p:  # touch or overlap a neighbour
            py, px, pr = centres[rng.integers(len(centres))]
            angle, gap = rng.uniform(0, 2 * np.pi), (pr + b) * rng.uniform(0.75, 1.05)
            cy = int(np.clip(py + gap * np.sin(angle), 0, shape[0] - 1))
            cx = int(np.clip(px + gap * np.cos(angle), 0, shape[1] - 1))
        else:
            cy, cx = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        mask = nucleus_shape(a, b, rng.uniform(0, np.pi), rng)
        if _paste(labels, mask, cy, cx, len(kinds)) >= 0.65:
            centres.append((cy, cx, a))
            kinds.append(int(mitotic))
    tidy, kept = _tidy(labels)
    return tidy, np.asarray(kinds, np.int32)[np.concatenate([[0], kept])]


def _tidy(labels: np.ndarray, min_area_px: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Keep each label's largest piece, drop slivers (border cuts), renumber 1..n; also the kept old ids."""
    out = np.zeros_like(labels)
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        pieces, count = ndi.label(labels[box] == index)
        if count > 1:
            sizes = ndi.sum(np.ones_like(pieces), pieces, index=range(1, count + 1))
            pieces = (pieces == 1 + int(np.argmax(sizes))).astype(np.int32)
        keep = pieces > 0
        if keep.sum() >= min_area_px:
            out[box][keep] = index
    ids = np.unique(out[out > 0])
    lookup = np.zeros(labels.max() + 1, np.int32)
    lookup[ids] = np.arange(1, len(ids) + 1)
    return lookup[out], ids.astype(np.int64)


def render_nuclei(labels: np.ndarray, rng: Rng, mitotic: np.ndarray | None = None) -> np.ndarray:
    """Clean fluorescence (about 1.0 for a typical nucleus, 0 outside): per-nucleus brightness, dim rims, texture."""
    where = "render_nuclei"
    labels = as_array(labels, where, "labels", ndim=2, kind="integer",
                      fix="Pass an (H, W) int label image, e.g. from place_nuclei.")
    require_rng(rng, where)
    if mitotic is not None:
        mitotic = as_array(mitotic, where, "mitotic", ndim=1, kind="integer", allow_empty=True,
                           fix="Pass the per-label kinds place_nuclei returns (or None).")
    n = int(labels.max())
    brightness = np.concatenate([[0.0], rng.lognormal(0.0, 0.35, n)])
    if mitotic is not None and len(mitotic) == n + 1:
        brightness[mitotic == 1] *= rng.uniform(2.0, 3.5, int(mitotic.sum()))
    inside = labels > 0
    seams = np.zeros_like(inside)
    seams[:-1] |= labels[:-1] != labels[1:]
    seams[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    depth = ndi.distance_transform_edt(inside & ~seams)
    dome = 1.0 - 0.45 * np.exp(-depth / 2.0)  # edges and seams between touching nuclei are dimmer
    texture = 1.0 + rng.uniform(0.1, 0.3) * ndi.gaussian_filter(rng.normal(0, 1, labels.shape), 1.5) * 2.5
    return (brightness[labels] * dome * np.clip(texture, 0.3, None) * inside).astype(np.float32)


def blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian point-spread blur (sigma in px)."""
    image = as_array(image, "blur", "image", ndim=(2, 3))
    require_number(sigma_px, "blur", "sigma_px", minimum=0.0)
    return ndi.gaussian_filter(image.astype(np.float32), sigma_px)


def uneven_illumination(shape: tuple[int, int], rng: Rng, strength: float = 0.35) -> np.ndarray:
    """Smooth multiplicative illumination field, mean ~1, spanning about 1 +- strength (vignetting + gradient)."""
    where = "uneven_illumination"
    h, w = _require_shape(shape, where)
    require_rng(rng, where)
    require_number(strength, where, "strength", minimum=0.0, maximum=1.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / max(h - 1, 1) - 0.5, xx / max(w - 1, 1) - 0.5
    cy, cx = rng.uniform(-0.3, 0.3, 2)
    vignette = -((yy - cy) ** 2 + (xx - cx) ** 2) * 2.0
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(0.3, 1.0)
    field = vignette + gradient
    field = (field - field.mean()) / (np.ptp(field) + 1e-6)
    return (1.0 + 2 * strength * field).astype(np.float32)


def add_debris(image: np.ndarray, rng: Rng, n_specks: int = 6, n_haze: int = 2, level: float = 1.0) -> np.ndarray:
    """Add unlabelled clutter: small bright specks and large dim out-of-focus haze (``level`` ~ nucleus brightness)."""
    where = "add_debris"
    image = as_array(image, where, "image", ndim=2)
    require_rng(rng, where)
    require_int(n_specks, where, "n_specks", minimum=0)
    require_int(n_haze, where, "n_haze", minimum=0)
    require_number(level, where, "level", minimum=0.0)
    h, w = image.shape
    extra = np.zeros((h, w), np.float32)
    for _ in range(n_specks):
        extra[rng.integers(0, h), rng.integers(0, w)] += level * rng.uniform(3.0, 12.0)
    extra = ndi.gaussian_filter(extra, 1.0)
    haze = np.zeros((h, w), np.float32)
    for _ in range(n_haze):
        haze[rng.integers(0, h), rng.integers(0, w)] = 1.0
    sigma = rng.uniform(8, 16)
    haze = ndi.gaussian_filter(haze, sigma) * (2 * np.pi * sigma**2) * level * rng.uniform(0.15, 0.35)
    return image + extra + haze


def add_microscope_noise(
    image: np.ndarray,
    rng: Rng,
    photons_per_unit: float = 60.0,
    read_noise: float = 3.0,
    offset: float = 8.0,
    dtype: type = np.uint16,
) -> np.ndarray:
    """Camera image from expected intensity: Poisson shot noise, Gaussian read noise, offset, clipped to ``dtype``."""
    where = "add_microscope_noise"
    image = as_array(image, where, "image", ndim=(2, 3))
    require_rng(rng, where)
    require_number(photons_per_unit, where, "photons_per_unit", minimum=0.0, strict=True)
    require_number(read_noise, where, "read_noise", minimum=0.0)
    require_number(offset, where, "offset")
    try:
        numeric = np.dtype(dtype).kind in "uif"
    except TypeError:
        numeric = False
    if not numeric:
        raise bad_input(where, "dtype as a numeric numpy dtype", describe(dtype),
                        "Pass e.g. dtype=np.uint16 or np.float32.")
    expected = np.clip(image, 0, None) * photons_per_unit
    counts = rng.poisson(expected).astype(np.float32) + rng.normal(offset, read_noise, image.shape)
    if np.issubdtype(dtype, np.integer):
        info: np.iinfo[Any] = np.iinfo(dtype)
        return np.clip(np.rint(counts), info.min, info.max).astype(dtype)
    return counts.astype(dtype)


def synthetic_nuclei(size_px: int | tuple[int, int] = 256, seed: int | Rng | None = 0, n_nuclei: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic nuclei image (uint16 counts) and its int32 instance labels, deterministic by ``seed``.

    Args:
        size_px: the image side (px, >= 32), or ``(height, width)``.
        seed: an int (>= 0), a ``np.random.Generator`` to draw from, or None for fresh OS entropy (not repeatable).
        n_nuclei: how many nuclei to place; None draws 350-800 per megapixel (22-52 at 256 px).

    Returns:
        ``(image, labels)``: the uint16 camera image and the int32 labels (0 background, 1..n one id per nucleus).

    Example:
        >>> image, truth = wu.nuclei_images.synthetic_nuclei(size_px=256, seed=2026)
    """
    where = "synthetic_nuclei"
    shape = _require_shape(size_px, where, "size_px", minimum=32)
    if n_nuclei is not None:
        require_int(n_nuclei, where, "n_nuclei", minimum=0)
    rng = _rng(seed, where)
    if n_nuclei is None:
        n_nuclei = int(rng.uniform(*NUCLEI_PER_MPX) * shape[0] * shape[1] / 1e6)
    labels, mitotic = place_nuclei(shape, rng, n_nuclei)
    clean = render_nuclei(labels, rng, mitotic)
    background = rng.uniform(0.12, 0.3)
    scene = add_debris(clean + background, rng, n_specks=int(rng.integers(2, 10)), n_haze=int(rng.integers(0, 4)))
    scene = blur(scene, rng.uniform(0.8, 2.0)) * uneven_illumination(shape, rng, rng.uniform(0.1, 0.4))
    image = add_microscope_noise(scene, rng, photons_per_unit=rng.uniform(25, 90), read_noise=rng.uniform(1, 5),
                                 offset=rng.uniform(0, 10))
    return image, labels


def synthetic_nuclei_set(n_images: int, size_px: int = 256, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_images`` independent (image, labels) pairs; image i depends only on (seed, i).

    Args:
        n_images: how many pairs (>= 1).
        size_px: the image side (px, >= 32).
        seed: the set's seed (>= 0); use a seed not used for training to get held-out images.

    Returns:
        A list of ``(image, labels)`` pairs as :func:`synthetic_nuclei` returns them.

    Example:
        >>> heldout = wu.nuclei_images.synthetic_nuclei_set(8, size_px=256, seed=1000)
    """
    where = "synthetic_nuclei_set"
    require_int(n_images, where, "n_images", minimum=1)
    _require_shape(size_px, where, "size_px", minimum=32)
    require_int(seed, where, "seed", minimum=0)
    return [synthetic_nuclei(size_px, np.random.default_rng([seed, i])) for i in range(n_images)]
