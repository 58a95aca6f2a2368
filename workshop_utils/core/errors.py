"""Every exception the workshop raises, in one place.

Each message has one shape, ``<where>: expected <what>; got <what came>. <next step>``, where ``<where>`` is the
name the caller typed (``segment_nuclei``, ``LabRecorder.metric``). :func:`workshop_utils.core.inputs.bad_input`
writes it for argument errors; the other classes follow the same shape. Every class derives from
:class:`WorkshopError` and from the built-in exception an attendee would expect, so ``except ValueError`` and
``except FileNotFoundError`` still catch them.
"""

from __future__ import annotations


class WorkshopError(Exception):
    """Base class: an error an attendee can act on."""


class InputError(WorkshopError, ValueError):
    """An argument of the wrong type, shape, dtype or range, or an empty one."""


class ProfileError(WorkshopError, ValueError):
    """An unknown profile was named, or one this machine cannot run."""


class MissingFileError(WorkshopError, FileNotFoundError):
    """A file a call needs is absent: a model artifact, an audio clip, reveal.js, the lab notebooks."""


class HardwareRequirementError(WorkshopError, RuntimeError):
    """The machine lacks what a cell needs (a GPU, enough memory, TensorRT)."""


class ManifestError(WorkshopError, ValueError):
    """A data manifest is malformed or names an unknown entry."""


class DownloadError(WorkshopError, RuntimeError):
    """A file could not be fetched from any of its URLs."""


class ChecksumError(DownloadError):
    """A file's hash did not match its manifest."""


class UnsafeArchiveError(WorkshopError, ValueError):
    """An archive member would land outside the extraction folder."""


class ServerError(WorkshopError, RuntimeError):
    """The Triton server could not start, become ready, or stop cleanly."""


class PortInUseError(ServerError):
    """A port asked for explicitly is already taken."""


class LabCheckFailed(WorkshopError, AssertionError):
    """A lab's expectations (its asserted outcomes) were not met."""
