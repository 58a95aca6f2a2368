"""A spoken corpus for NeMo: synthesised clips and the JSON-lines manifests NeMo trains from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workshop_utils.core import paths
from workshop_utils.core.inputs import (
    bad_input,
    describe,
    require_file,
    require_int,
    require_nonempty,
    require_path,
)
from workshop_utils.speech.notes import lab_notes, require_words
from workshop_utils.speech.synthesis import HELDOUT_VOICES, TRAIN_VOICES, Clip, espeak_version, synthesize_clips


def write_manifest(clips: Iterable[Clip], target: Path) -> Path:
    """Write a NeMo manifest: one JSON object per line with audio_filepath, duration and text (and the voice).

    Args:
        clips: :class:`Clip` items, e.g. from :func:`synthesize_clips` or ``speech.read_librispeech``.
        target: the manifest's path (JSON lines); its folder is created when missing.

    Returns:
        ``target``.

    Example:
        >>> manifest = wu.speech.write_manifest(real, wu.build_dir() / "speech" / "dev_clean_2.json")
    """
    clips = require_nonempty(clips, "write_manifest", "clips", "Pass the list synthesize_clips() returns.")
    odd = next((c for c in clips if not isinstance(c, Clip)), None)
    if odd is not None:
        raise bad_input("write_manifest", "clips as speech.Clip items", describe(odd),
                        "Pass the list synthesize_clips() returns, or build speech.Clip(path, duration, text, voice).")
    target = require_path(target, "write_manifest", "target")
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"audio_filepath": c.audio_filepath, "duration": c.duration, "text": c.text,
                         "voice": c.voice}) for c in clips]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def read_manifest(path: Path) -> list[Clip]:
    """Read a NeMo manifest written by :func:`write_manifest`."""
    path = require_file(path, "read_manifest", "path",
                        "Build the corpus first: speech.build_corpus(n_train, n_test).")
    clips = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            clips.append(Clip(item["audio_filepath"], float(item["duration"]), item["text"], item.get("voice", "")))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad_input("read_manifest", "one JSON object with audio_filepath, duration and text per line",
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
    """Synthesise (or reuse) a corpus under ``build/speech``: training voices for train, held-out voices for test.

    Args:
        n_train: training clips (>= 1).
        n_test: held-out clips (>= 1), drawn from seed ``seed + 10000`` and spoken by voices training never hears.
        seed: the note generator's seed; the same seed and sizes reuse the cached clips.
        extra_words: words of which one, drawn at random, ends every note; ``()`` for none.
        name: the manifests' file-name stem (letters, digits, ``_``, ``.``, ``-``).
        workers: espeak-ng/sox processes run in parallel.

    Returns:
        A :class:`Corpus`: ``train_manifest`` and ``test_manifest`` (NeMo JSON lines), ``train`` and ``test`` clips.

    Example:
        >>> corpus = wu.speech.build_corpus(S.n_train, S.n_test, seed=SEED)
    """
    where = "build_corpus"
    n_train, n_test = require_int(n_train, where, "n_train", minimum=1), require_int(n_test, where, "n_test", minimum=1)
    seed, extra_words = require_int(seed, where, "seed"), require_words(extra_words, where)
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


def describe_corpus(corpus: Corpus) -> str:
    """Where the corpus comes from, its licence and its size, in a few lines.

    Args:
        corpus: the :class:`Corpus` :func:`build_corpus` returns.

    Returns:
        Lines on the source (grammar, espeak-ng version, sox), licence, train and test clips, minutes and voices,
        and the manifests' names and folder.

    Example:
        >>> print(wu.speech.describe_corpus(corpus))
    """
    if not isinstance(corpus, Corpus):
        raise bad_input("describe_corpus", "a speech.Corpus", describe(corpus),
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
