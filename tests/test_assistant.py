"""The capstone assistant's plumbing: intents from imperfect transcripts, fields of view, the operating point."""

from __future__ import annotations

import numpy as np
import pytest

from workshop_utils import assistant, multimodal
from workshop_utils import cell_images as phenotypes
from workshop_utils.core.errors import InputError


@pytest.mark.parametrize("transcript, action", [
    ("how many nuclei are in this image", "count"),
    ("how many cells are in well b three", "count"),
    ("count the cells in this image", "count"),
    ("are any cells dividing", "dividing"),      # "any" must not read as "many"
    ("are eny cels diviting", "dividing"),      # ASR slips
    ("describe this image", "describe"),
    ("descrbe this imge", "describe"),
    ("how man nue nauclei ar in this image", "count"),  # no keyword survives: read as the closest question
    ("how man ighy cells are in his image", "count"),
    ("is this image in focus", "unknown"),  # close to no question the assistant answers
    ("well b three forty two nuclei", "unknown"),  # a lab note, not a question
    ("", "unknown"),
])
def test_intents_tolerate_asr_slips(transcript: str, action: str) -> None:
    assert assistant.parse_intent(transcript).action == action


def test_intent_needs_a_string() -> None:
    with pytest.raises(InputError, match="string"):
        assistant.parse_intent(None)  # type: ignore[arg-type]


def test_field_layout_and_truth() -> None:
    wanted = ["interphase"] * 15 + ["mitotic"]
    field = assistant.compose_field(5, wanted)
    assert field.rgb.shape == (128, 128, 3) and field.image.shape == (128, 128)
    assert field.truth_dividing() == [(3, 3)]
    again = assistant.compose_field(5, wanted)
    assert np.array_equal(field.rgb, again.rgb), "fields are reproducible from their seed"
    with pytest.raises(ValueError, match="grid"):
        assistant.compose_field(5, wanted[:3])
    with pytest.raises(ValueError, match="Unknown phenotypes"):
        assistant.compose_field(5, ["sleepy"] * 16)


def test_tile_crops_follow_the_segmentation() -> None:
    rgb = np.zeros((64, 64, 3), np.float32)
    labels = np.zeros((64, 64), np.int32)
    labels[40, 10] = 1
    crops, where = assistant.tile_crops(rgb, labels)
    assert where == [(1, 0)] and crops[0].shape == (32, 32, 3)


def test_answers_read_well() -> None:
    intent = assistant.Intent("dividing", ("dividing",), 1.0)
    assert assistant.answer_text(intent, 10, {}, []).startswith("No")
    assert "row 2 column 3" in assistant.answer_text(intent, 10, {}, [(1, 2)])
    describe = assistant.answer_text(assistant.Intent("describe", (), 1.0), 9, {"mitotic": 1, "interphase": 8}, [])
    assert describe.startswith("9 nuclei; cells: 8 interphase, 1 mitotic")
    assert "I can count" in assistant.answer_text(assistant.Intent("unknown", (), 0.0), 0, {}, [])


def test_operating_point_bounds_false_positives(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)

    def fake_probabilities(images: np.ndarray, labels: list[str], rotations: bool = False) -> np.ndarray:
        return rng.dirichlet(np.ones(len(labels)), size=len(images))

    monkeypatch.setattr(multimodal, "phenotype_probabilities", fake_probabilities)
    threshold = assistant.calibrate_threshold("mitotic", max_false_positive_rate=0.05, n_cells=400)
    rng = np.random.default_rng(0)  # replay the same scores
    cells = phenotypes.make_cells(400, seed=7001, size=32)
    keep = cells.stains == phenotypes.STAINS.index("fluorescence")
    scores = fake_probabilities(cells.images[keep], list(phenotypes.PHENOTYPES))[:, 1]
    negatives = scores[cells.labels[keep] != 1]
    assert (negatives >= threshold).mean() <= 0.05
    assert (negatives >= threshold - 1e-3).mean() > 0.0
    with pytest.raises(ValueError, match="Unknown phenotype"):
        assistant.calibrate_threshold("sleepy")
