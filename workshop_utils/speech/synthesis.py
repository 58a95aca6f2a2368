"""Speak a lab note: espeak-ng voices and sox, to 16 kHz mono WAV, cached by (text, voice, speed, pitch).

Each clip is cached under ``build/speech/clips`` by a hash of (text, voice, speed, pitch), so a rerun reuses it.
Training and held-out clips use disjoint voices, so the test measures speakers the model never heard.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import wave
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workshop_utils.core.errors import HardwareRequirementError, WorkshopError
from workshop_utils.core.files import atomic_write
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_file,
    require_int,
    require_nonempty,
    require_path,
    require_texts,
)

SAMPLE_RATE_HZ = 16_000  # what NeMo's ASR models expect


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language+variant, speed in words per minute, pitch 0-99."""

    name: str
    speed_wpm: int = 160
    pitch: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or self.name.startswith("-"):
            raise bad_input("Voice", "name as an espeak-ng voice such as 'en-us+m1'", describe(self.name),
                            "`espeak-ng --voices=en` lists the voices installed here.")
        require_int(self.speed_wpm, "Voice", "speed_wpm", minimum=80, maximum=450)
        require_int(self.pitch, "Voice", "pitch", minimum=0, maximum=99)

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.speed_wpm}wpm/p{self.pitch}"


TRAIN_VOICES: tuple[Voice, ...] = tuple(
    Voice(f"{lang}+{variant}", speed, pitch)
    for lang, variant, speed, pitch in [
        ("en-us", "m1", 150, 45), ("en-us", "f2", 170, 60), ("en-gb", "m3", 160, 40), ("en-gb", "f1", 140, 65),
        ("en-gb-x-rp", "m4", 175, 50), ("en-029", "f3", 155, 55), ("en-gb-x-gbcwmd", "m7", 165, 35),
        ("en-us", "klatt", 160, 50), ("en-gb", "f4", 180, 70), ("en-us", "m6", 145, 30),
    ]
)
HELDOUT_VOICES: tuple[Voice, ...] = (
    Voice("en-us-nyc+m2", 160, 48), Voice("en-gb-scotland+f5", 150, 58), Voice("en-gb-x-gbclan+m5", 170, 42),
)


def require_tools() -> None:
    """Raise a clear error if espeak-ng or sox is not on PATH."""
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise HardwareRequirementError(
            f"Speech synthesis needs {' and '.join(missing)} on PATH (missing={missing}). They are Debian packages "
            "the lab uses to speak its lab notes. Next step: `sudo apt-get install espeak-ng sox libsndfile1` "
            "(or run `make setup` as root), then rerun this cell."
        )


def _require_text(text: Any, where: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise bad_input(where, "text as a non-blank string to speak", describe(text),
                        "Pass one sentence, e.g. 'well a one mitosis'; for many, use synthesize_clips(texts, ...).")
    return text


def _require_voice(voice: Any, where: str) -> Voice:
    if not isinstance(voice, Voice):
        raise bad_input(where, "voice as a speech.Voice", describe(voice),
                        "Pick one of speech.TRAIN_VOICES or speech.HELDOUT_VOICES, or build speech.Voice('en-us+m1').")
    return voice



def clip_path(text: str, voice: Voice, folder: Path) -> Path:
    """The cache path of one clip: a hash of what is spoken and how.

    Args:
        text: what is spoken.
        voice: the :class:`Voice` that speaks it (name, speed and pitch all count).
        folder: the folder of the clip cache.

    Returns:
        ``folder / "<20 hex digits>.wav"``; the same text, voice and sample rate give the same path.

    Example:
        >>> wu.speech.clip_path(question, wu.speech.HELDOUT_VOICES[0], wu.build_dir() / "capstone" / "questions")
    """
    text, voice = _require_text(text, "clip_path"), _require_voice(voice, "clip_path")
    folder = require_path(folder, "clip_path", "folder")
    key = hashlib.sha256(f"{text}|{voice.tag}|{SAMPLE_RATE_HZ}".encode()).hexdigest()[:20]
    return folder / f"{key}.wav"


def synthesize(text: str, voice: Voice, target: Path) -> Path:
    """Speak ``text`` with espeak-ng and convert it with sox to 16 kHz mono 16-bit WAV at ``target`` (cached).

    An existing file at ``target`` is returned as it is; a new one is written atomically.

    Args:
        text: what to speak.
        voice: the espeak-ng :class:`Voice` (name, speed in words per minute, pitch).
        target: the ``.wav`` file to write, e.g. from :func:`clip_path` (parent folders are created).

    Returns:
        ``target``.

    Example:
        >>> wu.speech.synthesize(question, voice, wu.speech.clip_path(question, voice, clip_dir))
    """
    text, voice = _require_text(text, "synthesize"), _require_voice(voice, "synthesize")
    target = require_path(target, "synthesize", "target")
    if target.is_dir():
        raise bad_input("synthesize", "target as a .wav file path", f"{target} (a folder)",
                        "Name the file: speech.clip_path(text, voice, folder) gives one.")
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    speak = ["espeak-ng", "-v", voice.name, "-s", str(voice.speed_wpm), "-p", str(voice.pitch), "--stdout",
             "--", text]  # "--": a text that starts with "-" is spoken, not read as an option
    try:
        with atomic_write(target) as partial:  # the final name never holds a half-written clip
            # -R: repeatable mode, so sox seeds its dither: the same note gives the same bytes, and a model
            # rebuilt in a fresh workspace trains on exactly the clips lab 04 trained on
            convert = ["sox", "-R", "-t", "wav", "-", "-r", str(SAMPLE_RATE_HZ), "-c", "1", "-b", "16", str(partial)]
            raw = subprocess.run(speak, check=True, capture_output=True, timeout=60).stdout
            subprocess.run(convert, input=raw, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise WorkshopError(
            f"Synthesis failed: command={exc.cmd[0]} voice={voice.tag} text={text!r} rc={exc.returncode}: "
            f"{exc.stderr.decode(errors='replace').strip()[:300]}. Likely cause: an unknown espeak-ng voice or "
            "variant (expected one that `espeak-ng --voices=en` lists). Next step: pick one of those voices."
        ) from exc
    return target


def duration_s(path: Path) -> float:
    """Length of a PCM WAV file in seconds."""
    path = require_file(path, "duration_s", "path", "Pass a WAV file written by speech.synthesize().")
    try:
        with wave.open(str(path), "rb") as handle:
            return handle.getnframes() / handle.getframerate()
    except (wave.Error, EOFError) as exc:
        raise bad_input("duration_s", "a PCM WAV file", f"{path} ({exc})",
                        "Convert it first: `sox in.xxx -r 16000 -c 1 -b 16 out.wav`.") from None


@dataclass(frozen=True)
class Clip:
    """One manifest line: where the audio is, how long it is, what is said, and by which voice."""

    audio_filepath: str
    duration: float
    text: str
    voice: str


def synthesize_clips(texts: Sequence[str], voices: Sequence[Voice], folder: Path, workers: int = 4) -> list[Clip]:
    """Speak each text with the next voice in turn, in parallel subprocesses; cached clips are reused."""
    where = "synthesize_clips"
    texts = require_texts(texts, where, "texts")
    voices = [_require_voice(v, where) for v in require_nonempty(voices, where, "voices",
                                                                 "Pass speech.TRAIN_VOICES or speech.HELDOUT_VOICES.")]
    folder = require_path(folder, where, "folder")
    workers = require_int(workers, where, "workers", minimum=1)
    require_tools()
    jobs = [(text, voices[i % len(voices)]) for i, text in enumerate(texts)]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # threads only wait on espeak-ng/sox processes
        files = list(pool.map(lambda job: synthesize(job[0], job[1], clip_path(job[0], job[1], folder)), jobs))
    return [Clip(str(f), round(duration_s(f), 3), t, v.tag) for f, (t, v) in zip(files, jobs, strict=True)]


def espeak_version() -> str:
    """The installed espeak-ng version line, or 'unknown'."""
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    line = out.strip().splitlines()[0] if out.strip() else "unknown"
    return line.split("  Data at")[0].replace("text-to-speech: ", "")
