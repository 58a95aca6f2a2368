"""Exceptions the workshop raises: each message says what failed, the context, the likely cause and the next step."""

from __future__ import annotations


class WorkshopError(Exception):
    """Base class: an error an attendee can act on."""


class ProfileError(WorkshopError, ValueError):
    """An unknown or unusable profile was requested."""


class HardwareRequirementError(WorkshopError, RuntimeError):
    """The machine lacks what a cell needs (a GPU, enough memory)."""


class ManifestError(WorkshopError, ValueError):
    """A data manifest is malformed or names an unknown entry."""


class DownloadError(WorkshopError, RuntimeError):
    """A file could not be fetched from any of its URLs."""


class ChecksumError(DownloadError):
    """A file's sha256 did not match its manifest."""


class UnsafeArchiveError(WorkshopError, ValueError):
    """An archive member would land outside the extraction folder."""


class LabCheckFailed(WorkshopError, AssertionError):
    """A lab's expectations (its asserted outcomes) were not met."""
