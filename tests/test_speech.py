"""Lab 04's speech plumbing: grammar, espeak-ng + sox synthesis, manifests, the WER exercise check."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from workshop_utils import check, speech
from workshop_utils.core.errors import HardwareRequirementError, WorkshopError
from workshop_utils.exercises import lab04

needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                 reason="espeak-ng and sox are not installed (make setup installs them as root)")


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WORKSHOP_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


@pytest.mark.parametrize(("n", "words"), [(0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"),
                                          (42, "forty two"), (99, "ninety nine")])
def test_number_words(n: int, words: str) -> None:
    assert speech.number_words(n) == words


def test_number_words_out_of_range() -> None:
    with pytest.raises(ValueError, match="0-99"):
        speech.number_words(100)


def test_lab_notes_are_seeded_and_in_vocabulary() -> None:
    notes = speech.lab_notes(200, seed=3)
    assert notes == speech.lab_notes(200, seed=3)
    assert notes != speech.lab_notes(200, seed=4)
    assert set("".join(notes)) <= set(speech.LABELS)
    assert all(note == " ".join(note.split()) for note in notes)  # no double or trailing spaces
    words = {w for note in notes for w in note.split()}
    assert {"well", "metaphase", "apoptosis"} <= words


def test_extra_words_enter_the_grammar_and_are_validated() -> None:
    notes = speech.lab_notes(50, seed=0, extra_words=["cytokinesis"])
    assert all(note.endswith("cytokinesis") for note in notes)
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        speech.lab_notes(5, extra_words=["G2/M"])


def test_heldout_voices_never_train() -> None:
    assert not {v.tag for v in speech.TRAIN_VOICES} & {v.tag for v in speech.HELDOUT_VOICES}
    assert not {v.name for v in speech.TRAIN_VOICES} & {v.name for v in speech.HELDOUT_VOICES}


def test_missing_tools_give_an_actionable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech.synthesis.shutil, "which", lambda tool: None if tool == "sox" else "/usr/bin/" + tool)
    with pytest.raises(HardwareRequirementError, match=r"sox.*apt-get install espeak-ng sox"):
        speech.require_tools()


@needs_tools
def test_synthesis_writes_16khz_mono_and_is_cached(build: Path) -> None:
    voice = speech.HELDOUT_VOICES[0]
    target = speech.clip_path("well b three mitosis", voice, build / "clips")
    speech.synthesize("well b three mitosis", voice, target)
    with wave.open(str(target), "rb") as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (16_000, 1, 2)
        assert 0.5 < handle.getnframes() / 16_000 < 5
    stamp = target.stat().st_mtime_ns
    speech.synthesize("well b three mitosis", voice, target)
    assert target.stat().st_mtime_ns == stamp
    assert not list(target.parent.glob("*.part.wav"))


@needs_tools
def test_the_same_note_gives_the_same_bytes_in_a_fresh_workspace(build: Path) -> None:
    """sox dithers with a random seed unless told to repeat: a rebuilt corpus must equal lab 04's."""
    voice = speech.TRAIN_VOICES[0]
    first = speech.synthesize("well c four apoptosis", voice, build / "one" / "clip.wav")
    again = speech.synthesize("well c four apoptosis", voice, build / "two" / "clip.wav")
    assert first.read_bytes() == again.read_bytes()


@needs_tools
def test_a_text_starting_with_a_dash_is_spoken_not_read_as_an_option(build: Path) -> None:
    voice = speech.HELDOUT_VOICES[0]
    target = speech.clip_path("-w out.wav hello", voice, build / "clips")
    speech.synthesize("-w out.wav hello", voice, target)
    assert speech.duration_s(target) > 0.3 and not (Path.cwd() / "out.wav").exists()


@needs_tools
def test_unknown_voice_is_reported(build: Path) -> None:
    voice = speech.Voice("xx-not-a-voice")
    with pytest.raises(WorkshopError, match="voice=xx-not-a-voice"):
        speech.synthesize("well a one", voice, build / "x.wav")
    assert not (build / "x.wav").exists()


@needs_tools
def test_build_corpus_writes_nemo_manifests(build: Path) -> None:
    corpus = speech.build_corpus(6, 3, seed=1)
    assert corpus.train_manifest.is_file() and corpus.test_manifest.is_file()
    train = speech.read_manifest(corpus.train_manifest)
    assert [c.text for c in train] == speech.lab_notes(6, seed=1)
    assert all(Path(c.audio_filepath).is_file() and c.duration > 0.3 for c in train)
    assert {c.voice for c in speech.read_manifest(corpus.test_manifest)} <= {v.tag for v in speech.HELDOUT_VOICES}
    assert "held-out voices" in speech.describe_corpus(corpus)


def test_bad_manifest_line_names_file_and_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text('{"audio_filepath": "a.wav", "duration": 1.0, "text": "well a one"}\n{"text": 1}\n')
    with pytest.raises(WorkshopError, match="line=2"):
        speech.read_manifest(manifest)


def test_manifest_roundtrip(tmp_path: Path) -> None:
    clips = [speech.Clip("/x/a.wav", 1.25, "well a one", "en-us+m1@150wpm/p45")]
    assert speech.read_manifest(speech.write_manifest(clips, tmp_path / "m.json")) == clips


@pytest.mark.parametrize(("reference", "hypothesis", "expected"), lab04.CASES)
def test_reference_wer(reference: str, hypothesis: str, expected: float) -> None:
    assert lab04.reference_wer(reference, hypothesis) == pytest.approx(expected)


def test_wer_check_accepts_the_edit_distance(capsys: pytest.CaptureFixture[str]) -> None:
    assert check("04-wer", lab04.reference_wer)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda r, h: lab04._positional(r, h), "position by position"),
    (lambda r, h: lab04.reference_wer(r, h) * len(r.split()) / max(1, len(h.split())), "reference words"),
    (lambda r, h: min(1.0, lab04.reference_wer(r, h)), "above 1"),
    (lab04.reference_wer("a", "b"), "function itself"),
])
def test_wer_check_hints(wrong: object, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert not check("04-wer", wrong)
    assert hint in capsys.readouterr().out
