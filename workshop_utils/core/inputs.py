"""Checks on what a caller passes in, so bad input fails at the door with a message that says what to do.

Every check raises :class:`InputError` worded as ``<function>: expected <what>; got <what came>. <next step>`` —
the same shape wherever it is raised, so an attendee learns to read it once. Arrays may be numpy arrays, torch
tensors (read without importing torch here) or anything ``np.asarray`` takes.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workshop_utils.core.errors import InputError

KINDS: dict[str, tuple[str, str]] = {
    # kind -> (numpy dtype kinds accepted, words for the message)
    "numeric": ("uif", "a numeric dtype (uint8, uint16, int or float)"),
    "integer": ("ui", "an integer dtype (labels are int32 0..n)"),
    "float": ("f", "a float dtype (float32)"),
    "mask": ("uib", "a bool or integer dtype (a mask or a label image)"),
}


def bad_input(where: str, expected: str, got: str, fix: str) -> InputError:
    """The error to raise: ``<where>: expected <expected>; got <got>. <fix>``."""
    if not fix:
        raise ValueError("every input error needs a next step")
    return InputError(f"{where}: expected {expected}; got {got}. {fix}")


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message: shape and dtype for arrays, else type and repr."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"shape={tuple(value.shape)} dtype={str(value.dtype).replace('torch.', '')}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def with_article(noun: str) -> str:
    """``noun`` with "a" or "an" in front, for messages: "an InferInput", "a list"."""
    return f"{'an' if noun[:1] in 'AEIOUaeiou' else 'a'} {noun}"


def _numpy_view(value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor; bfloat16 has no numpy twin
        tensor = value.detach().cpu()
        return tensor.float().numpy() if str(tensor.dtype) == "torch.bfloat16" else tensor.numpy()
    return np.asarray(value)


def as_array(
    value: Any,
    where: str,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    kind: str = "numeric",
    allow_empty: bool = False,
    finite: bool = True,
    fix: str = "",
) -> np.ndarray:
    """``value`` as a numpy array after checking its dimensions, dtype kind, emptiness and finiteness."""
    if value is None:
        raise bad_input(where, f"{name} as an array", "None", fix or f"Pass {name} (a numpy array).")
    try:
        array = _numpy_view(value)
    except (TypeError, ValueError) as err:  # ragged lists, objects numpy cannot read
        raise bad_input(where, f"{name} as an array", f"{type(value).__name__} ({err})",
                        fix or f"Stack {name} into one numpy array of equal-sized items.") from None
    accepted, words = KINDS[kind]
    if array.dtype.kind not in accepted:
        raise bad_input(where, f"{name} with {words}", describe(array),
                        fix or f"Convert it, e.g. {name}.astype(np.float32), or check the file was read as an image.")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if dims is not None and array.ndim not in dims:
        wanted = " or ".join(f"{d}-D" for d in dims)
        raise bad_input(where, f"{name} {wanted}", describe(array),
                        fix or "Add or drop axes (np.squeeze, x[None]) so the shape matches.")
    if not allow_empty and array.size == 0:
        raise bad_input(where, f"a non-empty {name}", describe(array), fix or "Check the data was loaded.")
    if finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise bad_input(where, f"finite values in {name}", "NaN or infinite values",
                        fix or f"Replace them first: np.nan_to_num({name}).")
    return array


def require_same_length(where: str, **sized: Any) -> int:
    """The common length of the named arguments (first axis), or an error naming each length."""
    lengths = {name: len(value) for name, value in sized.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"len({name})={n}" for name, n in lengths.items())
        raise bad_input(where, f"one item in each of {', '.join(lengths)} per example", listed,
                        "Pass them from the same data set, in the same order.")
    return next(iter(lengths.values()), 0)


def require_int(value: Any, where: str, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``; bools and fractional numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise bad_input(where, f"{name} as a whole number", describe(value), f"Pass an int, e.g. {name}={minimum or 1}.")
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None and minimum is not None else (
            f"at least {minimum}" if minimum is not None else f"at most {maximum}")
        raise bad_input(where, f"{name} {bounds}", str(number), f"Pass a value {bounds}.")
    return number


def require_number(
    value: Any, where: str, name: str, *, minimum: float | None = None, maximum: float | None = None,
    strict: bool = False,
) -> float:
    """``value`` as a finite float in ``[minimum, maximum]`` (open at both ends when ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise bad_input(where, f"{name} as a finite number", describe(value), f"Pass a number, e.g. {name}=1.0.")
    number = float(value)
    low_bad = minimum is not None and (number <= minimum if strict else number < minimum)
    high_bad = maximum is not None and (number >= maximum if strict else number > maximum)
    if low_bad or high_bad:
        above, below = ("above", "below") if strict else ("at least", "at most")
        bounds = " and ".join(part for part in (
            f"{above} {minimum}" if minimum is not None else "", f"{below} {maximum}" if maximum is not None else "",
        ) if part)
        raise bad_input(where, f"{name} {bounds}", str(number), "Pass a value inside that range.")
    return number


def require_choice(value: Any, where: str, name: str, choices: Iterable[str], fix: str = "") -> str:
    """``value`` if it is one of ``choices``, else an error listing them."""
    options = sorted(choices)
    if not isinstance(value, str) or value not in options:
        raise bad_input(where, f"{name} one of {', '.join(map(repr, options))}", describe(value),
                        fix or "Use one of those names exactly (case matters).")
    return value


def require_texts(value: Any, where: str, name: str, *, allow_blank: bool = False) -> list[str]:
    """A non-empty list of strings (a lone string is refused: it would be read one character at a time)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise bad_input(where, f"{name} as a list of strings", describe(value),
                        f"Wrap a single text in a list: [{name}].")
    texts = list(value)
    if not texts:
        raise bad_input(where, f"a non-empty {name}", "an empty list", "Pass at least one text.")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or (not allow_blank and not text.strip()):
            raise bad_input(where, f"{name}[{i}] as a non-blank string", describe(text),
                            "Drop blank entries or convert them with str().")
    return texts


def require_nonempty(value: Any, where: str, name: str, fix: str = "") -> Sequence[Any]:
    """``value`` as a list if it is a non-empty collection (not a string)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise bad_input(where, f"{name} as a list", describe(value), fix or f"Wrap it in a list: [{name}].")
    items = list(value)
    if not items:
        raise bad_input(where, f"a non-empty {name}", "an empty list", fix or f"Pass at least one item in {name}.")
    return items


def require_instance(value: Any, kind: type | tuple[type, ...], where: str, name: str, fix: str) -> Any:
    """``value`` if it is an instance of ``kind``, else an error naming the type that came."""
    if not isinstance(value, kind):
        words = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        got = describe(value) if hasattr(value, "shape") else with_article(type(value).__name__)  # a module's repr is long
        raise bad_input(where, f"{name} as {with_article(words)}", got, fix)
    return value


def require_callable(value: Any, where: str, name: str, fix: str) -> Any:
    """``value`` if it can be called, else an error that says what to pass."""
    if not callable(value):
        raise bad_input(where, f"{name} as a callable", describe(value), fix)
    return value


def require_rng(rng: Any, where: str) -> np.random.Generator:
    """``rng`` if it is a numpy Generator (the legacy ``np.random`` module and bare seeds are refused)."""
    if not isinstance(rng, np.random.Generator):
        raise bad_input(where, "rng as a numpy random Generator", describe(rng),
                        "Make one per seed: rng = np.random.default_rng(seed).")
    return rng


def require_path(value: Any, where: str, name: str, fix: str = "", *, default: Path | None = None) -> Path:
    """``value`` as a Path: a str or ``os.PathLike``, not empty. Existence is the caller's business.

    Args:
        value: what the caller passed.
        where: the name the caller typed, for the message.
        name: the argument's name, for the message.
        fix: the next step to suggest; a generic one when empty.
        default: returned when ``value`` is None or "" (then None is allowed).

    Returns:
        ``Path(value)``, or ``default``.
    """
    if default is not None and (value is None or (isinstance(value, str) and not value)):
        return default
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        allowed = " or None" if default is not None else ""
        raise bad_input(where, f"{name} as a path (str or pathlib.Path){allowed}", describe(value),
                        fix or f"Pass a path under wu.build_dir(), e.g. {name}=wu.build_dir() / 'out'.")
    return Path(value)


def require_folder(value: Any, where: str, name: str, fix: str = "") -> Path:
    """``value`` as a Path to an existing folder (see :func:`require_path`)."""
    path = require_path(value, where, name, fix)
    if not path.is_dir():
        raise bad_input(where, f"{name} to be an existing folder", f"{path} ({'a file' if path.exists() else 'missing'})",
                        fix or f"Create it first, or pass an existing folder as {name}.")
    return path


def require_device(value: Any, where: str) -> Any:
    """``value`` as a torch.device, refusing a CUDA device where torch sees no such GPU."""
    import torch

    from workshop_utils.core.errors import HardwareRequirementError

    try:
        device = torch.device(value)
    except (TypeError, RuntimeError, ValueError):
        raise bad_input(where, "device as 'cpu', 'cuda', 'cuda:0' or a torch.device", describe(value),
                        "Pass device='cpu' (or 'cuda' on a GPU machine).") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise HardwareRequirementError(
            f"{where}: expected a CUDA GPU that torch can use for device={str(value)!r}; got "
            f"{torch.cuda.device_count()} usable GPU(s). Pass device='cpu', or run on a GPU machine (profile gpu).")
    return device


def require_file(value: Any, where: str, name: str, fix: str) -> Path:
    """``value`` as a Path to an existing file, else an error naming the path and how to make it."""
    path = require_path(value, where, name, fix)
    if not path.is_file():
        raise bad_input(where, f"{name} to be an existing file", f"{path} ({'a folder' if path.is_dir() else 'missing'})",
                        fix)
    return path
