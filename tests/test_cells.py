"""The synthetic nuclei generator: shapes, label consistency, realism that makes training matter, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from workshop_utils import nuclei_images as cells


@pytest.mark.parametrize("size", [64, 256, (96, 160)])
def test_shapes_and_dtypes(size):
    image, labels = cells.synthetic_nuclei(size, seed=3)
    expected = (size, size) if isinstance(size, int) else size
    assert image.shape == labels.shape == expected
    assert image.dtype == np.uint16 and labels.dtype == np.int32


def test_same_seed_same_image_other_seed_differs():
    a_image, a_labels = cells.synthetic_nuclei(128, seed=7)
    b_image, b_labels = cells.synthetic_nuclei(128, seed=7)
    c_image, _ = cells.synthetic_nuclei(128, seed=8)
    np.testing.assert_array_equal(a_image, b_image)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert not np.array_equal(a_image, c_image)


def test_set_items_do_not_depend_on_set_size():
    short, long = cells.synthetic_nuclei_set(2, 96, seed=5), cells.synthetic_nuclei_set(4, 96, seed=5)
    for (a_image, a_labels), (b_image, b_labels) in zip(short, long, strict=False):
        np.testing.assert_array_equal(a_image, b_image)
        np.testing.assert_array_equal(a_labels, b_labels)
    assert not np.array_equal(long[0][0], long[1][0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_are_sequential_connected_and_brighter_than_background(seed):
    image, labels = cells.synthetic_nuclei(256, seed=seed)
    ids = np.unique(labels[labels > 0])
    assert len(ids) >= 10
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        _, pieces = ndi.label(labels[box] == index)
        assert pieces == 1, f"nucleus {index} is split into {pieces} pieces"
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() >= 12
    assert np.median(image[labels > 0]) > 1.8 * np.median(image[labels == 0])


def test_nuclei_touch_and_vary_like_real_ones():
    touching, areas, brightness = 0, [], []
    for image, labels in cells.synthetic_nuclei_set(4, 256, seed=11):
        right = (labels[:, :-1] > 0) & (labels[:, 1:] > 0) & (labels[:, :-1] != labels[:, 1:])
        down = (labels[:-1] > 0) & (labels[1:] > 0) & (labels[:-1] != labels[1:])
        touching += int(right.sum() + down.sum())
        areas += list(np.bincount(labels.ravel())[1:])
        brightness += list(ndi.mean(image, labels, np.arange(1, labels.max() + 1)))
    assert touching > 100, "clusters of touching nuclei are what makes counting hard"
    assert np.percentile(areas, 90) > 2.5 * np.percentile(areas, 10)
    assert np.percentile(brightness, 90) > 1.5 * np.percentile(brightness, 10)
    assert 150 < np.median(areas) < 900  # the real DSB image's median nucleus is ~440 px


def test_rejects_bad_size():
    with pytest.raises(ValueError, match="size_px"):
        cells.synthetic_nuclei(16)


def test_microscope_noise_is_poisson_plus_gaussian_and_clips():
    clean = np.full((200, 200), 2.0, np.float32)
    noisy = cells.add_microscope_noise(clean, np.random.default_rng(0), photons_per_unit=50, read_noise=2, offset=10)
    assert noisy.dtype == np.uint16
    assert abs(noisy.mean() - 110) < 1.5
    assert abs(noisy.var() - (100 + 4)) < 15  # shot-noise variance equals the mean photon count, plus read noise²
    again = cells.add_microscope_noise(clean, np.random.default_rng(0), photons_per_unit=50, read_noise=2, offset=10)
    np.testing.assert_array_equal(noisy, again)
    saturated = cells.add_microscope_noise(np.full((4, 4), 1e6, np.float32), np.random.default_rng(0), dtype=np.uint8)
    assert saturated.dtype == np.uint8 and saturated.max() == 255


def test_illumination_blur_and_debris():
    rng = np.random.default_rng(0)
    field = cells.uneven_illumination((128, 128), rng, strength=0.3)
    assert abs(field.mean() - 1) < 0.01 and 0.25 < np.ptp(field) < 0.65
    spike = np.zeros((33, 33), np.float32)
    spike[16, 16] = 1
    blurred = cells.blur(spike, 2.0)
    assert blurred.max() < 0.1 and abs(blurred.sum() - 1) < 1e-3
    base = np.zeros((128, 128), np.float32)
    assert cells.add_debris(base, np.random.default_rng(1), n_specks=5, n_haze=1).max() > 0
