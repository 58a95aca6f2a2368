"""Real read speech for lab 04: a LibriSpeech-layout folder (Mini LibriSpeech dev-clean-2) as NeMo clips.

LibriSpeech keeps ``<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` beside one
``<speaker>-<chapter>.trans.txt`` per chapter, whose lines read ``<utterance id> TRANSCRIPT IN CAPITALS``.
Transcripts hold only A-Z, the apostrophe and spaces, so lower-casing them (and collapsing spaces) is the same
normalisation lab 04's word error rate applies to a recogniser's output.
"""

from __future__ import annotations

import re
from pathlib import Path

import soundfile as sf

from workshop_utils.core.errors import MissingFileError
from workshop_utils.core.inputs import bad_input, describe, require_folder, require_int
from workshop_utils.speech.synthesis import Clip

_LINE = re.compile(r"(\d+-\d+-\d+) +(\S.*)")
FETCH_FIX = "Fetch it with wu.fetch('mini_librispeech_dev_clean_2') (the extracted folder)."


def _transcript_clips(transcript: Path) -> list[Clip]:
    """The clips one ``*.trans.txt`` lists, each checked to have its FLAC file beside it."""
    clips = []
    for number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise bad_input("read_librispeech", "transcript lines '<speaker>-<chapter>-<utt> TRANSCRIPT'",
                            f"file={transcript} line={number}: {line[:60]!r}",
                            "The folder is not LibriSpeech's layout; fetch it again (wu.fetch(...)).")
        utterance, text = match.groups()
        audio = transcript.parent / f"{utterance}.flac"
        if not audio.is_file():
            raise MissingFileError(
                f"read_librispeech: expected the audio of every transcript line; got line {number} of {transcript} "
                f"({utterance}) with no {audio.name} beside it. Likely cause: a cut-off or edited extraction. "
                f"Next step: delete {transcript.parents[2]} and fetch the data set again.")
        info = sf.info(str(audio))
        clips.append(Clip(str(audio), float(info.duration), " ".join(text.lower().split()), utterance.split("-")[0]))
    return clips


def read_librispeech(folder: Path, limit: int | None = None) -> list[Clip]:
    """The utterances of a LibriSpeech-layout folder as :class:`Clip` items (text lower-cased; voice = speaker).

    Args:
        folder: the extracted data set (or any folder above its ``*.trans.txt`` files), e.g.
            ``wu.fetch("mini_librispeech_dev_clean_2")``.
        limit: keep this many utterances, evenly spaced through the sorted list so every speaker is heard; None
            keeps them all.

    Returns:
        One :class:`Clip` per utterance (FLAC path, duration in s, lower-case transcript, speaker id), sorted by
        utterance id.

    Example:
        >>> real = wu.speech.read_librispeech(wu.fetch("mini_librispeech_dev_clean_2"), limit=200)
    """
    folder = require_folder(folder, "read_librispeech", "folder", FETCH_FIX)
    if limit is not None:
        limit = require_int(limit, "read_librispeech", "limit", minimum=1)
    transcripts = sorted(folder.rglob("*.trans.txt"))
    if not transcripts:
        raise MissingFileError(f"read_librispeech: expected LibriSpeech *.trans.txt files under folder={folder}; "
                               f"got none. Next step: {FETCH_FIX}")
    clips = sorted((c for t in transcripts for c in _transcript_clips(t)), key=lambda c: Path(c.audio_filepath).name)
    if limit is None or limit >= len(clips):
        return clips
    step = len(clips) / limit
    return [clips[int(i * step)] for i in range(limit)]


def describe_real_speech(clips: list[Clip]) -> str:
    """One line: utterances, speakers and minutes of real speech.

    Args:
        clips: what :func:`read_librispeech` returns.

    Returns:
        ``"<n> utterances, <k> speakers, <m> min of read speech"``.

    Example:
        >>> print(wu.speech.describe_real_speech(real))
    """
    if not isinstance(clips, list) or not clips or not all(isinstance(c, Clip) for c in clips):
        raise bad_input("describe_real_speech", "clips as a non-empty list of speech.Clip", describe(clips),
                        "Pass what speech.read_librispeech(folder) returns.")
    speakers = {c.voice for c in clips}
    return (f"{len(clips)} utterances, {len(speakers)} speakers, "
            f"{sum(c.duration for c in clips) / 60:.1f} min of read speech")
