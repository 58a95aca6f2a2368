"""Run profiles: ``smoke`` (CI, tiny and fast), ``cpu`` (an attendee without a GPU) and ``gpu`` (full size).

The profile comes from, in order: the notebook's ``PROFILE`` parameter (papermill), the ``WORKSHOP_PROFILE``
environment variable, then the hardware (a GPU that torch can use means ``gpu``, otherwise ``cpu``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from workshop_utils.core import hardware
from workshop_utils.core.errors import ProfileError
from workshop_utils.core.inputs import bad_input, describe

if TYPE_CHECKING:
    import torch

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
AUTO = "auto"
ENV_VAR = "WORKSHOP_PROFILE"

T = TypeVar("T")


@dataclass(frozen=True)
class ProfileChoice:
    """The chosen profile and the sentence that explains why."""

    profile: str
    reason: str


def require_profile(value: object, where: str, *, allow_auto: bool = False, source: str = "") -> str:
    """``value`` as a profile name, cleaned (``" GPU "`` -> ``"gpu"``): the one check of a profile argument.

    Args:
        value: what the caller passed.
        where: the function that checks, for the message.
        allow_auto: also let ``"auto"`` through (it is resolved later from the hardware).
        source: where the value came from when it is not an argument, e.g. ``"the WORKSHOP_PROFILE variable"``.

    Returns:
        ``"smoke"``, ``"cpu"``, ``"gpu"`` (or ``"auto"`` with ``allow_auto``).

    Example:
        >>> require_profile(" GPU ", "per_profile")
        'gpu'
    """
    allowed = (*PROFILES, AUTO) if allow_auto else PROFILES
    cleaned = value.strip().lower() if isinstance(value, str) else None
    if cleaned not in allowed:
        if cleaned == AUTO:
            fix = "Pass the profile the notebook chose: PROFILE = wu.choose_profile(PROFILE), not 'auto'."
        elif source:
            fix = f"Set PROFILE in the notebook's parameters cell, or unset {ENV_VAR}."
        else:
            fix = ("Pass e.g. profile='smoke' (CI) or 'auto' (picked from the hardware)." if allow_auto
                   else "Pass the notebook's choice, PROFILE = wu.choose_profile(PROFILE), e.g. 'smoke' in CI.")
        got = describe(value) + (f" from {source}" if source else "")
        raise ProfileError(f"{where}: expected profile one of {', '.join(map(repr, allowed))}; got {got}. {fix}")
    return cleaned


def explain_profile(requested: str | None = AUTO, gpu_usable: Callable[[], bool] | None = None) -> ProfileChoice:
    """Choose a profile and say why; ``gpu_usable`` is injectable for tests.

    The order: an explicit ``requested`` profile, then the ``WORKSHOP_PROFILE`` environment variable, then the
    hardware (``gpu`` when a GPU is present and torch can use it, else ``cpu``).

    Args:
        requested: the notebook's ``PROFILE`` parameter; ``"auto"`` (or None, or ``""``) decides from the rest.
        gpu_usable: a function returning whether torch can use a GPU; None asks the real hardware.

    Returns:
        A :class:`ProfileChoice` with ``profile`` and ``reason``, e.g. ``("cpu", "no GPU found")``.

    Example:
        >>> choice = wu.explain_profile(PROFILE)
        >>> print(choice.profile, "-", choice.reason)
    """
    if gpu_usable is not None and not callable(gpu_usable):
        raise bad_input("explain_profile", "gpu_usable as a function returning True or False",
                        describe(gpu_usable), "Pass a function, e.g. gpu_usable=lambda: False, or leave it out.")
    unset = requested is None or (isinstance(requested, str) and not requested)  # read as 'auto'
    where = "explain_profile"
    if not unset and require_profile(requested, where, allow_auto=True, source="the PROFILE parameter") != AUTO:
        return ProfileChoice(require_profile(requested, where), "set by the notebook's PROFILE parameter")
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env and from_env.lower() != AUTO:
        return ProfileChoice(require_profile(from_env, where, source=f"the {ENV_VAR} environment variable"),
                             f"set by {ENV_VAR}")
    probe = gpu_usable or hardware.gpu_usable
    if probe():
        return ProfileChoice("gpu", "a GPU is present and torch can use it")
    if hardware.gpus():
        return ProfileChoice("cpu", "a GPU is present but torch cannot use it (CPU build of torch?)")
    return ProfileChoice("cpu", "no GPU found")


def choose_profile(requested: str | None = AUTO) -> str:
    """Return ``smoke``, ``cpu`` or ``gpu`` (see the module docstring for the order of precedence).

    An explicit ``requested`` profile wins, then the ``WORKSHOP_PROFILE`` environment variable, then the hardware
    (``gpu`` when torch can use a GPU, else ``cpu``); :func:`explain_profile` also says why.

    Args:
        requested: the notebook's ``PROFILE`` parameter; ``"auto"`` (or None, or ``""``) decides from the rest.

    Returns:
        ``"smoke"``, ``"cpu"`` or ``"gpu"``.

    Example:
        >>> PROFILE = wu.choose_profile(PROFILE)
    """
    return explain_profile(requested).profile


def per_profile(profile: str, *, smoke: T, cpu: T, gpu: T) -> T:
    """Pick the value for ``profile``: ``EPOCHS = wu.per_profile(PROFILE, smoke=2, cpu=10, gpu=50)``.

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"`` (not ``"auto"``: pass the result of :func:`choose_profile`).
        smoke: the value for the ``smoke`` profile (CI: tiny and fast).
        cpu: the value for the ``cpu`` profile.
        gpu: the value for the ``gpu`` profile.

    Returns:
        The value given for ``profile``.

    Example:
        >>> EPOCHS = wu.per_profile(PROFILE, smoke=2, cpu=10, gpu=50)
    """
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[require_profile(profile, "per_profile")]


def torch_device(profile: str) -> torch.device:
    """The torch device a lab runs on: CUDA for the ``gpu`` profile when torch can use a GPU, else the CPU.

    The one place this rule lives: labs, the artifact rebuilds and the capstone all ask here, so a ``cpu`` run on
    a GPU machine stays on the CPU (its figures are the CPU figures), and ``gpu`` without a usable GPU falls back.

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``.

    Returns:
        ``torch.device("cuda")`` or ``torch.device("cpu")``.

    Example:
        >>> torch_device("smoke")
        device(type='cpu')
    """
    profile = require_profile(profile, "torch_device")
    import torch  # imported here: this module stays light for everything that does not need torch

    return torch.device("cuda" if profile == "gpu" and torch.cuda.is_available() else "cpu")
