"""The shared nuclei model API: input checks, pre/post-processing, pluggable forward pass, save/load, exercise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workshop_utils import check, nuclei
from workshop_utils.core.errors import InputError, MissingFileError
from workshop_utils.nuclei import NucleiConfig, NucleiModel

TINY = NucleiConfig(tile_px=32, channels=(4, 8), strides=(2,), num_res_units=1, sw_batch_size=2)


@pytest.fixture(scope="module")
def tiny_model() -> NucleiModel:
    torch.manual_seed(0)
    return NucleiModel(nuclei.build_network(TINY).eval(), TINY)


def disc_image(shape=(64, 64), centres=((20, 20), (44, 40)), radius=9) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape, np.float32)
    for cy, cx in centres:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 1.0
    return image


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((2, 16, 16)), "2-D"),
        (np.zeros((16, 16, 1)), "np.squeeze"),
        (np.zeros(16), "2-D"),
        (np.zeros((0, 16)), "empty"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric"),
        (np.ones((8, 8), dtype=bool), "numeric"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    ],
)
def test_segment_nuclei_rejects_bad_input_with_a_clear_error(tiny_model, image, message):
    with pytest.raises(InputError, match=message):
        nuclei.segment_nuclei(tiny_model, image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int32])
def test_segment_nuclei_any_size_and_dtype(tiny_model, dtype):
    image = (disc_image((45, 70), centres=((20, 30),)) * 200 + 10).astype(dtype)
    mask, labels = nuclei.segment_nuclei(tiny_model, image)
    assert mask.shape == labels.shape == image.shape
    assert mask.dtype == bool and labels.dtype == np.int32
    np.testing.assert_array_equal(mask, labels > 0)


def test_preprocess_scales_to_unit_range_and_handles_flat_images():
    image = np.arange(10_000, dtype=np.uint16).reshape(100, 100)
    scaled = nuclei.preprocess(image)
    assert scaled.dtype == np.float32 and scaled.min() == 0 and scaled.max() == 1
    assert 0.005 < (scaled == 0).mean() < 0.015 and (scaled == 1).mean() < 0.005
    assert not nuclei.preprocess(np.full((8, 8), 7, np.uint8)).any()
    np.testing.assert_allclose(nuclei.preprocess(image), nuclei.preprocess(image.astype(np.float64) * 3 + 5), atol=1e-6)


def test_postprocess_splits_touching_nuclei_and_accepts_logits():
    touching = disc_image(centres=((32, 22), (32, 41)), radius=10)  # two discs that overlap: one blob
    mask, labels = nuclei.postprocess(touching)
    assert nuclei.count_nuclei(labels) == 2
    assert mask.sum() == (touching > 0.5).sum()
    logits = np.stack([np.zeros_like(touching), np.where(touching > 0, 4.0, -4.0)])
    np.testing.assert_array_equal(nuclei.postprocess(logits)[1], labels)
    one_channel = np.where(touching > 0, 4.0, -4.0)[None]
    np.testing.assert_array_equal(nuclei.postprocess(one_channel)[1], labels)
    empty_mask, empty_labels = nuclei.postprocess(np.zeros((20, 20), np.float32))
    assert not empty_mask.any() and not empty_labels.any()


@pytest.mark.parametrize("fixed_batch", [False, True])
def test_external_predictor_matches_torch_and_is_padded_only_when_fixed(tiny_model, fixed_batch):
    seen = []

    class NumpyPredictor:
        def __call__(self, batch: np.ndarray) -> np.ndarray:
            seen.append((batch.shape, batch.dtype))
            with torch.no_grad():
                return tiny_model.network(torch.from_numpy(batch)).numpy()

    predictor = NumpyPredictor()
    predictor.fixed_batch = fixed_batch
    image = np.random.default_rng(0).normal(100, 20, (70, 60)).astype(np.float32)  # 3x3 windows: the last batch is short
    image01 = nuclei.preprocess(image)
    reference = nuclei.predict_logits(tiny_model, image01)
    plugged = nuclei.predict_logits(tiny_model, image01, predictor=predictor)
    np.testing.assert_allclose(plugged, reference, atol=1e-5)
    assert reference.shape == (TINY.out_channels, 70, 60)
    batch_sizes = {shape[0] for shape, _ in seen}
    assert {shape[1:] for shape, _ in seen} == {(1, TINY.tile_px, TINY.tile_px)}
    if fixed_batch:
        assert batch_sizes == {TINY.sw_batch_size}
    else:
        assert max(batch_sizes) <= TINY.sw_batch_size and sum(s[0] for s, _ in seen) < len(seen) * TINY.sw_batch_size
    assert {dtype for _, dtype in seen} == {np.dtype(np.float32)}


def test_save_and_load_round_trip(tiny_model, tmp_path):
    path = nuclei.save_nuclei_model(tiny_model, tmp_path / "m.pt", dice_real=0.5)
    raw = torch.load(path, weights_only=True)  # plain dicts and tensors only
    assert raw["config"]["tile_px"] == 32 and raw["config"]["normalisation"] == nuclei.NORMALISATION
    loaded = nuclei.load_nuclei_model(path)
    assert loaded.config == TINY and loaded.meta["dice_real"] == 0.5 and not loaded.network.training
    image = disc_image() * 100
    np.testing.assert_array_equal(nuclei.segment_nuclei(loaded, image)[1], nuclei.segment_nuclei(tiny_model, image)[1])
    assert nuclei.ensure_nuclei_model(path=path) == path  # present and loadable: no training


def test_load_errors_say_what_to_do(tmp_path):
    with pytest.raises(MissingFileError, match="ensure_nuclei_model"):
        nuclei.load_nuclei_model(tmp_path / "missing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingFileError, match="Delete it"):
        nuclei.load_nuclei_model(broken)


def test_dice_and_count():
    a = np.zeros((10, 10), int)
    a[:5] = 1
    b = np.zeros((10, 10), int)
    b[:5, :5] = 3
    assert nuclei.dice(a, b) == pytest.approx(2 * 25 / 75)
    assert nuclei.dice(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert nuclei.count_nuclei(np.array([[0, 4, 4], [9, 0, 2]])) == 3


def test_unet_uses_batch_norm_and_config_rebuilds_it():
    network = nuclei.build_network(NucleiConfig.from_dict(TINY.to_dict()))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())
    assert network(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)


def test_transform_exercise_check_hints(tmp_path):
    from monai.transforms import Compose

    files = nuclei.write_synthetic_files(tmp_path, 1, 96, seed=0)
    right = Compose(nuclei.prepare_transforms(TINY))(files[0])
    assert check("01-transforms", right)
    from workshop_utils.exercises import _lookup

    checker, _ = _lookup("01-transforms")
    assert checker(right) is None
    assert "AsDiscreted" in checker({"image": right["image"], "label": right["label"] * 7})
    assert "ScaleIntensityRangePercentilesd" in checker({"image": right["image"] * 300, "label": right["label"]})
    assert "channel first" in checker({"image": right["image"][0], "label": right["label"][0]})
    import tifffile

    raw = tifffile.imread(files[0]["image"]).astype(np.float32)
    minmax = torch.from_numpy((raw - raw.min()) / (raw.max() - raw.min()))[None]  # what ScaleIntensityd does
    assert "min-max" in checker({"image": minmax, "label": right["label"]})
    assert "instance ids" in checker([{"image": right["image"], "label": right["label"] * 2}])
    assert "'image' and 'label'" in checker(right["image"])
