"""Run profiles: ``smoke`` (CI, tiny and fast), ``cpu`` (an attendee without a GPU) and ``gpu`` (full size).

The profile comes from, in order: the notebook's ``PROFILE`` parameter (papermill), the ``WORKSHOP_PROFILE``
environment variable, then the hardware (a GPU that torch can use means ``gpu``, otherwise ``cpu``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeVar

from . import hardware
from .errors import ProfileError
from .inputs import bad_input, describe

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
AUTO = "auto"
ENV_VAR = "WORKSHOP_PROFILE"

T = TypeVar("T")


@dataclass(frozen=True)
class ProfileChoice:
    """The chosen profile and the sentence that explains why."""

    profile: str
    reason: str


def _validate(name: object, source: str, *, allow_auto: bool = False) -> str:
    """``name`` cleaned (``" GPU "`` -> ``"gpu"``), or a :class:`ProfileError` listing the profiles."""
    cleaned = name.strip().lower() if isinstance(name, str) else None
    if cleaned not in PROFILES and not (allow_auto and cleaned == AUTO):
        known = f"{', '.join(PROFILES)} or 'auto'" if allow_auto else ", ".join(PROFILES)
        fix = (
            "Pass the PROFILE the notebook chose (PROFILE = wu.choose_profile(PROFILE)), not 'auto'."
            if cleaned == AUTO
            else f"Set PROFILE in the notebook's parameters cell, or unset {ENV_VAR}."
        )
        raise ProfileError(f"Unknown profile {name!r} (from {source}). Expected one of {known}. Next step: {fix}")
    return cleaned


def explain_profile(requested: str | None = AUTO, gpu_usable: Callable[[], bool] | None = None) -> ProfileChoice:
    """Choose a profile and say why; ``gpu_usable`` is injectable for tests."""
    if gpu_usable is not None and not callable(gpu_usable):
        raise bad_input("profiles.explain_profile", "gpu_usable as a function returning True or False",
                        describe(gpu_usable), "Pass a function, e.g. gpu_usable=lambda: False, or leave it out.")
    unset = requested is None or (isinstance(requested, str) and not requested)  # read as 'auto'
    if not unset and _validate(requested, "the PROFILE parameter", allow_auto=True) != AUTO:
        return ProfileChoice(_validate(requested, "the PROFILE parameter"), "set by the notebook's PROFILE parameter")
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env and from_env.lower() != AUTO:
        return ProfileChoice(_validate(from_env, f"the {ENV_VAR} environment variable"), f"set by {ENV_VAR}")
    probe = gpu_usable or hardware.gpu_usable
    if probe():
        return ProfileChoice("gpu", "a GPU is present and torch can use it")
    if hardware.gpus():
        return ProfileChoice("cpu", "a GPU is present but torch cannot use it (CPU build of torch?)")
    return ProfileChoice("cpu", "no GPU found")


def choose_profile(requested: str | None = AUTO) -> str:
    """Return ``smoke``, ``cpu`` or ``gpu`` (see the module docstring for the order of precedence)."""
    return explain_profile(requested).profile


def per_profile(profile: str, *, smoke: T, cpu: T, gpu: T) -> T:
    """Pick the value for ``profile``: ``EPOCHS = wu.per_profile(PROFILE, smoke=2, cpu=10, gpu=50)``."""
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[_validate(profile, "profiles.per_profile")]
