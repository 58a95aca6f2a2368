"""Spoken lab notes for lab 04 and the capstone (``wu.speech.<name>``): text, synthesised speech, NeMo manifests.

- :mod:`~workshop_utils.speech.notes`: the cell-biology grammar of a lab note and its character vocabulary;
- :mod:`~workshop_utils.speech.synthesis`: espeak-ng voices and sox, 16 kHz mono WAV, cached per clip;
- :mod:`~workshop_utils.speech.corpus`: a train/test corpus with disjoint voices and its NeMo manifests;
- :mod:`~workshop_utils.speech.librispeech`: real read speech in LibriSpeech's layout (Mini LibriSpeech) as clips.
"""

from workshop_utils.speech.corpus import Corpus, build_corpus, describe_corpus, read_manifest, write_manifest
from workshop_utils.speech.librispeech import describe_real_speech, read_librispeech
from workshop_utils.speech.notes import (
    LABELS,
    OBJECTS,
    PHASES,
    PHENOTYPES,
    QUESTIONS,
    ROWS,
    lab_note,
    lab_notes,
    number_words,
    require_words,
)
from workshop_utils.speech.synthesis import (
    HELDOUT_VOICES,
    SAMPLE_RATE_HZ,
    TRAIN_VOICES,
    Clip,
    Voice,
    clip_path,
    duration_s,
    espeak_version,
    require_tools,
    synthesize,
    synthesize_clips,
)

__all__ = [
    "HELDOUT_VOICES",
    "LABELS",
    "OBJECTS",
    "PHASES",
    "PHENOTYPES",
    "QUESTIONS",
    "ROWS",
    "SAMPLE_RATE_HZ",
    "TRAIN_VOICES",
    "Clip",
    "Corpus",
    "Voice",
    "build_corpus",
    "clip_path",
    "describe_corpus",
    "describe_real_speech",
    "duration_s",
    "espeak_version",
    "lab_note",
    "lab_notes",
    "number_words",
    "read_librispeech",
    "read_manifest",
    "require_tools",
    "require_words",
    "synthesize",
    "synthesize_clips",
    "write_manifest",
]
