"""Bad input to the image modules: cells (synthetic nuclei), nuclei (the shared model), acceleration (ONNX,
ONNX Runtime, TensorRT) and triton_repository (config.pbtxt folders). Nothing here trains, starts a server or
needs TensorRT: the models are one convolution, written with onnx.helper or exported in about a second."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.badinput import Case
from workshop_utils import acceleration, nuclei, serving
from workshop_utils import nuclei_images as cells
from workshop_utils.core.errors import HardwareRequirementError, InputError, MissingFileError, WorkshopError
from workshop_utils.nuclei import NucleiConfig, NucleiModel
from workshop_utils.serving import repository as triton_repository

TILE, CLASSES = 16, 2
TINY = NucleiConfig(tile_px=TILE, channels=(4, 8), strides=(2,), num_res_units=1, sw_batch_size=2)


@functools.cache
def scratch() -> Path:
    """A temporary folder for the files the cases read (removed after this module's tests)."""
    return Path(tempfile.mkdtemp(prefix="wu-bad-input-images-"))


@pytest.fixture(scope="module", autouse=True)
def _remove_scratch() -> Iterator[None]:
    yield
    if scratch.cache_info().currsize:
        shutil.rmtree(scratch(), ignore_errors=True)
    for cached in (scratch, tiny_onnx, garbage):
        cached.cache_clear()


@functools.cache
def tiny_onnx(config: bool = False, inputs: int = 1) -> Path:
    """A one-convolution model with the nuclei contract image (N,1,T,T) -> logits (N,C,T,T)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(CLASSES, 1, 3, 3)).astype(np.float32)
    extra = [helper.make_tensor_value_info(f"extra{i}", TensorProto.FLOAT, ["N", 1]) for i in range(1, inputs)]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["logits"], pads=[1, 1, 1, 1])], "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, TILE, TILE]), *extra],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES, TILE, TILE])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if config:
        entry = model.metadata_props.add()
        entry.key, entry.value = acceleration.CONFIG_KEY, '{"tile_px": 16}'
    path = scratch() / f"tiny_{int(config)}_{inputs}.onnx"
    onnx.save(model, str(path))
    return path


@functools.cache
def garbage() -> Path:
    path = scratch() / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf")
    return path


def missing(name: str = "nothing.onnx") -> Path:
    return scratch() / "missing" / name


def folder_with_a_file() -> Path:
    folder = scratch() / "notes"
    folder.mkdir(exist_ok=True)
    (folder / "keep.txt").write_text("not a model repository")
    return folder


def conv_model() -> NucleiModel:
    """A NucleiModel whose network is one convolution (no MONAI needed)."""
    torch.manual_seed(0)
    return NucleiModel(torch.nn.Conv2d(1, CLASSES, 3, padding=1).eval(), TINY)


def bare_trt_predictor() -> serving.TrtPredictor:
    """A TrtPredictor without an engine: enough to reach the batch check, which runs before TensorRT is used."""
    return object.__new__(serving.TrtPredictor)


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


IMAGE = np.full((64, 64), 100, np.uint16)
GOOD_IO = {"input": ("image", [1, TILE, TILE]), "output": ("logits", [CLASSES, TILE, TILE])}


def wrong_predictor_segment() -> Any:
    return nuclei.segment_nuclei(conv_model(), IMAGE, predictor=lambda batch: np.zeros((len(batch), CLASSES, 8, 8)))


CELLS = [
    Case("nuclei_images.nucleus_shape", lambda: cells.nucleus_shape(0, 5, 0.0, rng()), "expected a_px", label="zero-axis"),
    Case("nuclei_images.nucleus_shape", lambda: cells.nucleus_shape(8, 5, 0.0, 3), "rng as a numpy random Generator", label="seed-not-rng"),
    Case("nuclei_images.nucleus_shape", lambda: cells.nucleus_shape(8, 5, float("nan"), rng()), "theta as a finite number", label="nan-angle"),
    Case("nuclei_images.place_nuclei", lambda: cells.place_nuclei((64,), rng(), 5), r"shape as \(height, width\)", label="1-d-shape"),
    Case("nuclei_images.place_nuclei", lambda: cells.place_nuclei((64, 64), rng(), -1), "n_nuclei at least 0", label="negative-count"),
    Case("nuclei_images.place_nuclei", lambda: cells.place_nuclei((64, 64), rng(), 5, cluster_p=2), "expected cluster_p", label="probability"),
    Case("nuclei_images.render_nuclei", lambda: cells.render_nuclei(np.zeros((8, 8)), rng()), "integer dtype", label="float-labels"),
    Case("nuclei_images.render_nuclei", lambda: cells.render_nuclei(np.zeros((2, 8, 8), np.int32), rng()), "labels 2-D", label="3-d"),
    Case("nuclei_images.render_nuclei", lambda: cells.render_nuclei(np.zeros((0, 8), np.int32), rng()), "non-empty labels", label="empty"),
    Case("nuclei_images.render_nuclei", lambda: cells.render_nuclei(np.zeros((8, 8), np.int32), rng(), mitotic=np.zeros((2, 2), np.int32)),
         "mitotic 1-D", label="mitotic-shape"),
    Case("nuclei_images.blur", lambda: cells.blur(np.zeros(8), 1.0), "image 2-D or 3-D", label="1-d"),
    Case("nuclei_images.blur", lambda: cells.blur(np.zeros((8, 8)), -1.0), "expected sigma_px", label="negative-sigma"),
    Case("nuclei_images.blur", lambda: cells.blur(np.array([["a", "b"]]), 1.0), "numeric dtype", label="strings"),
    Case("nuclei_images.uneven_illumination", lambda: cells.uneven_illumination("large", rng()), r"\(height, width\)", label="shape-text"),
    Case("nuclei_images.uneven_illumination", lambda: cells.uneven_illumination((64, 64), rng(), strength=5), "expected strength", label="strength"),
    Case("nuclei_images.uneven_illumination", lambda: cells.uneven_illumination((0, 64), rng()), r"shape\[0\] at least 1", label="zero-side"),
    Case("nuclei_images.add_debris", lambda: cells.add_debris(np.zeros((2, 8, 8)), rng()), "image 2-D", label="3-d"),
    Case("nuclei_images.add_debris", lambda: cells.add_debris(np.zeros((8, 8)), rng(), n_specks=2.5), "n_specks as a whole number", label="fraction"),
    Case("nuclei_images.add_debris", lambda: cells.add_debris(np.zeros((8, 8)), None), "Generator", label="no-rng"),
    Case("nuclei_images.add_microscope_noise", lambda: cells.add_microscope_noise(np.array([[1.0, np.nan]]), rng()), "nan_to_num", label="nan"),
    Case("nuclei_images.add_microscope_noise", lambda: cells.add_microscope_noise(np.ones((4, 4)), rng(), photons_per_unit=0), "photons_per_unit",
         label="no-photons"),
    Case("nuclei_images.add_microscope_noise", lambda: cells.add_microscope_noise(np.ones((4, 4)), rng(), dtype=str), "numeric numpy dtype",
         label="text-dtype"),
    Case("nuclei_images.add_microscope_noise", lambda: cells.add_microscope_noise(np.ones((4, 4)), rng(), read_noise=-1), "read_noise",
         label="negative-noise"),
    Case("nuclei_images.synthetic_nuclei", lambda: cells.synthetic_nuclei(16), r"size_px\[0\] at least 32", label="too-small"),
    Case("nuclei_images.synthetic_nuclei", lambda: cells.synthetic_nuclei((64, 64, 3)), r"size_px as \(height, width\)", label="rgb-size"),
    Case("nuclei_images.synthetic_nuclei", lambda: cells.synthetic_nuclei(64, seed="abc"), "seed as a non-negative int", label="text-seed"),
    Case("nuclei_images.synthetic_nuclei", lambda: cells.synthetic_nuclei(64, seed=-1), "seed as a non-negative int", label="negative-seed"),
    Case("nuclei_images.synthetic_nuclei", lambda: cells.synthetic_nuclei(64, n_nuclei=-3), "n_nuclei at least 0", label="negative-count"),
    Case("nuclei_images.synthetic_nuclei_set", lambda: cells.synthetic_nuclei_set(0), "n_images at least 1", label="none"),
    Case("nuclei_images.synthetic_nuclei_set", lambda: cells.synthetic_nuclei_set(2, seed=-1), "seed at least 0", label="negative-seed"),
    Case("nuclei_images.synthetic_nuclei_set", lambda: cells.synthetic_nuclei_set(2, size_px=8), "size_px", label="too-small"),
]

NUCLEI = [
    Case("nuclei.NucleiConfig.from_dict", lambda: NucleiConfig.from_dict([1, 2]), "raw as a dict", label="list"),
    Case("nuclei.NucleiConfig.from_dict", lambda: NucleiConfig.from_dict({"tile_px": 30}), r"divisible by prod\(strides\)=8",
         label="tile-vs-strides"),
    Case("nuclei.NucleiConfig.from_dict", lambda: NucleiConfig.from_dict({"overlap": 1.0}), r"overlap in \[0, 1\)", label="overlap"),
    Case("nuclei.NucleiConfig.from_dict", lambda: NucleiConfig.from_dict({"channels": [16]}), "channels as a tuple of at least 2",
         label="one-level"),
    Case("nuclei.NucleiConfig.from_dict", lambda: NucleiConfig.from_dict({"normalisation": {"kind": "zscore"}}), "'percentile'",
         label="normalisation"),
    Case("nuclei.NucleiConfig.from_dict", lambda: NucleiConfig.from_dict({"threshold": 1.5}), "expected threshold", label="threshold"),
    Case("nuclei.NucleiModel.__call__", lambda: conv_model()(np.zeros((1, 1, 16, 16), np.float32)), "torch tensor", label="numpy"),
    Case("nuclei.NucleiModel.__call__", lambda: conv_model()(torch.zeros(1, 16, 16)), r"\(N, 1, H, W\)", label="3-d"),
    Case("nuclei.NucleiModel.__call__", lambda: conv_model()(torch.zeros(1, 3, 16, 16)), r"\(N, 1, H, W\)", label="rgb"),
    Case("nuclei.build_network", lambda: nuclei.build_network(TINY.to_dict()), "config as a NucleiConfig", label="dict"),
    Case("nuclei.check_image", lambda: nuclei.check_image(np.zeros((2, 16, 16))), "2-D", label="stack"),
    Case("nuclei.check_image", lambda: nuclei.check_image(np.zeros((16, 16, 1))), "np.squeeze", label="channel"),
    Case("nuclei.check_image", lambda: nuclei.check_image(np.zeros((0, 16))), "empty", label="empty"),
    Case("nuclei.check_image", lambda: nuclei.check_image(np.ones((8, 8), bool)), "numeric", label="bool"),
    Case("nuclei.check_image", lambda: nuclei.check_image(np.array([[1.0, np.nan]])), "NaN", label="nan"),
    Case("nuclei.check_image", lambda: nuclei.check_image([[1, 2], [3]]), "as an array", label="ragged"),
    Case("nuclei.check_image", lambda: nuclei.check_image(None), "numeric", label="none"),
    Case("nuclei.preprocess", lambda: nuclei.preprocess(np.zeros(16)), "segment_nuclei: expected one 2-D", label="1-d"),
    Case("nuclei.preprocess", lambda: nuclei.preprocess(IMAGE, {"kind": "minmax"}), "'percentile'", label="kind"),
    Case("nuclei.preprocess", lambda: nuclei.preprocess(IMAGE, "percentile"), "normalisation as a dict", label="text"),
    Case("nuclei.preprocess", lambda: nuclei.preprocess(IMAGE, {"kind": "percentile", "lower": 99, "upper": 1}), "below",
         label="swapped"),
    Case("nuclei.preprocess", lambda: nuclei.preprocess(IMAGE, {"kind": "percentile", "lower": 1, "upper": 120}),
         r"expected normalisation\['upper'\] .*; got 120", label="upper"),
    Case("nuclei.predict_logits", lambda: nuclei.predict_logits(Path("nuclei_unet.pt"), np.zeros((16, 16), np.float32)),
         "model as a NucleiModel", label="path-not-model"),
    Case("nuclei.predict_logits", lambda: nuclei.predict_logits(conv_model(), IMAGE), "float dtype.*preprocess", label="raw-image"),
    Case("nuclei.predict_logits", lambda: nuclei.predict_logits(conv_model(), np.zeros((1, 16, 16), np.float32)), "image01 2-D",
         label="3-d"),
    Case("nuclei.predict_logits", lambda: nuclei.predict_logits(conv_model(), np.zeros((16, 16), np.float32), predictor="onnx"),
         "predictor as a callable", label="predictor"),
    Case("nuclei.foreground_probability", lambda: nuclei.foreground_probability(np.zeros((1, 2, 8, 8))), "2-D or 3-D", label="4-d"),
    Case("nuclei.foreground_probability", lambda: nuclei.foreground_probability(np.array([["a"]])), "numeric dtype", label="strings"),
    Case("nuclei.foreground_probability", lambda: nuclei.foreground_probability(np.full((2, 4, 4), np.nan)), "finite values",
         label="nan"),
    Case("nuclei.foreground_probability", lambda: nuclei.foreground_probability(np.zeros((0, 4, 4))), "non-empty", label="empty"),
    Case("nuclei.postprocess", lambda: nuclei.postprocess(np.zeros(8)), "postprocess: expected .*2-D or 3-D", label="1-d"),
    Case("nuclei.postprocess", lambda: nuclei.postprocess(np.zeros((8, 8)), config=TINY.to_dict()), "NucleiConfig or None",
         label="dict-config"),
    Case("nuclei.segment_nuclei", lambda: nuclei.segment_nuclei(Path("nuclei_unet.pt"), IMAGE), "load_nuclei_model",
         label="path-not-model"),
    Case("nuclei.segment_nuclei", lambda: nuclei.segment_nuclei(conv_model(), np.zeros((3, 64, 64))), "2-D", label="stack"),
    Case("nuclei.segment_nuclei", lambda: nuclei.segment_nuclei(conv_model(), IMAGE, predictor=5), "predictor as a callable",
         label="predictor"),
    Case("nuclei.segment_nuclei", wrong_predictor_segment, r"predictor to return logits \(N, C, 16, 16\)", label="predictor-shape"),
    Case("nuclei.count_nuclei", lambda: nuclei.count_nuclei(np.array([["a"]])), "numeric dtype", label="strings"),
    Case("nuclei.count_nuclei", lambda: nuclei.count_nuclei(np.zeros((0, 3), np.int32)), "non-empty labels", label="empty"),
    Case("nuclei.count_nuclei", lambda: nuclei.count_nuclei(None), "got None", label="none"),
    Case("nuclei.dice", lambda: nuclei.dice(np.zeros((8, 8)), np.zeros((8, 4))), r"same shape; got shapes \(8, 8\) and \(8, 4\)",
         label="shapes"),
    Case("nuclei.dice", lambda: nuclei.dice(np.array([["a"]]), np.zeros((1, 1))), "predicted with a numeric dtype", label="strings"),
    Case("nuclei.dice", lambda: nuclei.dice(np.zeros((2, 2)), np.zeros((0, 2))), "non-empty truth", label="empty"),
    Case("nuclei.save_nuclei_model", lambda: nuclei.save_nuclei_model({"network": None}, missing("m.pt")), "model as a NucleiModel",
         label="dict"),
    Case("nuclei.save_nuclei_model", lambda: nuclei.save_nuclei_model(conv_model(), 3), "path as a path", label="path"),
    Case("nuclei.save_nuclei_model", lambda: nuclei.save_nuclei_model(conv_model(), missing("m.pt"), dice=np.float64(0.5)),
         "plain Python.*dice=float", label="numpy-meta"),
    Case("nuclei.load_nuclei_model", lambda: nuclei.load_nuclei_model(missing("m.pt")), "ensure_nuclei_model", label="missing"),
    Case("nuclei.load_nuclei_model", lambda: nuclei.load_nuclei_model(garbage()), "Delete it", label="unreadable"),
    Case("nuclei.load_nuclei_model", lambda: nuclei.load_nuclei_model(42), "path as a path", label="number"),
    Case("nuclei.load_nuclei_model", lambda: nuclei.load_nuclei_model(missing("m.pt"), device="gpu"), "device as 'cpu'",
         label="device-name"),
    Case("nuclei.load_nuclei_model", lambda: nuclei.load_nuclei_model(missing("m.pt"), device="cuda:99"), "CUDA GPU",
         HardwareRequirementError, label="absent-gpu"),
    Case("nuclei.write_synthetic_files", lambda: nuclei.write_synthetic_files(None, 2), "folder as a path", label="no-folder"),
    Case("nuclei.write_synthetic_files", lambda: nuclei.write_synthetic_files(missing("data"), 0), "n_images at least 1", label="none"),
    Case("nuclei.write_synthetic_files", lambda: nuclei.write_synthetic_files(missing("data"), 2, 16), "size_px at least 32",
         label="small"),
    Case("nuclei.prepare_transforms", lambda: nuclei.prepare_transforms(None), "config as a NucleiConfig", label="none"),
    Case("nuclei.nuclei_preset", lambda: nuclei.nuclei_preset("fast"), "profile one of 'smoke', 'cpu', 'gpu'", label="unknown"),
    Case("nuclei.nuclei_preset", lambda: nuclei.nuclei_preset(None), "wu.choose_profile", label="none"),
    Case("nuclei.train_nuclei_model", lambda: nuclei.train_nuclei_model(epoch=3), "known ones: .*epochs.*; got epoch", label="typo"),
    Case("nuclei.train_nuclei_model", lambda: nuclei.train_nuclei_model(device="tpu"), "device as 'cpu'", label="device"),
    Case("nuclei.train_nuclei_model", lambda: nuclei.train_nuclei_model(lr=0), "expected lr .*; got 0", label="lr"),
    Case("nuclei.train_nuclei_model", lambda: nuclei.train_nuclei_model("smoke"), "config as a NucleiConfig", label="profile-as-config"),
    Case("nuclei.ensure_nuclei_model", lambda: nuclei.ensure_nuclei_model("fast"), "one of 'smoke'", label="profile"),
    Case("nuclei.ensure_nuclei_model", lambda: nuclei.ensure_nuclei_model("smoke", path=3.5), "path as a path", label="path"),
    Case("nuclei.fine_tune_nuclei_model", lambda: nuclei.fine_tune_nuclei_model(conv_model(), [], 5, source="x"),
         "non-empty list of", label="no-files"),
    Case("nuclei.fine_tune_nuclei_model",
         lambda: nuclei.fine_tune_nuclei_model(conv_model(), [{"image": "a", "label": "b"}], 5, source=""),
         "source as the name", label="no-source"),
    Case("nuclei.match_instances", lambda: nuclei.match_instances(np.zeros((8, 8), np.int32), np.zeros((4, 8), np.int32)),
         r"same shape; got shapes \(8, 8\) and \(4, 8\)", label="shapes"),
    Case("nuclei.match_instances", lambda: nuclei.match_instances(np.zeros((8, 8)), np.zeros((8, 8), np.int32)),
         "truth with an integer dtype", label="float-truth"),
    Case("nuclei.match_instances", lambda: nuclei.match_instances(np.zeros((8, 8), np.int32), np.zeros((8, 8), bool)),
         "pred with an integer dtype", label="bool-pred"),
    Case("nuclei.match_instances",
         lambda: nuclei.match_instances(np.zeros((8, 8), np.int32), np.zeros((8, 8), np.int32), threshold=0),
         "threshold above 0", label="threshold"),
    Case("nuclei.sum_matchings", lambda: nuclei.sum_matchings([]), "non-empty list of Matching", label="empty"),
    Case("nuclei.sum_matchings", lambda: nuclei.sum_matchings(0.5), "non-empty list of Matching", label="number"),
    Case("nuclei.dsb2018_pairs", lambda: nuclei.dsb2018_pairs(missing("dsb")), "root to be an existing folder", label="missing"),
    Case("nuclei.dsb2018_pairs", lambda: nuclei.dsb2018_pairs(scratch(), "val"), "split one of", label="split"),
    Case("nuclei.dsb2018_pairs", lambda: nuclei.dsb2018_pairs(scratch(), "test"), "dsb2018/test/images", label="not-dsb",
         error=MissingFileError),
]

ACCELERATION = [
    Case("acceleration.optimised_ops", lambda: acceleration.optimised_ops(missing()), "existing file", label="missing"),
    Case("acceleration.optimised_ops", lambda: acceleration.optimised_ops(tiny_onnx(), "max"), "level one of 'all'", label="level"),
    Case("acceleration.fusion_probe", lambda: acceleration.fusion_probe("relu"), "activation one of 'LeakyRelu'", label="case"),
    Case("acceleration.export_onnx", lambda: acceleration.export_onnx(conv_model(), missing(), TILE), "torch.nn.Module.*model.network",
         label="model-not-network"),
    Case("acceleration.export_onnx", lambda: acceleration.export_onnx(torch.nn.Identity(), None, TILE), "path as a path",
         label="no-path"),
    Case("acceleration.export_onnx", lambda: acceleration.export_onnx(torch.nn.Identity(), missing(), 0), "tile_px at least 1",
         label="tile"),
    Case("acceleration.export_onnx", lambda: acceleration.export_onnx(torch.nn.Identity(), missing(), TILE, max_batch=1),
         "max_batch at least 2", label="batch"),
    Case("acceleration.export_onnx", lambda: acceleration.export_onnx(torch.nn.Identity(), missing(), TILE, metadata=["cfg"]),
         "metadata as a dict", label="metadata"),
    Case("acceleration.describe_onnx", lambda: acceleration.describe_onnx(missing()), r"missing\)\. Export it first", label="missing"),
    Case("acceleration.describe_onnx", lambda: acceleration.describe_onnx(garbage()), "protobuf cannot parse", label="garbage"),
    Case("acceleration.describe_onnx", lambda: acceleration.describe_onnx(scratch()), "a folder", label="folder"),
    Case("acceleration.ort_session", lambda: acceleration.ort_session(missing()), "path to be an existing file", label="missing"),
    Case("acceleration.ort_session", lambda: acceleration.ort_session(tiny_onnx(), threads=0), "threads at least 1", label="threads"),
    Case("acceleration.ort_session", lambda: acceleration.ort_session(garbage()), "ONNX Runtime can load", label="garbage"),
    Case("serving.OrtPredictor.__init__", lambda: serving.OrtPredictor(tiny_onnx()), "ort_session",
         label="path-not-session"),
    Case("serving.OrtPredictor.__call__",
         lambda: serving.OrtPredictor(acceleration.ort_session(tiny_onnx()))(np.zeros((TILE, TILE), np.float32)),
         "batch 4-D", label="one-tile"),
    Case("serving.OrtPredictor.__call__",
         lambda: serving.OrtPredictor(acceleration.ort_session(tiny_onnx()))(np.zeros((1, 1, 8, 8), np.float32)),
         r"batch items of shape \(1, 16, 16\)", label="tile-size"),
    Case("serving.OrtPredictor.__call__",
         lambda: serving.OrtPredictor(acceleration.ort_session(tiny_onnx()))(np.zeros((1, 1, TILE, TILE), bool)),
         "numeric dtype", label="bool"),
    Case("acceleration.quantize_int8", lambda: acceleration.quantize_int8(missing(), missing("int8.onnx"), [np.zeros((1, 1, 16, 16))]),
         "fp32_path to be an existing file", label="missing"),
    Case("acceleration.quantize_int8", lambda: acceleration.quantize_int8(tiny_onnx(), missing("int8.onnx"), []),
         "non-empty calibration", label="no-calibration"),
    Case("acceleration.quantize_int8",
         lambda: acceleration.quantize_int8(tiny_onnx(), missing("int8.onnx"), [np.zeros((1, 1, 16, 16), np.uint8)]),
         r"calibration\[0\] with a float dtype", label="uint8-tiles"),
    Case("acceleration.quantize_int8", lambda: acceleration.quantize_int8(tiny_onnx(), tiny_onnx(), [np.zeros((1, 1, 16, 16))]),
         "different from fp32_path", label="overwrite"),
    Case("acceleration.trtexec_command", lambda: acceleration.trtexec_command("m.onnx", "fp8"), "'fp16', 'fp32', 'int8'",
         label="precision"),
    Case("acceleration.trtexec_command", lambda: acceleration.trtexec_command("m.onnx", "fp16", tile_px=0), "tile_px at least 1",
         label="tile"),
    Case("acceleration.trtexec_command", lambda: acceleration.trtexec_command("m.onnx", "fp16", max_batch=0), "max_batch at least 1",
         label="batch"),
    Case("acceleration.trtexec_command", lambda: acceleration.trtexec_command(None), "onnx_path as a path", label="no-path"),
    Case("acceleration.build_trt_engine", lambda: acceleration.build_trt_engine(missing(), missing("m.plan")), "Export it first",
         label="missing-onnx"),
    Case("acceleration.build_trt_engine", lambda: acceleration.build_trt_engine(tiny_onnx(), missing("m.plan"), "FP16"),
         "precision one of", label="precision-case"),
    Case("acceleration.build_trt_engine", lambda: acceleration.build_trt_engine(tiny_onnx(), missing("m.plan"), max_batch=0),
         "max_batch at least 1", label="batch"),
    Case("acceleration.build_trt_engine", lambda: acceleration.build_trt_engine(tiny_onnx(), missing("m.plan"), tile_px=2.5),
         "tile_px as a whole number", label="tile"),
    Case("acceleration.build_trt_engine", lambda: acceleration.build_trt_engine(tiny_onnx(), missing("m.plan"), workspace_gib=0),
         "workspace_gib", label="workspace"),
    Case("acceleration.build_trt_engine", lambda: acceleration.build_trt_engine(tiny_onnx(), None), "engine_path as a path",
         label="no-engine-path"),
    Case("serving.TrtPredictor.__init__", lambda: serving.TrtPredictor(missing("m.plan")), "engine_path.*build_trt_engine",
         label="missing"),
    Case("serving.TrtPredictor.__call__", lambda: bare_trt_predictor()(np.zeros((TILE, TILE), np.float32)),
         r"\(N, 1, T, T\)", label="one-tile"),
    Case("serving.TrtPredictor.__call__", lambda: bare_trt_predictor()(np.zeros((0, 1, TILE, TILE), np.float32)),
         r"\(N, 1, T, T\)", label="empty"),
    Case("serving.TrtPredictor.__call__", lambda: bare_trt_predictor()([1, 2, 3]), r"\(N, 1, T, T\)", label="list"),
    Case("acceleration.read_nuclei_config", lambda: acceleration.read_nuclei_config(tiny_onnx()),
         "expected workshop.nuclei_config.*export_onnx", label="no-metadata"),
    Case("acceleration.read_nuclei_config", lambda: acceleration.read_nuclei_config(missing()), "Export it first", label="missing"),
    Case("acceleration.read_nuclei_config", lambda: acceleration.read_nuclei_config(garbage()), "cannot parse", label="garbage"),
    Case("acceleration.ensure_nuclei_onnx", lambda: acceleration.ensure_nuclei_onnx("turbo"), "profile one of", label="profile"),
    Case("acceleration.ensure_nuclei_onnx", lambda: acceleration.ensure_nuclei_onnx("smoke", path=5), "path as a path",
         label="path"),
]

REPOSITORY = [
    Case("serving.repository.onnx_io", lambda: triton_repository.onnx_io(missing()), r"missing\)\. Export it first", label="missing"),
    Case("serving.repository.onnx_io", lambda: triton_repository.onnx_io(garbage()), "cannot parse", label="garbage"),
    Case("serving.repository.onnx_io", lambda: triton_repository.onnx_io(tiny_onnx(inputs=2)), "one input and one output.*; got 2 inputs",
         label="two-inputs"),
    Case("serving.repository.config_pbtxt", lambda: triton_repository.config_pbtxt("x", GOOD_IO, backend="tflite"), "backend one of",
         label="backend"),
    Case("serving.repository.config_pbtxt", lambda: triton_repository.config_pbtxt("x", GOOD_IO, kind="GPU"),
         "'KIND_CPU', 'KIND_GPU'", label="kind"),
    Case("serving.repository.config_pbtxt", lambda: triton_repository.config_pbtxt("my model", GOOD_IO), "model name",
         label="space-in-name"),
    Case("serving.repository.config_pbtxt", lambda: triton_repository.config_pbtxt("x", {}), "onnx_io's answer", label="empty-io"),
    Case("serving.repository.config_pbtxt", lambda: triton_repository.config_pbtxt("x", GOOD_IO, max_batch_size=0),
         "max_batch_size at least 1", label="batch"),
    Case("serving.repository.config_pbtxt", lambda: triton_repository.config_pbtxt("x", GOOD_IO, preferred_batch_sizes="48"),
         "preferred_batch_sizes as a tuple of ints", label="text-sizes"),
    Case("serving.repository.config_pbtxt", lambda: triton_repository.config_pbtxt("x", GOOD_IO, instances=0), "instances at least 1",
         label="instances"),
    Case("serving.repository.write_model_repository", lambda: triton_repository.write_model_repository(missing(), missing("repo")),
         "onnx_path to be an existing file", label="missing-onnx"),
    Case("serving.repository.write_model_repository",
         lambda: triton_repository.write_model_repository(tiny_onnx(), missing("repo"), plan_path=missing("m.plan")),
         "plan_path to be an existing file", label="missing-plan"),
    Case("serving.repository.write_model_repository",
         lambda: triton_repository.write_model_repository(tiny_onnx(), missing("repo"), max_batch=8), "known ones: .*max_batch_size",
         label="unknown-option"),
    Case("serving.repository.write_model_repository",
         lambda: triton_repository.write_model_repository(tiny_onnx(), folder_with_a_file()), "holds files", label="root-with-files"),
    Case("serving.repository.write_model_repository",
         lambda: triton_repository.write_model_repository(tiny_onnx(), missing("repo"), kind="cpu"), "kind one of", label="kind"),
    Case("serving.repository.repository_models", lambda: triton_repository.repository_models(missing("repo")), r"\(missing\)",
         label="missing"),
    Case("serving.repository.repository_models", lambda: triton_repository.repository_models(None), "write_model_repository",
         label="none"),
]

CASES = CELLS + NUCLEI + ACCELERATION + REPOSITORY
EXEMPT = {
    "nuclei.Matching": "a frozen result record built by nuclei.match_instances and nuclei.sum_matchings, which check "
                       "their input",
    "nuclei.NucleiModel": "a dataclass pairing a network with its config; each function taking one checks it "
                          "(nuclei.require_nuclei_model)",
    "nuclei.NucleiConfig.to_dict": "takes no arguments; it returns the config's own fields",
    "nuclei.NucleiModel.device": "a property of a built model; it takes no arguments",
    "acceleration.tensorrt_status": "takes no arguments; it reports whether TensorRT and a GPU are usable",
}



def test_cells_accept_what_the_labs_pass() -> None:
    image, labels = cells.synthetic_nuclei(np.int64(64), seed=np.int64(3))  # numpy ints, as from a parameter sweep
    assert image.shape == labels.shape == (64, 64) and image.dtype == np.uint16 and labels.dtype == np.int32
    again, _ = cells.synthetic_nuclei([64, 64], seed=np.random.default_rng(3))  # a list size, a Generator seed
    assert again.shape == (64, 64)
    assert cells.synthetic_nuclei((48, 80), seed=None)[0].shape == (48, 80)
    assert cells.synthetic_nuclei(32, n_nuclei=0)[1].max() == 0  # 32 px at the lowest density asks for no nuclei
    pairs = cells.synthetic_nuclei_set(2, size_px=64, seed=1000)
    assert len(pairs) == 2 and not np.array_equal(pairs[0][0], pairs[1][0])
    generator = np.random.default_rng(0)
    labels, kinds = cells.place_nuclei([64, 64], generator, np.int32(6))
    clean = cells.render_nuclei(labels, generator, kinds)
    assert cells.blur(torch.from_numpy(clean), np.float64(1.5)).shape == (64, 64)
    assert cells.add_debris(clean.astype(np.float64), generator, n_specks=np.int64(2)).shape == (64, 64)
    assert cells.add_microscope_noise(clean, generator, dtype="float32").dtype == np.float32


def test_nuclei_accepts_what_the_labs_pass() -> None:
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    labels = mask.astype(np.uint16) * 3
    assert nuclei.dice(mask, labels) == 1.0 and nuclei.dice(mask.astype(float), labels.astype(np.int32)) == 1.0
    assert nuclei.dice(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert nuclei.count_nuclei(labels) == 1 and nuclei.count_nuclei(torch.from_numpy(labels.astype(np.int32))) == 1
    assert nuclei.count_nuclei(mask) == 1 and nuclei.count_nuclei(labels.astype(np.float32)) == 1
    assert nuclei.foreground_probability(mask).dtype == np.float32
    image = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    reference = nuclei.preprocess(image)
    for same in (nuclei.preprocess(image, {}), nuclei.preprocess(torch.from_numpy(image.astype(np.int32)), nuclei.NORMALISATION),
                 nuclei.preprocess(image, TINY.normalisation)):
        np.testing.assert_allclose(same, reference, atol=1e-6)
    assert nuclei.check_image(torch.ones(4, 4, dtype=torch.bfloat16)).shape == (4, 4)
    assert NucleiConfig.from_dict({**TINY.to_dict(), "added_later": 1}) == TINY  # unknown keys of newer files are skipped
    assert nuclei.nuclei_preset(" GPU ")[0].channels == nuclei.PRESETS["gpu"]["channels"]
    assert NucleiConfig(channels=[16, 32, 64, 128], strides=[2, 2, 2]).tile_px == 256  # lists as well as tuples


def test_segment_with_the_runtimes_the_labs_plug_in() -> None:
    model = conv_model()
    image = np.random.default_rng(0).integers(0, 4000, (40, 50)).astype(np.uint16)
    session = acceleration.ort_session(str(tiny_onnx()), threads=1)
    numpy_predictor = serving.OrtPredictor(session)
    with torch.no_grad():
        torch_predictor = lambda batch: model.network(torch.from_numpy(batch))  # noqa: E731 - returns a torch tensor
        for predictor in (None, numpy_predictor, torch_predictor):
            mask, labels = nuclei.segment_nuclei(model, image, predictor=predictor)
            assert mask.shape == labels.shape == image.shape and labels.dtype == np.int32
        logits = nuclei.predict_logits(model, nuclei.preprocess(image), predictor=numpy_predictor)
        assert logits.shape == (CLASSES, 40, 50)
        assert model(torch.zeros(2, 1, TILE, TILE)).shape == (2, CLASSES, TILE, TILE)
    tiles = np.zeros((3, 1, TILE, TILE), np.float32)
    assert numpy_predictor(torch.from_numpy(tiles)).shape == numpy_predictor(tiles.astype(np.float64)).shape == (3, CLASSES, TILE, TILE)


def test_acceleration_accepts_paths_as_text_and_explains_missing_tensorrt() -> None:
    target = scratch() / "exported" / "conv.onnx"
    network = torch.nn.Conv2d(1, CLASSES, 3, padding=1)
    path = acceleration.export_onnx(network, str(target), np.int64(TILE), metadata={acceleration.CONFIG_KEY: TINY.to_dict()})
    assert path == target and acceleration.read_nuclei_config(str(path))["tile_px"] == TILE
    graph = acceleration.describe_onnx(str(path))
    assert graph["inputs"][0]["shape"][1:] == [1, TILE, TILE] and isinstance(graph["inputs"][0]["shape"][0], str)
    assert "--int8" in acceleration.trtexec_command(str(path), "int8", TILE, 4)
    with pytest.raises(InputError, match=r"^read_nuclei_config: expected"):
        acceleration.read_nuclei_config(tiny_onnx())
    if acceleration.tensorrt_status()[0]:
        pytest.skip("TensorRT is usable here; the CPU-only messages below do not apply")
    with pytest.raises(HardwareRequirementError, match="trtexec --onnx="):
        acceleration.build_trt_engine(path, scratch() / "conv.plan", "fp16", TILE, max_batch=4)
    with pytest.raises(HardwareRequirementError, match="TensorRT"):
        serving.TrtPredictor(path)  # any existing file gets as far as the TensorRT check


def test_quantize_takes_a_tuple_of_batches() -> None:
    calibration = tuple(np.random.default_rng(i).random((2, 1, TILE, TILE), dtype=np.float32) for i in range(2))
    out = acceleration.quantize_int8(str(tiny_onnx()), str(scratch() / "tiny_int8.onnx"), calibration)
    assert Path(out).is_file()


def test_repository_helpers_accept_lab_input_and_keep_files_safe() -> None:
    io = triton_repository.onnx_io(str(tiny_onnx()))
    assert io == GOOD_IO
    text = triton_repository.config_pbtxt("nuclei_unet", io, max_batch_size=np.int64(8), preferred_batch_sizes=[4, 8, 16])
    assert "preferred_batch_size: [ 4, 8 ]" in text
    root = scratch() / "repository"
    for _ in range(2):  # rewriting its own repository is fine
        repo = triton_repository.write_model_repository(tiny_onnx(), str(root), kind="KIND_CPU", max_batch_size=16,
                                                        max_queue_delay_us=500, instances=1)
    assert triton_repository.repository_models(str(repo)) == ["nuclei_unet"]
    with pytest.raises(WorkshopError, match="kind one of"):  # a bad option is found before the old repository goes
        triton_repository.write_model_repository(tiny_onnx(), root, kind="cpu")
    assert triton_repository.repository_models(root) == ["nuclei_unet"]
    notes = folder_with_a_file()
    with pytest.raises(WorkshopError, match="holds files"):
        triton_repository.write_model_repository(tiny_onnx(), notes)
    assert (notes / "keep.txt").is_file()
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError for code that catches one
        triton_repository.onnx_io(missing())


def test_save_refuses_meta_that_would_make_the_file_unreadable() -> None:
    target = scratch() / "refused.pt"
    with pytest.raises(WorkshopError, match="plain Python"):
        nuclei.save_nuclei_model(conv_model(), target, scores=[0.5, np.float32(0.7)])
    assert not target.exists()
