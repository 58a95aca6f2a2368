"""Transcribe audio and score it with lab 04's lesson code: checked calls, the timed evaluation, the capstone's model.

Transcription and the error rates are lab 04's own functions (``workshop_utils.lessons.lab04``, copied from the
notebook); the wrappers here check their arguments, time the decoding and cache the capstone's model.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from nemo.collections.asr.models import EncDecCTCModel

from workshop_utils import speech
from workshop_utils.asr.model import ARTIFACT_NAME, MODEL_PATH_FIX, restore_model
from workshop_utils.core import paths
from workshop_utils.core.errors import (
    MissingFileError,
)
from workshop_utils.core.inputs import bad_input, describe, require_int, require_nonempty, require_path
from workshop_utils.lessons.lab04 import error_rates, normalize_text, transcribe_files


def _audio_list(audio_paths: Any, where: str) -> list[Path]:
    """The WAV paths as a non-empty list of existing files (a lone path is refused, not read per character)."""
    fix = "Pass a list of WAV paths, e.g. [clip] or [c.audio_filepath for c in corpus.test]."
    if isinstance(audio_paths, (str, Path)):
        raise bad_input(where, "audio_paths as a list of paths", describe(audio_paths),
                        f"Wrap it in a list: [{audio_paths!s}].")
    items = require_nonempty(audio_paths, where, "audio_paths", fix)
    items = [require_path(p, where, "each audio path", fix) for p in items]
    missing = [str(p) for p in items if not Path(p).is_file()]
    if missing:
        raise MissingFileError(f"{where}: expected existing 16 kHz mono WAV files; got {len(missing)} audio file(s) not "
                              f"found, first={missing[0]}. Next step: pass paths to WAV files that exist "
                              "(speech.synthesize writes them).")
    return [Path(p) for p in items]


def require_asr_model(model: Any, where: str) -> Any:
    if not (isinstance(model, torch.nn.Module) and callable(getattr(model, "transcribe", None))):
        raise bad_input(where, "model as a NeMo ASR model", describe(model),
                        "Pass asr.build_model(cfg) or asr.restore_model(path).")
    return model


def transcribe_with(model: EncDecCTCModel, audio_paths: Sequence[str | Path], batch_size: int = 16) -> list[str]:
    """Greedy CTC transcripts of WAV files (16 kHz mono) with ``model``: the lesson's ``transcribe_files``, checked.

    The model is switched to eval mode; NeMo's progress output is silenced.

    Args:
        model: a NeMo CTC model, e.g. from :func:`build_model` or :func:`restore_model`.
        audio_paths: a list of WAV file paths (a single path must be wrapped in a list).
        batch_size: clips decoded per forward pass.

    Returns:
        One transcript per file, in order, with runs of whitespace collapsed to single spaces.

    Example:
        >>> wu.asr.transcribe_with(model, [clip.audio_filepath for clip in corpus.test[:4]])
    """
    require_asr_model(model, "transcribe_with")
    audio_paths = _audio_list(audio_paths, "transcribe_with")
    batch_size = require_int(batch_size, "transcribe_with", "batch_size", minimum=1)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pin_memory.*")  # also where the global filter was reset
        return transcribe_files(model, audio_paths, batch_size=batch_size)


@dataclass
class Evaluation:
    """Held-out scores: word and character error rates (0-1), transcripts, audio seconds and decode seconds."""

    wer: float
    cer: float
    references: list[str]
    hypotheses: list[str]
    audio_s: float
    decode_s: float
    examples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rtfx(self) -> float:
        """Inverse real-time factor: seconds of audio transcribed per second of compute."""
        return self.audio_s / self.decode_s if self.decode_s > 0 else float("nan")


def evaluate(model: EncDecCTCModel, clips: Sequence[speech.Clip], batch_size: int = 16) -> Evaluation:
    """WER and CER (the lesson's ``error_rates``: NeMo's ``word_error_rate``) of ``model`` on ``clips``, and the speed.

    One untimed warm-up transcription runs first, so ``decode_s`` excludes one-off start-up costs.

    Args:
        model: a NeMo CTC model.
        clips: the :class:`speech.Clip` items to score, e.g. ``corpus.test``.
        batch_size: clips decoded per forward pass.

    Returns:
        An :class:`Evaluation`: ``wer`` and ``cer`` (0-1), references and hypotheses (normalised), ``audio_s`` and ``decode_s``
        (s), the first five (reference, hypothesis) pairs in ``examples``, and ``rtfx``.

    Example:
        >>> evaluation = wu.asr.evaluate(model, corpus.test)
    """
    require_asr_model(model, "evaluate")
    clips = require_nonempty(clips, "evaluate", "clips", "Pass corpus.test from speech.build_corpus().")
    odd = next((c for c in clips if not isinstance(c, speech.Clip)), None)
    if odd is not None:
        raise bad_input("evaluate", "clips as speech.Clip items", describe(odd),
                        "Pass corpus.test (or speech.read_manifest(path)).")
    batch_size = require_int(batch_size, "evaluate", "batch_size", minimum=1)
    refs = [normalize_text(c.text) for c in clips]  # as the WER compares them
    transcribe_with(model, [clips[0].audio_filepath])  # warm-up, not timed
    started = time.perf_counter()
    hyps = transcribe_with(model, [c.audio_filepath for c in clips], batch_size=batch_size)
    decode_s = time.perf_counter() - started
    wer, cer = error_rates(hyps, refs)
    return Evaluation(wer, cer, refs, hyps, sum(c.duration for c in clips), decode_s,
                      list(zip(refs, hyps, strict=True))[:5])


_CACHED: dict[str, Any] = {}


def transcribe(audio_paths: Sequence[str | Path], model_path: Path | None = None) -> list[str]:
    """Transcripts of 16 kHz mono WAV files with the lab-04 model (restored once, then cached).

    The cache holds one model and is refreshed when ``model_path`` changes or its file is rewritten.

    Args:
        audio_paths: a list of WAV file paths (a single path must be wrapped in a list).
        model_path: a ``.nemo`` archive; None means lab 04's ``build/artifacts/lab_notes_asr.nemo``.

    Returns:
        One transcript per file, in order.

    Example:
        >>> transcript = wu.asr.transcribe([clip_path])[0]
    """
    audio_paths = _audio_list(audio_paths, "transcribe")  # before the model loads
    path = require_path(model_path, "transcribe", "model_path", MODEL_PATH_FIX, default=paths.artifacts_dir() / ARTIFACT_NAME)
    key = f"{path}:{path.stat().st_mtime_ns if path.is_file() else 0}"
    if key not in _CACHED:
        _CACHED.clear()
        _CACHED[key] = restore_model(path)
    return transcribe_with(_CACHED[key], audio_paths)
