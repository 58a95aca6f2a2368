"""Spoken lab notes: a cell-biology grammar, espeak-ng + sox synthesis to 16 kHz mono WAV, NeMo manifests.

Each clip is cached under ``build/speech/clips`` by a hash of (text, voice, speed, pitch), so a rerun reuses
it. Training and held-out clips use disjoint voices, so the test measures speakers the model never heard.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import paths
from .errors import HardwareRequirementError, WorkshopError
from .inputs import bad_input, describe, require_file, require_int, require_nonempty, require_path, require_texts

SAMPLE_RATE_HZ = 16_000
LABELS: list[str] = list(" abcdefghijklmnopqrstuvwxyz'")  # the character vocabulary of the CTC model

ROWS = list("abcdefgh")  # 96-well plate rows, spoken as letters ("bee")
_UNITS = "zero one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
PHASES = ["prophase", "metaphase", "anaphase", "telophase", "interphase"]
PHENOTYPES = ["mitosis", "apoptosis", "necrosis", "blebbing", "normal"]
OBJECTS = ["nuclei", "cells"]
# Spoken questions to the microscope assistant of lab 06; part of the grammar so the model knows their words.
QUESTIONS = [
    "how many {objects} are in this image",
    "how many {objects} are in {well}",
    "count the {objects} in this image",
    "are any cells dividing",
    "are any cells dividing in {well}",
    "describe this image",
    "describe {well}",
]


def number_words(n: int) -> str:
    """Spell 0-99 the way it is spoken: 42 -> 'forty two'."""
    n = require_int(n, "speech.number_words", "n")
    if not 0 <= n <= 99:
        raise bad_input("speech.number_words", "n in 0-99 (well columns and counts)", f"n={n}",
                        "Pass a number from 0 to 99; the grammar speaks nothing larger.")
    if n < 10:
        return _UNITS[n]
    if n < 20:
        return _TEENS[n - 10]
    tens, units = divmod(n, 10)
    return _TENS[tens - 2] + ("" if units == 0 else " " + _UNITS[units])


def _require_words(words: Any, where: str) -> list[str]:
    """``extra_words`` as a list of non-blank strings spelled with the model's characters (a-z, space, ')."""
    if isinstance(words, (str, bytes)) or not isinstance(words, Iterable):
        raise bad_input(where, "extra_words as a list of words", describe(words),
                        "Wrap a single word in a list: extra_words=['cytokinesis'].")
    listed = list(words)
    for word in listed:
        if not isinstance(word, str) or not word.strip():
            raise bad_input(where, "each extra word as a non-blank string", describe(word),
                            "Drop blank entries or convert them with str().")
        bad = sorted(set(word) - set(LABELS))
        if bad:
            raise bad_input(where, "words spelled with a-z, space and ' only", f"word {word!r} with {bad}, outside "
                            "the model's vocabulary", f"Spell it in lower case letters, e.g. {word.lower()!r}, "
                            "or write symbols out as words.")
    return listed


def lab_note(rng: random.Random, extra_words: Sequence[str] = ()) -> str:
    """One dictated note, lower-case words only: 'well b three forty two nuclei two in metaphase'."""
    if not isinstance(rng, random.Random):
        raise bad_input("speech.lab_note", "rng as a random.Random", describe(rng),
                        "Pass random.Random(seed), or call speech.lab_notes(n, seed) for a list of notes.")
    return _note(rng, _require_words(extra_words, "speech.lab_note"))


def _note(rng: random.Random, extra_words: Sequence[str]) -> str:
    well = f"well {rng.choice(ROWS)} {number_words(rng.randint(1, 12))}"
    kind = rng.randrange(5)
    if kind == 0:
        count, objects = number_words(rng.randint(0, 99)), rng.choice(OBJECTS)  # draw order fixes the corpus
        text = f"{well} {count} {objects} {number_words(rng.randint(0, 9))} in {rng.choice(PHASES)}"
    elif kind == 1:
        text = f"{well} {rng.choice(PHENOTYPES)}"
    elif kind == 2:
        text = f"{rng.choice(PHENOTYPES)} in {well}"
    elif kind == 3:
        text = f"{well} {number_words(rng.randint(0, 99))} {rng.choice(OBJECTS)}"
    else:  # a question for the microscope assistant (the capstone, lab 06)
        text = rng.choice(QUESTIONS).format(objects=rng.choice(OBJECTS), well=well)
    if extra_words:
        text = f"{text} {rng.choice(list(extra_words))}"
    return text


def lab_notes(n: int, seed: int = 0, extra_words: Sequence[str] = ()) -> list[str]:
    """``n`` dictated notes from a seeded generator (the same seed gives the same notes)."""
    n = require_int(n, "speech.lab_notes", "n", minimum=1)
    words = _require_words(extra_words, "speech.lab_notes")
    rng = random.Random(require_int(seed, "speech.lab_notes", "seed"))
    return [_note(rng, words) for _ in range(n)]


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language+variant, speed in words per minute, pitch 0-99."""

    name: str
    speed_wpm: int = 160
    pitch: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or self.name.startswith("-"):
            raise bad_input("speech.Voice", "name as an espeak-ng voice such as 'en-us+m1'", describe(self.name),
                            "`espeak-ng --voices=en` lists the voices installed here.")
        require_int(self.speed_wpm, "speech.Voice", "speed_wpm", minimum=80, maximum=450)
        require_int(self.pitch, "speech.Voice", "pitch", minimum=0, maximum=99)

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
    """The cache path of one clip: a hash of what is spoken and how."""
    text, voice = _require_text(text, "speech.clip_path"), _require_voice(voice, "speech.clip_path")
    folder = require_path(folder, "speech.clip_path", "folder")
    key = hashlib.sha256(f"{text}|{voice.tag}|{SAMPLE_RATE_HZ}".encode()).hexdigest()[:20]
    return folder / f"{key}.wav"


def synthesize(text: str, voice: Voice, target: Path) -> Path:
    """Speak ``text`` with espeak-ng and convert it with sox to 16 kHz mono 16-bit WAV at ``target`` (cached)."""
    text, voice = _require_text(text, "speech.synthesize"), _require_voice(voice, "speech.synthesize")
    target = require_path(target, "speech.synthesize", "target")
    if target.is_dir():
        raise bad_input("speech.synthesize", "target as a .wav file path", f"{target} (a folder)",
                        "Name the file: speech.clip_path(text, voice, folder) gives one.")
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{random.getrandbits(32):08x}.part.wav")
    speak = ["espeak-ng", "-v", voice.name, "-s", str(voice.speed_wpm), "-p", str(voice.pitch), "--stdout",
             "--", text]  # "--": a text that starts with "-" is spoken, not read as an option
    convert = ["sox", "-t", "wav", "-", "-r", str(SAMPLE_RATE_HZ), "-c", "1", "-b", "16", str(partial)]
    try:
        raw = subprocess.run(speak, check=True, capture_output=True, timeout=60).stdout
        subprocess.run(convert, input=raw, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        partial.unlink(missing_ok=True)
        raise WorkshopError(
            f"Synthesis failed: command={exc.cmd[0]} voice={voice.tag} text={text!r} rc={exc.returncode}: "
            f"{exc.stderr.decode(errors='replace').strip()[:300]}. Likely cause: an unknown espeak-ng voice or "
            "variant (expected one that `espeak-ng --voices=en` lists). Next step: pick one of those voices."
        ) from exc
    partial.replace(target)  # atomic: the final name never holds a half-written clip
    return target


def duration_s(path: Path) -> float:
    """Length of a PCM WAV file in seconds."""
    path = require_file(path, "speech.duration_s", "path", "Pass a WAV file written by speech.synthesize().")
    try:
        with wave.open(str(path), "rb") as handle:
            return handle.getnframes() / handle.getframerate()
    except (wave.Error, EOFError) as exc:
        raise bad_input("speech.duration_s", "a PCM WAV file", f"{path} ({exc})",
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
    where = "speech.synthesize_clips"
    texts = require_texts(texts, where, "texts")
    voices = [_require_voice(v, where) for v in require_nonempty(voices, where, "voices",
                                                                 "Pass speech.TRAIN_VOICES or speech.HELDOUT_VOICES.")]
    folder = require_path(folder, where, "folder")
    workers = require_int(workers, where, "workers", minimum=1)
    require_tools()
    jobs = [(text, voices[i % len(voices)]) for i, text in enumerate(texts)]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # threads only wait on espeak-ng/sox processes
        files = list(pool.map(lambda job: synthesize(job[0], job[1], clip_path(job[0], job[1], folder)), jobs))
    return [Clip(str(f), round(duration_s(f), 3), t, v.tag) for f, (t, v) in zip(files, jobs)]


def write_manifest(clips: Iterable[Clip], target: Path) -> Path:
    """Write a NeMo manifest: one JSON object per line with audio_filepath, duration and text."""
    clips = require_nonempty(clips, "speech.write_manifest", "clips", "Pass the list synthesize_clips() returns.")
    odd = next((c for c in clips if not isinstance(c, Clip)), None)
    if odd is not None:
        raise bad_input("speech.write_manifest", "clips as speech.Clip items", describe(odd),
                        "Pass the list synthesize_clips() returns, or build speech.Clip(path, duration, text, voice).")
    target = require_path(target, "speech.write_manifest", "target")
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"audio_filepath": c.audio_filepath, "duration": c.duration, "text": c.text,
                         "voice": c.voice}) for c in clips]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def read_manifest(path: Path) -> list[Clip]:
    """Read a NeMo manifest written by :func:`write_manifest`."""
    path = require_file(path, "speech.read_manifest", "path",
                        "Build the corpus first: speech.build_corpus(n_train, n_test).")
    clips = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            clips.append(Clip(item["audio_filepath"], float(item["duration"]), item["text"], item.get("voice", "")))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad_input("speech.read_manifest", "one JSON object with audio_filepath, duration and text per line",
                            f"file={path} line={number}: {type(exc).__name__} {exc}",
                            "Delete the file and rebuild the corpus with speech.build_corpus().") from exc
    return clips


@dataclass(frozen=True)
class Corpus:
    """Train and held-out manifests of one synthesised corpus."""

    train_manifest: Path
    test_manifest: Path
    train: list[Clip]
    test: list[Clip]

    @property
    def hours(self) -> float:
        return sum(c.duration for c in self.train + self.test) / 3600


def build_corpus(n_train: int, n_test: int, *, seed: int = 0, extra_words: Sequence[str] = (),
                 name: str = "lab_notes", workers: int = 4) -> Corpus:
    """Synthesise (or reuse) a corpus under ``build/speech``: training voices for train, held-out voices for test."""
    where = "speech.build_corpus"
    n_train, n_test = require_int(n_train, where, "n_train", minimum=1), require_int(n_test, where, "n_test", minimum=1)
    seed, extra_words = require_int(seed, where, "seed"), _require_words(extra_words, where)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise bad_input(where, "name as a file-name stem (letters, digits, _ . -)", describe(name),
                        "Pass a short tag such as name='lab_notes'.")
    workers = require_int(workers, where, "workers", minimum=1)
    root = paths.build_dir() / "speech"
    folder = root / "clips"
    train = synthesize_clips(lab_notes(n_train, seed, extra_words), TRAIN_VOICES, folder, workers)
    test = synthesize_clips(lab_notes(n_test, seed + 10_000, extra_words), HELDOUT_VOICES, folder, workers)
    tag = f"{name}_s{seed}_{n_train}_{n_test}"
    return Corpus(write_manifest(train, root / f"{tag}_train.json"), write_manifest(test, root / f"{tag}_test.json"),
                  train, test)


def espeak_version() -> str:
    """The installed espeak-ng version line, or 'unknown'."""
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    line = out.strip().splitlines()[0] if out.strip() else "unknown"
    return line.split("  Data at")[0].replace("text-to-speech: ", "")


def describe_corpus(corpus: Corpus) -> str:
    """Where the corpus comes from, its licence and its size, in a few lines."""
    if not isinstance(corpus, Corpus):
        raise bad_input("speech.describe_corpus", "a speech.Corpus", describe(corpus),
                        "Pass what speech.build_corpus(n_train, n_test) returns.")
    train_voices = sorted({c.voice for c in corpus.train})
    test_voices = sorted({c.voice for c in corpus.test})
    return "\n".join([
        "lab-notes speech corpus (synthesised here, nothing downloaded)",
        f"  source:  workshop_utils.speech grammar + {espeak_version()} + sox, 16 kHz mono WAV",
        "  licence: generated audio, no third-party recordings (espeak-ng is GPL-3.0; its output is unrestricted)",
        f"  train:   {len(corpus.train)} clips, {sum(c.duration for c in corpus.train) / 60:.1f} min, "
        f"{len(train_voices)} voices",
        f"  test:    {len(corpus.test)} clips, {sum(c.duration for c in corpus.test) / 60:.1f} min, "
        f"{len(test_voices)} held-out voices: {', '.join(test_voices)}",
        f"  manifests: {corpus.train_manifest.name}, {corpus.test_manifest.name} in {corpus.train_manifest.parent}",
    ])
