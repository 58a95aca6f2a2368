"""Property-based tests (hypothesis) of the image helpers: any valid input works, any invalid one gets a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from workshop_utils import assistant, nuclei
from workshop_utils import nuclei_images as cells
from workshop_utils.core.errors import InputError

NUMERIC = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(NUMERIC, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64),
                  elements=st.integers(0, 255)))
def test_preprocess_maps_any_numeric_2d_image_into_unit_range(image: np.ndarray) -> None:
    out = nuclei.preprocess(image)
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)))
def test_check_image_accepts_only_finite_nonempty_2d(array: np.ndarray) -> None:
    valid = array.ndim == 2 and array.size > 0 and np.isfinite(array).all()
    if valid:
        assert nuclei.check_image(array).shape == array.shape
    else:
        with pytest.raises(InputError) as excinfo:
            nuclei.check_image(array)
        assert "segment_nuclei" in str(excinfo.value)


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.zeros((4, 4), bool), np.zeros((4, 4), complex)])
def test_check_image_rejects_non_numeric_dtypes(bad: np.ndarray) -> None:
    with pytest.raises(InputError, match="numeric"):
        nuclei.check_image(bad)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), height=st.integers(32, 96), width=st.integers(32, 96))
def test_synthetic_nuclei_labels_are_consistent_and_seeded(seed: int, height: int, width: int) -> None:
    image, labels = cells.synthetic_nuclei((height, width), seed=seed)
    assert image.shape == labels.shape == (height, width)
    assert image.dtype == np.uint16 and labels.dtype == np.int32
    ids = np.unique(labels)
    assert ids[0] >= 0 and (ids[ids > 0] == np.arange(1, len(ids[ids > 0]) + 1)).all(), "labels are 1..n, no gaps"
    again_image, again_labels = cells.synthetic_nuclei((height, width), seed=seed)
    assert np.array_equal(image, again_image) and np.array_equal(labels, again_labels)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_intent_parser_never_crashes(transcript: str) -> None:
    assert assistant.parse_intent(transcript).action in {"count", "dividing", "describe", "unknown"}
