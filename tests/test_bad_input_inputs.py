"""Bad input to the checks themselves, and the shape of the message every check writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.badinput import Case
from workshop_utils.core import errors as wu_errors
from workshop_utils.core import inputs, profiles

W = "demo"

CASES = [
    Case("core.inputs.as_array", lambda: inputs.as_array(None, W, "image"), "got None", label="none"),
    Case("core.inputs.as_array", lambda: inputs.as_array([[1, 2], [3]], W, "image"), "as an array", label="ragged"),
    Case("core.inputs.as_array", lambda: inputs.as_array(np.array(["a"]), W, "image"), "numeric dtype", label="strings"),
    Case("core.inputs.as_array", lambda: inputs.as_array(np.zeros(3, bool), W, "image"), "numeric dtype", label="bool"),
    Case("core.inputs.as_array", lambda: inputs.as_array(np.zeros(3), W, "image", kind="integer"), "integer dtype", label="float-not-int"),
    Case("core.inputs.as_array", lambda: inputs.as_array(np.zeros((2, 2, 2)), W, "image", ndim=2), "image 2-D", label="ndim"),
    Case("core.inputs.as_array", lambda: inputs.as_array(np.zeros(3), W, "image", ndim=(2, 3)), "2-D or 3-D", label="ndims"),
    Case("core.inputs.as_array", lambda: inputs.as_array(np.zeros((0, 4)), W, "image"), "non-empty image", label="empty"),
    Case("core.inputs.as_array", lambda: inputs.as_array(np.array([1.0, np.nan]), W, "image"), "nan_to_num", label="nan"),
    Case("core.inputs.require_same_length", lambda: inputs.require_same_length(W, images=[1, 2], labels=[1]), r"len\(images\)=2, len\(labels\)=1"),
    Case("core.inputs.require_int", lambda: inputs.require_int(2.5, W, "n"), "whole number", label="float"),
    Case("core.inputs.require_int", lambda: inputs.require_int(True, W, "n"), "whole number", label="bool"),
    Case("core.inputs.require_int", lambda: inputs.require_int(0, W, "n", minimum=1), "at least 1", label="low"),
    Case("core.inputs.require_int", lambda: inputs.require_int(9, W, "n", minimum=1, maximum=4), "between 1 and 4", label="high"),
    Case("core.inputs.require_number", lambda: inputs.require_number(float("nan"), W, "rate"), "finite number", label="nan"),
    Case("core.inputs.require_number", lambda: inputs.require_number("1", W, "rate"), "finite number", label="string"),
    Case("core.inputs.require_number", lambda: inputs.require_number(1.0, W, "rate", minimum=0, maximum=1, strict=True), "above 0 and below 1", label="edge"),
    Case("core.inputs.require_choice", lambda: inputs.require_choice("GPU", W, "profile", ["cpu", "gpu"]), "'cpu', 'gpu'"),
    Case("core.inputs.require_texts", lambda: inputs.require_texts("one text", W, "texts"), r"Wrap a single text", label="string"),
    Case("core.inputs.require_texts", lambda: inputs.require_texts([], W, "texts"), "non-empty texts", label="empty"),
    Case("core.inputs.require_texts", lambda: inputs.require_texts(["a", "  "], W, "texts"), r"texts\[1\]", label="blank"),
    Case("core.inputs.require_nonempty", lambda: inputs.require_nonempty([], W, "models"), "non-empty models", label="empty"),
    Case("core.inputs.require_nonempty", lambda: inputs.require_nonempty(3, W, "models"), "as a list", label="scalar"),
    Case("core.inputs.require_file", lambda: inputs.require_file("/no/such/file.onnx", W, "onnx_path", "Run lab 02."), r"missing\)\. Run lab 02", label="missing"),
    Case("core.inputs.require_file", lambda: inputs.require_file(Path("/"), W, "onnx_path", "Run lab 02."), "a folder", label="folder"),
    Case("core.inputs.require_file", lambda: inputs.require_file(None, W, "onnx_path", "Run lab 02."), "as a path", label="none"),
    Case("core.inputs.require_instance", lambda: inputs.require_instance([1], tuple, W, "shape", "Pass a tuple."), "shape as a tuple; got a list"),
    Case("core.inputs.require_callable", lambda: inputs.require_callable(3, W, "fn", "Pass a lambda."), "fn as a callable"),
    Case("core.inputs.require_rng", lambda: inputs.require_rng(np.random, W), "default_rng", label="legacy-module"),
    Case("core.inputs.require_rng", lambda: inputs.require_rng(0, W), "Generator", label="seed"),
    Case("core.profiles.require_profile", lambda: profiles.require_profile("laptop", W), "'smoke', 'cpu', 'gpu'", label="unknown"),
    Case("core.profiles.require_profile", lambda: profiles.require_profile("auto", W), "choose_profile", label="unresolved"),
    Case("core.profiles.require_profile", lambda: profiles.require_profile(None, W), "NoneType", label="none"),
    Case("core.inputs.require_path", lambda: inputs.require_path("", W, "folder"), "folder as a path", label="empty"),
    Case("core.inputs.require_path", lambda: inputs.require_path(3, W, "folder"), "folder as a path", label="int"),
    Case("core.inputs.require_device", lambda: inputs.require_device("tpu:0", W), "device as", label="unknown"),
    Case("core.inputs.require_device", lambda: inputs.require_device(42.0, W), "device as", label="float"),
]
EXEMPT = {
    "core.inputs.describe": "formats any value for a message; there is no wrong input",
    "core.inputs.with_article": "grammar for messages; any noun is valid input",
    "core.inputs.bad_input": "builds the error others raise; test_a_check_without_a_next_step_is_a_bug covers its one misuse",
}



def test_valid_input_passes_through() -> None:
    image = inputs.as_array([[1, 2], [3, 4]], W, "image", ndim=2)
    assert image.shape == (2, 2)
    assert inputs.require_int(np.int64(3), W, "n", minimum=1) == 3
    assert inputs.require_number(0.5, W, "rate", minimum=0, maximum=1) == 0.5
    assert inputs.require_texts(("a", "b"), W, "texts") == ["a", "b"]
    assert inputs.require_same_length(W, a=[1, 2], b=(3, 4)) == 2
    assert profiles.require_profile(" GPU ", W) == "gpu" and profiles.require_profile("auto", W, allow_auto=True) == "auto"
    assert inputs.require_path(Path("x"), W, "p") == Path("x") and inputs.with_article("InferInput") == "an InferInput"
    assert str(inputs.require_device("cpu", W)) == "cpu"


def test_a_cuda_device_without_a_gpu_is_a_hardware_error() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(wu_errors.HardwareRequirementError, match="device='cpu'"):
        inputs.require_device("cuda", W)


def test_torch_tensors_are_read_without_copy_surprises() -> None:
    torch = pytest.importorskip("torch")
    assert inputs.as_array(torch.ones(2, 3, dtype=torch.bfloat16), W, "x", ndim=2).dtype == np.float32
    with pytest.raises(inputs.InputError, match="dtype=bool"):
        inputs.as_array(torch.zeros(2, dtype=torch.bool), W, "x")


def test_message_shape() -> None:
    assert str(inputs.bad_input(W, "x", "y", "Do z.")) == "demo: expected x; got y. Do z."


def test_a_check_without_a_next_step_is_a_bug() -> None:
    with pytest.raises(ValueError, match="next step"):
        inputs.bad_input(W, "x", "y", "")
