"""Bad input to lab 05's image-text model and captioner (multimodal, phenotypes, vlm) and lab 06's assistant.

Every case fails before a model is loaded, trained or served: the checks sit at the top of each function.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.badinput import Case
from workshop_utils import assistant, serving, vlm
from workshop_utils import cell_images as phenotypes
from workshop_utils import multimodal as mm
from workshop_utils.core.errors import ProfileError
from workshop_utils.core.profiles import torch_device
from workshop_utils.multimodal import llm as multimodal_llm

RNG = np.random.default_rng(0)
IMAGES = RNG.random((4, 32, 32, 3), dtype=np.float32)
EMB = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
SCALE = torch.tensor(np.log(20.0))
KEYS = np.array([0, 1, 2, 3])
COUNT_ITEM = mm.CountItem("one cell", IMAGES[0], 1, False)
SCORES = {"count_error": 1.0, "count_error_real": 1.0, "count_error_synthetic": 1.0, "relative_error_real": 0.1,
          "answered": 1.0}


@functools.cache
def clip() -> mm.CellClip:
    return mm.CellClip(width=4).eval()


@functools.cache
def cells() -> phenotypes.CellSet:
    return phenotypes.make_cells(6, seed=0)


class WordPieces:
    """A stand-in tokenizer with one token per character (answer_token_ids only calls it and reads input_ids)."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> object:
        return type("Encoding", (), {"input_ids": [ord(c) for c in text]})()

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [str(i) for i in ids]


def predictor() -> serving.TritonPredictor:
    """A predictor that was never connected: ``__call__`` checks its batch before it touches the client."""
    return object.__new__(serving.TritonPredictor)


def corrupt_artifact() -> Path:
    path = Path(tempfile.gettempdir()) / "workshop_bad_input_cell_clip.pt"  # rewritten each run, never piles up
    path.write_bytes(b"not a torch file")
    return path


def axes():  # noqa: ANN201 - a matplotlib Axes on the Agg backend
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure().add_subplot()


INTENT = assistant.Intent("count", ("count",), 1.0)
FIELD_LABELS = np.zeros((64, 64), np.int32)
FIELD_RGB = np.zeros((64, 64, 3), np.float32)

CASES = [
    # ------------------------------------------------------------------ phenotypes
    Case("cell_images.caption_for", lambda: phenotypes.caption_for("Mitotic", "H&E", "20x", RNG),
         r"phenotype one of .*'mitotic'", label="unknown-phenotype"),
    Case("cell_images.caption_for", lambda: phenotypes.caption_for("mitotic", "HE", "20x", RNG),
         r"stain one of .*'H&E'", label="unknown-stain"),
    Case("cell_images.caption_for", lambda: phenotypes.caption_for("mitotic", "H&E", "10x", RNG),
         r"mag one of '20x', '40x'", label="unknown-mag"),
    Case("cell_images.caption_for", lambda: phenotypes.caption_for("mitotic", "H&E", "20x", 0),
         r"default_rng", label="seed-not-rng"),
    Case("cell_images.add_microscope_noise", lambda: phenotypes.add_microscope_noise(np.zeros((16, 16)), RNG),
         r"image 3-D.*\(H, W, 3\)", label="grey"),
    Case("cell_images.add_microscope_noise", lambda: phenotypes.add_microscope_noise(np.full((4, 4, 3), np.nan), RNG),
         r"finite", label="nan"),
    Case("cell_images.add_microscope_noise",
         lambda: phenotypes.add_microscope_noise(np.zeros((4, 4, 3)), np.random), r"Generator", label="module-not-rng"),
    Case("cell_images.add_microscope_noise",
         lambda: phenotypes.add_microscope_noise(np.zeros((4, 4, 3)), RNG, photons=0), r"expected photons above 0",
         label="photons"),
    Case("cell_images.add_microscope_noise",
         lambda: phenotypes.add_microscope_noise(np.zeros((4, 4, 3)), RNG, blur_px=-1), r"blur_px", label="blur"),
    Case("cell_images.make_cells", lambda: phenotypes.make_cells(0, seed=0), r"n at least 1.*make_cells needs",
         label="n=0"),
    Case("cell_images.make_cells", lambda: phenotypes.make_cells(4, seed=0, size=8), r"size at least 16", label="size"),
    Case("cell_images.make_cells", lambda: phenotypes.make_cells(2.5, seed=0), r"n as a whole number", label="float-n"),
    Case("cell_images.make_cells", lambda: phenotypes.make_cells(4, seed=-1), r"seed at least 0", label="seed"),
    # ------------------------------------------------------------------ multimodal
    Case("core.profiles.torch_device", lambda: torch_device("laptop"), r"'smoke', 'cpu', 'gpu'", error=ProfileError),
    Case("multimodal.encode_texts", lambda: mm.encode_texts("a mitotic cell"), r"Wrap a single text", label="string"),
    Case("multimodal.encode_texts", lambda: mm.encode_texts([]), r"non-empty texts", label="empty"),
    Case("multimodal.encode_texts", lambda: mm.encode_texts(["a cell", " "]), r"texts\[1\]", label="blank"),
    Case("multimodal.ImageTower.__init__", lambda: mm.ImageTower(0), r"width at least 1", label="zero"),
    Case("multimodal.ImageTower.__init__", lambda: mm.ImageTower(2.5), r"whole number", label="float"),
    Case("multimodal.ImageTower.forward", lambda: clip().tower(IMAGES), r"to_tensor", label="numpy"),
    Case("multimodal.ImageTower.forward", lambda: clip().tower(torch.zeros(2, 1, 32, 32)), r"\(B, 3, H, W\)",
         label="grey"),
    Case("multimodal.CellClip.__init__", lambda: mm.CellClip(-1), r"width at least 1"),
    Case("multimodal.CellClip.encode_image", lambda: clip().encode_image(torch.as_tensor(IMAGES)),
         r"\(B, 3, H, W\).*shape=\(4, 32, 32, 3\)", label="channels-last"),
    Case("multimodal.CellClip.encode_image", lambda: clip().encode_image(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)),
         r"float tensor", label="uint8"),
    Case("multimodal.CellClip.encode_text", lambda: clip().encode_text(torch.zeros(2, 10)), r"\(B, 384\)",
         label="width"),
    Case("multimodal.CellClip.encode_text", lambda: clip().encode_text(np.zeros((2, 384))), r"encode_texts",
         label="numpy"),
    Case("multimodal.to_tensor", lambda: mm.to_tensor(IMAGES[0]), r"images 4-D.*image\[None\]", label="one-image"),
    Case("multimodal.to_tensor", lambda: mm.to_tensor((IMAGES * 255).astype(np.uint8)), r"float dtype.*/ 255",
         label="uint8"),
    Case("multimodal.to_tensor", lambda: mm.to_tensor(IMAGES.transpose(0, 3, 1, 2)), r"channels last",
         label="channels-first"),
    Case("multimodal.to_tensor", lambda: mm.to_tensor(np.full((1, 4, 4, 3), np.nan, np.float32)), r"finite",
         label="nan"),
    Case("multimodal.clip_loss", lambda: mm.clip_loss(EMB, EMB[:, :4], SCALE), r"text_emb .*\(B, 8\)", label="width"),
    Case("multimodal.clip_loss", lambda: mm.clip_loss(EMB, EMB[:3], SCALE), r"len\(image_emb\)=4, len\(text_emb\)=3",
         label="batch"),
    Case("multimodal.clip_loss", lambda: mm.clip_loss(EMB, EMB, 0.07), r"logit_scale as a one-element tensor",
         label="float-scale"),
    Case("multimodal.clip_loss", lambda: mm.clip_loss(EMB, EMB, SCALE, torch.arange(3)), r"len\(keys\)=3",
         label="keys"),
    Case("multimodal.lr_at", lambda: mm.lr_at(100, 100, 1e-3), r"step between 0 and 99", label="step"),
    Case("multimodal.lr_at", lambda: mm.lr_at(0, 0, 1e-3), r"total at least 1", label="total"),
    Case("multimodal.lr_at", lambda: mm.lr_at(0, 10, -1.0), r"expected peak", label="peak"),
    Case("multimodal.lr_at", lambda: mm.lr_at(0, 10, 1e-3, warmup_frac=2), r"expected warmup_frac .*1.0",
         label="warmup"),
    Case("multimodal.train_clip", lambda: mm.train_clip(IMAGES, mm.CLIP_PROFILES["smoke"]), r"cells as a CellSet",
         label="array-not-cells"),
    Case("multimodal.train_clip",
         lambda: mm.train_clip(cells(), dataclasses.replace(mm.CLIP_PROFILES["smoke"], steps=0)),
         r"settings.steps at least 1", label="steps"),
    Case("multimodal.train_clip", lambda: mm.train_clip(cells(), mm.CLIP_PROFILES["smoke"], device="gpu"),
         r"device as 'cpu', 'cuda'", label="device"),
    Case("multimodal.train_clip", lambda: mm.train_clip(cells(), mm.CLIP_PROFILES, "cpu"),
         r"settings as a ClipSettings",
         label="settings-dict"),
    Case("multimodal.embed_images", lambda: mm.embed_images(clip().tower, IMAGES), r"model as a CellClip",
         label="tower-not-model"),
    Case("multimodal.embed_images", lambda: mm.embed_images(clip(), IMAGES[0]), r"images 4-D", label="one-image"),
    Case("multimodal.embed_images", lambda: mm.embed_images(clip(), IMAGES, batch=0), r"batch at least 1",
         label="batch"),
    Case("multimodal.embed_prompts", lambda: mm.embed_prompts(clip(), "a mitotic cell"), r"prompts as a list",
         label="string"),
    Case("multimodal.embed_prompts", lambda: mm.embed_prompts(None, ["a"]), r"model as a CellClip", label="model"),
    Case("multimodal.zero_shot", lambda: mm.zero_shot(clip(), IMAGES, []), r"non-empty prompts", label="empty"),
    Case("multimodal.zero_shot", lambda: mm.zero_shot(clip(), IMAGES[..., 0], ["a"]), r"images 4-D",
         label="grey"),
    Case("multimodal.retrieval_recall", lambda: mm.retrieval_recall(EMB, EMB[:3], KEYS), r"len\(text_emb\)=3",
         label="length"),
    Case("multimodal.retrieval_recall", lambda: mm.retrieval_recall(EMB, EMB, KEYS, ks=(1, 5)),
         r"each k in ks between 1 and 4", label="k-too-big"),
    Case("multimodal.retrieval_recall", lambda: mm.retrieval_recall(EMB, EMB, KEYS.astype(float)),
         r"integer dtype.*cells.keys", label="float-keys"),
    Case("multimodal.retrieval_recall", lambda: mm.retrieval_recall(EMB, EMB[:, :4], KEYS, ks=(1,)),
         r"same width", label="width"),
    Case("multimodal.retrieval_recall", lambda: mm.retrieval_recall(EMB, EMB, KEYS, ks=()), r"non-empty ks",
         label="no-k"),
    Case("multimodal.save_cell_clip", lambda: mm.save_cell_clip(clip(), mm.CLIP_PROFILES["smoke"], "fast"),
         r"profile one of", error=ProfileError, label="profile"),
    Case("multimodal.save_cell_clip", lambda: mm.save_cell_clip(clip().tower, mm.CLIP_PROFILES["smoke"], "smoke"),
         r"model as a CellClip", label="model"),
    Case("multimodal.save_cell_clip",
         lambda: mm.save_cell_clip(clip(), mm.CLIP_PROFILES["smoke"], "smoke", path="/no/such/folder/cell_clip.pt"),
         r"existing folder", label="folder"),
    Case("multimodal.save_cell_clip", lambda: mm.save_cell_clip(clip(), mm.CLIP_PROFILES["smoke"], "smoke", [0.9]),
         r"metrics as a dict", label="metrics"),
    Case("multimodal.load_cell_clip", lambda: mm.load_cell_clip(Path("/no/such/cell_clip.pt")),
         r"ensure_cell_clip", error=FileNotFoundError, label="missing"),
    Case("multimodal.load_cell_clip", lambda: mm.load_cell_clip(corrupt_artifact()), r"written by mm.save_cell_clip",
         label="corrupt"),
    Case("multimodal.load_cell_clip", lambda: mm.load_cell_clip(3), r"path as a path", label="number"),
    Case("multimodal.ensure_cell_clip", lambda: mm.ensure_cell_clip("turbo"), r"'smoke', 'cpu', 'gpu'",
         error=ProfileError),
    Case("multimodal.phenotype_probabilities", lambda: mm.phenotype_probabilities(IMAGES, []), r"at least one label",
         label="no-labels"),
    Case("multimodal.phenotype_probabilities", lambda: mm.phenotype_probabilities(np.zeros((1, 2, 8, 8, 3)), ["a"]),
         r"phenotype_probabilities expects \(H, W\)", label="5-D"),
    Case("multimodal.phenotype_probabilities", lambda: mm.phenotype_probabilities(np.array(["cell"]), ["a"]),
         r"numeric dtype", label="strings"),
    Case("multimodal.classify_cells", lambda: mm.classify_cells(IMAGES, "mitotic"), r"Wrap a single text",
         label="one-label-string"),
    Case("multimodal.classify_cells", lambda: mm.classify_cells(IMAGES, []), r"at least one label", label="no-labels"),
    Case("multimodal.classify_cells", lambda: mm.classify_cells(IMAGES[..., :1], ["mitotic"]), r"colour channels last",
         label="one-channel"),
    Case("multimodal.classify_cells", lambda: mm.classify_cells([np.zeros((8, 8)), np.zeros((9, 9))], ["mitotic"]),
         r"as an array", label="ragged"),
    # ------------------------------------------------------------------ vlm
    Case("vlm.question_set", lambda: vlm.question_set(IMAGES), r"cells as a CellSet", label="images"),
    Case("vlm.question_set", lambda: vlm.question_set(cells(), limit=0), r"limit at least 1", label="limit"),
    Case("vlm.question_set",
         lambda: vlm.question_set(dataclasses.replace(cells(), labels=np.full(6, phenotypes.PHENOTYPES.index("elongated")))),
         r"cells with a phenotype among", label="none"),
    Case("vlm.answer_token_ids", lambda: vlm.answer_token_ids("gpt2"), r"a transformers tokenizer", label="name"),
    Case("vlm.answer_token_ids", lambda: vlm.answer_token_ids(WordPieces()), r"to be one token", label="pieces"),
    # ------------------------------------------------------------------ multimodal.llm
    Case("multimodal.llm.ensure_converted", lambda: multimodal_llm.ensure_converted(Path("/nonexistent.gguf"), "0" * 64),
         r"gguf", label="missing"),
    Case("multimodal.llm.ensure_converted",
         lambda: multimodal_llm.ensure_converted(Path(__file__), "0" * 64, convert="convert_gguf"),
         r"convert as", label="convert"),
    # ------------------------------------------------------------------ assistant
    # ------------------------------------------------------------------ assistant
    Case("assistant.parse_intent", lambda: assistant.parse_intent(None), r"transcript as a string",
         label="none"),
    Case("assistant.read_intent", lambda: assistant.read_intent(None), r"transcript as a string", label="none"),
    Case("assistant.read_intent", lambda: assistant.read_intent("count", margin=-1), r"expected margin .*0.0",
         label="margin"),
    Case("assistant.parse_intent", lambda: assistant.parse_intent(["count", "cells"]), r"asr.transcribe",
         label="list"),
    Case("assistant.parse_intent", lambda: assistant.parse_intent("count", threshold=2), r"expected threshold .*1.0",
         label="threshold"),
    Case("assistant.compose_field", lambda: assistant.compose_field(5, ["interphase"] * 3), r"grid\*grid=16",
         label="count"),
    Case("assistant.compose_field", lambda: assistant.compose_field(5, ["sleepy"] * 16), r"Unknown phenotypes",
         label="unknown"),
    Case("assistant.compose_field", lambda: assistant.compose_field(5, "mitotic"), r"wanted as a list", label="string"),
    Case("assistant.compose_field", lambda: assistant.compose_field(5, ["mitotic"], grid=0), r"grid at least 1",
         label="grid"),
    Case("assistant.compose_field", lambda: assistant.compose_field(0, ["mitotic"] * 16), r"at most 14 mitotic tiles",
         label="too-many"),
    Case("assistant.tile_crops", lambda: assistant.tile_crops(FIELD_RGB, FIELD_LABELS[:32]), r"same height and width",
         label="shape"),
    Case("assistant.tile_crops", lambda: assistant.tile_crops(FIELD_RGB, FIELD_LABELS.astype(float)),
         r"bool or integer",
         label="float-labels"),
    Case("assistant.tile_crops", lambda: assistant.tile_crops(FIELD_RGB, FIELD_LABELS, tile_px=100),
         r"tile_px between 1 and 64", label="tile"),
    Case("assistant.tile_crops", lambda: assistant.tile_crops(FIELD_RGB[None], FIELD_LABELS), r"image 2-D or 3-D",
         label="batch"),
    Case("assistant.calibrate_threshold", lambda: assistant.calibrate_threshold("sleepy"), r"Unknown phenotype",
         label="unknown"),
    Case("assistant.calibrate_threshold", lambda: assistant.calibrate_threshold("mitotic", max_false_positive_rate=0.9),
         r"expected max_false_positive_rate .*0.5", label="rate"),
    Case("assistant.calibrate_threshold", lambda: assistant.calibrate_threshold("mitotic", n_cells=10),
         r"n_cells at least 60", label="n_cells"),
    Case("serving.TritonPredictor.__init__", lambda: serving.TritonPredictor("https://127.0.0.1:8000"),
         r"host:port", label="https"),
    Case("serving.TritonPredictor.__init__", lambda: serving.TritonPredictor(""), r"server.http_url",
         label="empty"),
    Case("serving.TritonPredictor.__init__", lambda: serving.TritonPredictor("127.0.0.1:8000", model="nuclei unet"),
         r"Triton model name", label="model"),
    Case("serving.TritonPredictor.__init__",
         lambda: serving.TritonPredictor("127.0.0.1:8000", headers={"x-token": 1}), r"dict of str to str",
         label="headers"),
    Case("serving.TritonPredictor.__call__", lambda: predictor()(np.zeros((256, 256), np.float32)), r"batch 4-D",
         label="one-tile"),
    Case("serving.TritonPredictor.__call__", lambda: predictor()(np.zeros((1, 3, 64, 64), np.float32)),
         r"one grey channel", label="rgb"),
    Case("serving.TritonPredictor.__call__", lambda: predictor()(np.full((1, 1, 4, 4), np.nan, np.float32)),
         r"finite", label="nan"),
    Case("assistant.answer_text", lambda: assistant.answer_text("count", 3, {}, []), r"parse_intent", label="string"),
    Case("assistant.answer_text", lambda: assistant.answer_text(assistant.Intent("Count", (), 1.0), 3, {}, []),
         r"intent.action one of", label="action"),
    Case("assistant.answer_text", lambda: assistant.answer_text(INTENT, -1, {}, []), r"count at least 0",
         label="count"),
    Case("assistant.answer_text", lambda: assistant.answer_text(INTENT, 3, {}, [(1,)]), r"\(row, column\) pairs",
         label="dividing"),
    Case("assistant.answer_text", lambda: assistant.answer_text(INTENT, 3, ["mitotic"], []), r"phenotype_counts",
         label="counts"),
    Case("assistant.overlay", lambda: assistant.overlay(None, FIELD_RGB, FIELD_LABELS, "t"), r"matplotlib Axes",
         label="ax"),
    Case("assistant.overlay", lambda: assistant.overlay(axes(), FIELD_RGB, FIELD_LABELS[:, :8], "t"),
         r"same height and width", label="shape"),
    Case("assistant.overlay", lambda: assistant.overlay(axes(), FIELD_RGB, None, "t"), r"got None", label="no-labels"),
    Case("assistant.overlay", lambda: assistant.overlay(axes(), FIELD_RGB, FIELD_LABELS, "t", marks=[(0, 0)]),
         r"marks as a dict", label="marks"),
    Case("multimodal.fetch_vlm", lambda: mm.fetch_vlm("laptop"), r"smoke.*cpu.*gpu", error=ProfileError,
         label="profile"),
    Case("multimodal.fetch_vlm", lambda: mm.fetch_vlm("cpu", dataset=5), r"data set's name", label="dataset"),
    Case("multimodal.to_pil", lambda: mm.to_pil(IMAGES), r"image 2-D or 3-D", label="batch"),
    Case("multimodal.to_pil", lambda: mm.to_pil(np.zeros((4, 4, 4))), r"3 colour channels last", label="channels"),
    Case("multimodal.to_pil", lambda: mm.to_pil(None), r"image as an array", label="none"),
    Case("multimodal.real_count_set", lambda: mm.real_count_set(0), r"n at least 1", label="n"),
    Case("multimodal.real_count_set", lambda: mm.real_count_set(2, "pairs"), r"dsb2018_pairs", label="pairs"),
    Case("multimodal.cell_count_set", lambda: mm.cell_count_set(IMAGES, 2), r"cells", label="cells"),
    Case("multimodal.cell_count_set", lambda: mm.cell_count_set(cells(), 0), r"n at least 1", label="n"),
    Case("multimodal.phenotype_set", lambda: mm.phenotype_set(cells(), 1.5), r"n as a whole number", label="n"),
    Case("multimodal.parse_count", lambda: mm.parse_count(None), r"answer as the generated text", label="none"),
    Case("multimodal.count_scores", lambda: mm.count_scores([], []), r"non-empty items", label="empty"),
    Case("multimodal.count_scores", lambda: mm.count_scores([1, 2], [COUNT_ITEM]), r"len\(counts\)=2",
         label="lengths"),
    Case("multimodal.count_scores", lambda: mm.count_scores([-1], [COUNT_ITEM]), r"whole numbers >= 0",
         label="negative"),
    Case("multimodal.count_scores", lambda: mm.count_scores([1], [3]), r"items as CountItems", label="items"),
    Case("multimodal.what_it_knows", lambda: mm.what_it_knows({}, 0.5, 6), r"scores as the dict", label="scores"),
    Case("multimodal.what_it_knows", lambda: mm.what_it_knows(SCORES, 0.5, 0), r"n_cells at least 1", label="n"),
]
EXEMPT = {
    "assistant.Answer": "a result record answer_text builds; the lab reads its fields, never constructs one",
    "cell_images.all_captions": "takes no arguments",
    "cell_images.CellSet.keys": "a property of a finished CellSet; takes no arguments",
    "cell_images.CellSet.label_names": "a property of a finished CellSet; takes no arguments",
    "multimodal.text_model_dir": "takes no arguments (the model ships in a package; fetch checks its sha256)",
    "multimodal.load_text_encoder": "takes no arguments; test_multimodal's needs_minilm tests load it",
    "multimodal.load_llm": "takes no arguments; test_llm.py loads it (the GGUF ships in a package, sha256-checked)",
    "multimodal.llm_dir": "takes no arguments; test_llm.py checks its conversion cache",
    "assistant.Field.image": "a property of a composed field; takes no arguments",
    "assistant.Field.truth_dividing": "reads the field's own phenotypes; takes no arguments",
    "serving.TritonPredictor.close": "takes no arguments; closing needs a live client (lab 06 covers it)",
}



def test_phenotype_inputs_as_lab05_passes_them() -> None:
    made = phenotypes.make_cells(np.int64(6), np.int64(3), size=np.int64(16))  # profile fields may be numpy ints
    assert made.images.shape == (6, 16, 16, 3) and made.seed == 3
    caption = phenotypes.caption_for("mitotic", "H&E", "40x", np.random.default_rng(0))
    assert caption in phenotypes.all_captions()
    noisy = phenotypes.add_microscope_noise(np.full((8, 8, 3), 0.5), np.random.default_rng(0), blur_px=0)
    assert noisy.shape == (8, 8, 3) and noisy.dtype == np.float32


def test_multimodal_accepts_numpy_tensors_and_tuples() -> None:
    x = mm.to_tensor(torch.as_tensor(IMAGES))  # a tensor works as well as the numpy array
    assert torch.equal(x, mm.to_tensor(IMAGES)) and x.shape == (4, 3, 32, 32)
    model = clip()
    emb = mm.embed_images(model, IMAGES, batch=np.int64(3))
    assert emb.shape == (4, mm.TEXT_DIM)
    assert model.encode_text(torch.zeros(2, mm.TEXT_DIM) + 1).shape == (2, mm.TEXT_DIM)
    assert torch_device("smoke") == torch.device("cpu")
    recall = mm.retrieval_recall(EMB, EMB, KEYS, ks=(1,))
    assert recall == mm.retrieval_recall(EMB.numpy(), EMB.numpy(), list(KEYS), ks=[1]) == \
        {"recall_at_1_i2t": 1.0, "recall_at_1_t2i": 1.0}
    loss = mm.clip_loss(EMB, EMB, torch.nn.Parameter(SCALE.clone()), torch.as_tensor(KEYS))
    assert loss.ndim == 0
    assert [mm.lr_at(s, 3, 1.0, warmup_frac=0.0) for s in range(3)][0] == pytest.approx(1.0)
    assert mm.classify._as_batch([np.zeros((20, 20), np.uint8)] * 2, 32).shape == (2, 32, 32, 3)  # lab 06's grey crops


def test_question_set_inputs_as_lab05_passes_them() -> None:
    images, answers = vlm.question_set(cells(), limit=np.int64(2))  # profile fields may be numpy ints
    assert len(images) == len(answers) <= 2 and answers.dtype == np.int64


def test_assistant_inputs_as_lab06_passes_them() -> None:
    field = assistant.compose_field(11, tuple(["interphase"] * 15 + ["mitotic"]))
    labels = np.zeros(field.image.shape, np.int32)
    labels[40, 40] = 1
    crops, where = assistant.tile_crops(field.rgb, labels)
    assert where == [(1, 1)] and crops[0].shape == (32, 32, 3)
    intent = assistant.parse_intent("are any cells dividing")
    assert assistant.answer_text(intent, np.int64(3), {}, [(1, 1)]).startswith("Yes")
    ax = axes()
    assistant.overlay(ax, field.image, labels, "title", {(1, 1): "mitotic"})
    assistant.overlay(ax, field.image, labels, "no marks")


def test_triton_predictor_accepts_the_server_url() -> None:
    pytest.importorskip("tritonclient.http")
    for url in ("127.0.0.1:8000", "http://localhost:8000", "[::1]:8000"):
        predictor = serving.TritonPredictor(url, headers={"Authorization": "Bearer x"})  # no request is sent
        assert predictor.model == "nuclei_unet" and predictor.calls == 0
        predictor.close()
