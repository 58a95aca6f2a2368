"""The captioned cell generator: reproducible, balanced, captions that match their images' attributes."""

from __future__ import annotations

import numpy as np
import pytest

from workshop_utils import cell_images as ph


def test_same_seed_same_cells_and_other_seed_differs() -> None:
    a, b, c = ph.make_cells(24, seed=3), ph.make_cells(24, seed=3), ph.make_cells(24, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions == b.captions
    assert not np.allclose(a.images, c.images)


def test_shapes_range_and_balance() -> None:
    cells = ph.make_cells(60, seed=0, size=40)
    assert cells.images.shape == (60, 40, 40, 3) and cells.images.dtype == np.float32
    assert 0.0 <= cells.images.min() and cells.images.max() <= 1.0
    assert np.bincount(cells.labels, minlength=6).tolist() == [10] * 6
    assert len(cells) == 60 and len(cells.captions) == 60


def test_captions_describe_their_image() -> None:
    cells = ph.make_cells(48, seed=1)
    for caption, label, stain, mag in zip(cells.captions, cells.labels, cells.stains, cells.mags, strict=True):
        assert any(phrase in caption for phrase in ph.PHRASES[ph.PHENOTYPES[label]]), caption
        assert any(s in caption for s in ph.STAIN_PHRASES[ph.STAINS[stain]]), caption
        assert caption.endswith(ph.MAGNIFICATIONS[mag]) or f"{ph.MAGNIFICATIONS[mag]} magnification" in caption
        assert caption in ph.all_captions()


def test_keys_group_equal_descriptions() -> None:
    cells = ph.make_cells(120, seed=2)
    for key in np.unique(cells.keys):
        members = cells.keys == key
        assert len({(label, s, m) for label, s, m in zip(cells.labels[members], cells.stains[members], cells.mags[members], strict=True)}) == 1


def test_zero_shot_prompts_are_not_training_captions() -> None:
    captions = set(ph.all_captions())
    assert ph.UNSEEN_PROMPT not in captions
    assert not any("programmed cell death" in c for c in captions)
    assert not set(ph.CLASS_PROMPTS.values()) & captions
    assert set(ph.CLASS_PROMPTS) == set(ph.PHENOTYPES)


def test_stains_look_different() -> None:
    cells = ph.make_cells(60, seed=5)
    background = np.median(cells.images.reshape(len(cells), -1), axis=1)  # most pixels are background
    fluorescence, brightfield = background[cells.stains == 0], background[cells.stains == 1]
    assert fluorescence.max() < 0.3 < 0.7 < brightfield.min()  # dark background vs light background


def test_magnification_makes_cells_bigger() -> None:
    cells = ph.make_cells(240, seed=6)
    fluorescence = cells.stains == 0
    area = (cells.images[..., 1] > 0.15).sum(axis=(1, 2))  # green cytoplasm above background
    interphase = fluorescence & (cells.labels == 0)
    assert area[interphase & (cells.mags == 1)].mean() > 1.5 * area[interphase & (cells.mags == 0)].mean()


def test_noise_is_seeded_and_clipped() -> None:
    image = np.full((16, 16, 3), 0.5, np.float32)
    a = ph.add_microscope_noise(image, np.random.default_rng(0))
    b = ph.add_microscope_noise(image, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.01


@pytest.mark.parametrize("kwargs", [{"n": 0, "seed": 0}, {"n": 4, "seed": 0, "size": 8}])
def test_bad_arguments_are_explained(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="make_cells needs"):
        ph.make_cells(**kwargs)
