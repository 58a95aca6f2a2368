"""Bad input to lab 04's speech plumbing (speech, asr) and to the exercise answer checks.

Every wrong call here fails before any synthesis, training or model load. ``asr`` imports NeMo (slow), so it is
imported on the first case that needs it, once for the module, and not when the coverage test reads ``CASES``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import random
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.badinput import Case, assert_rejects
from workshop_utils import exercises, speech
from workshop_utils.exercises import lab04

HERE = Path(__file__)  # an existing file that is not a WAV, a manifest or a .nemo archive
NOWHERE = Path(tempfile.gettempdir()) / "workshop-no-such-dir" / "missing.wav"
needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                 reason="espeak-ng and sox are not installed (make setup installs them as root)")


@pytest.fixture(autouse=True)
def _isolated_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_BUILD_DIR", str(tmp_path / "build"))


def asr() -> ModuleType:
    """workshop_utils.asr, imported on first use (NeMo takes seconds)."""
    pytest.importorskip("nemo.collections.asr")
    return importlib.import_module("workshop_utils.asr")


@functools.lru_cache(maxsize=1)
def tiny() -> Any:
    """An untrained two-block CTC model without manifests (built once)."""
    return asr().build_model(asr().asr_config(None, None, width=16, blocks=1), seed=0)


def text_file(text: str) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    with handle:
        handle.write(text)
    return Path(handle.name)


def trainer_without(history: Any) -> None:
    a = asr()
    a.train(tiny(), a.make_trainer(5), history)


def train_without_manifest() -> None:
    a = asr()
    history = a.LossHistory()
    a.train(tiny(), a.make_trainer(5, extra_callbacks=[history]), history)


def gpu_trainer_without_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so use_gpu=True is valid here")
    asr().make_trainer(5, use_gpu=True)


V = speech.TRAIN_VOICES[0]
CLIP = speech.Clip("/x/a.wav", 1.0, "well a one", V.tag)

SPEECH_CASES = [
    Case("speech.number_words", lambda: speech.number_words(100), r"0-99.*n=100", label="range"),
    Case("speech.number_words", lambda: speech.number_words(-1), r"0-99", label="negative"),
    Case("speech.number_words", lambda: speech.number_words(2.5), "whole number", label="float"),
    Case("speech.lab_note", lambda: speech.lab_note(np.random.default_rng(0)), r"random\.Random", label="numpy-rng"),
    Case("speech.lab_note", lambda: speech.lab_note(random.Random(0), "mitosis"), r"Wrap a single word",
         label="lone-word"),
    Case("speech.lab_notes", lambda: speech.lab_notes(0), "n at least 1", label="zero"),
    Case("speech.lab_notes", lambda: speech.lab_notes(3, seed="one"), "seed as a whole number", label="seed"),
    Case("speech.lab_notes", lambda: speech.lab_notes(3, extra_words=["G2/M"]), r"outside the model's vocabulary",
         label="vocabulary"),
    Case("speech.lab_notes", lambda: speech.lab_notes(3, extra_words=["ok", " "]), "non-blank", label="blank-word"),
    Case("speech.clip_path", lambda: speech.clip_path("", V, Path("x")), "non-blank string", label="empty-text"),
    Case("speech.clip_path", lambda: speech.clip_path("well a one", "en-us+m1", Path("x")), r"speech\.Voice",
         label="voice-name"),
    Case("speech.clip_path", lambda: speech.clip_path("well a one", V, None), "folder as a path", label="folder"),
    Case("speech.synthesize", lambda: speech.synthesize(None, V, NOWHERE), "text as a non-blank", label="none-text"),
    Case("speech.synthesize", lambda: speech.synthesize("well a one", V, HERE.parent), r"\(a folder\)",
         label="target-folder"),
    Case("speech.synthesize", lambda: speech.synthesize("well a one", None, NOWHERE), r"speech\.Voice",
         label="no-voice"),
    Case("speech.duration_s", lambda: speech.duration_s(NOWHERE), "missing", label="missing"),
    Case("speech.duration_s", lambda: speech.duration_s(HERE), "PCM WAV", label="not-wav"),
    Case("speech.synthesize_clips", lambda: speech.synthesize_clips("well a one", [V], NOWHERE.parent),
         r"Wrap a single text", label="lone-text"),
    Case("speech.synthesize_clips", lambda: speech.synthesize_clips([], [V], NOWHERE.parent), "non-empty texts",
         label="no-texts"),
    Case("speech.synthesize_clips", lambda: speech.synthesize_clips(["well a one"], [], NOWHERE.parent),
         "non-empty voices", label="no-voices"),
    Case("speech.synthesize_clips", lambda: speech.synthesize_clips(["well a one"], [V], NOWHERE.parent, workers=0),
         "workers at least 1", label="workers"),
    Case("speech.write_manifest", lambda: speech.write_manifest([], NOWHERE), "non-empty clips", label="empty"),
    Case("speech.write_manifest", lambda: speech.write_manifest([{"text": "x"}], NOWHERE), r"speech\.Clip",
         label="dicts"),
    Case("speech.write_manifest", lambda: speech.write_manifest([CLIP], None), "target as a path", label="target"),
    Case("speech.read_manifest", lambda: speech.read_manifest(NOWHERE), r"missing\).*build_corpus", label="missing"),
    Case("speech.read_manifest", lambda: speech.read_manifest(text_file('{"text": "x"}\n[1, 2]\n')),
         r"line=1.*audio_filepath", label="bad-line"),
    Case("speech.build_corpus", lambda: speech.build_corpus(0, 4), "n_train at least 1", label="no-train"),
    Case("speech.build_corpus", lambda: speech.build_corpus(8, 2.5), "n_test as a whole number", label="float"),
    Case("speech.build_corpus", lambda: speech.build_corpus(8, 4, name="a/b"), "file-name stem", label="name"),
    Case("speech.build_corpus", lambda: speech.build_corpus(8, 4, extra_words="cytokinesis"), "Wrap a single word",
         label="lone-word"),
    Case("speech.describe_corpus", lambda: speech.describe_corpus(None), r"speech\.Corpus", label="none"),
    Case("speech.read_librispeech", lambda: speech.read_librispeech(NOWHERE.parent), "existing folder",
         label="missing"),
    Case("speech.read_librispeech", lambda: speech.read_librispeech(HERE.parent), r"trans\.txt files", label="empty",
         error=FileNotFoundError),
    Case("speech.read_librispeech", lambda: speech.read_librispeech(HERE.parent, limit=0), "limit at least 1",
         label="limit"),
    Case("speech.describe_real_speech", lambda: speech.describe_real_speech([]), r"list of speech\.Clip",
         label="empty"),
]

ASR_CASES = [
    Case("asr.settings_for", lambda: asr().settings_for("laptop"), r"one of 'smoke', 'cpu', 'gpu'; got str 'laptop'",
         error=ValueError, label="unknown"),
    Case("asr.settings_for", lambda: asr().settings_for(None), "got NoneType None", label="none"),
    Case("asr.apply_threads", lambda: asr().apply_threads("smoke"), r"asr\.AsrSettings", label="profile-name"),
    Case("asr.apply_threads", lambda: asr().apply_threads(dataclasses.replace(asr().settings_for("smoke"), threads=0)),
         "threads at least 1", label="threads"),
    Case("asr.asr_config", lambda: asr().asr_config(NOWHERE, None), "train_manifest to be an existing file", label="missing-manifest"),
    Case("asr.asr_config", lambda: asr().asr_config(None, None, width=0), "width at least 1", label="width"),
    Case("asr.asr_config", lambda: asr().asr_config(None, None, lr=0.0), r"lr .*0\.0", label="lr"),
    Case("asr.asr_config", lambda: asr().asr_config(None, None, labels="abc"), "distinct single characters",
         label="labels-string"),
    Case("asr.asr_config", lambda: asr().asr_config(None, None, labels=["a", "a"]), "distinct", label="labels-dup"),
    Case("asr.make_trainer", lambda: asr().make_trainer(0), "max_steps at least 1", label="steps"),
    Case("asr.make_trainer", lambda: asr().make_trainer(5, extra_callbacks=[print]), "Lightning callbacks",
         label="callbacks"),
    Case("asr.make_trainer", gpu_trainer_without_gpu, r"use_gpu=False", label="no-gpu"),
    Case("asr.build_model", lambda: asr().build_model({"labels": []}), "DictConfig", label="dict"),
    Case("asr.build_model", lambda: asr().build_model(OmegaConf.create({"labels": []})),
         r"missing keys \['decoder'", label="missing-keys"),
    Case("asr.build_model", lambda: asr().build_model(asr().asr_config(None, None), trainer="cpu"), "Trainer",
         label="trainer"),
    Case("asr.parameter_count", lambda: asr().parameter_count({"w": 1}), r"torch\.nn\.Module", label="dict"),
    Case("asr.train", lambda: asr().train(None, None, None), "EncDecCTCModel", label="none"),
    Case("asr.train", lambda: trainer_without(asr().LossHistory()), "among the trainer's callbacks",
         label="history-not-attached"),
    Case("asr.train", train_without_manifest, "manifest_filepath=None", label="no-manifest"),
    Case("asr.transcribe_with", lambda: asr().transcribe_with(None, [HERE]), "NeMo ASR model", label="no-model"),
    Case("asr.transcribe_with", lambda: asr().transcribe_with(tiny(), "clip.wav"), r"Wrap it in a list",
         label="lone-path"),
    Case("asr.transcribe_with", lambda: asr().transcribe_with(tiny(), []), "non-empty audio_paths", label="empty"),
    Case("asr.transcribe_with", lambda: asr().transcribe_with(tiny(), [NOWHERE]), "not found",
         error=FileNotFoundError, label="missing"),
    Case("asr.transcribe_with", lambda: asr().transcribe_with(tiny(), [HERE], batch_size=0), "batch_size at least 1",
         label="batch"),
    Case("asr.evaluate", lambda: asr().evaluate(tiny(), []), "non-empty clips", label="empty"),
    Case("asr.evaluate", lambda: asr().evaluate(tiny(), [str(HERE)]), r"speech\.Clip", label="paths"),
    Case("asr.restore_pretrained", lambda: asr().restore_pretrained(NOWHERE.with_suffix(".nemo")), "wu.fetch",
         label="missing"),
    Case("asr.restore_pretrained", lambda: asr().restore_pretrained(HERE), "not a readable tar file",
         label="not-a-tar"),
    Case("asr.pretrained_id", lambda: asr().pretrained_id("mini_librispeech_dev_clean_2"), "'huggingface' source",
         label="dataset"),
    Case("asr.pretrained_id", lambda: asr().pretrained_id(4), "data set's name", label="int"),
    Case("asr.write_model_card", lambda: asr().write_model_card(NOWHERE.with_suffix(".nemo"), steps=[1]),
         "strings or numbers", label="list"),
    Case("asr.write_model_card", lambda: asr().write_model_card(3), "artifact as a path", label="int"),
    Case("asr.model_card", lambda: asr().model_card(3), "artifact as a path", label="int"),
    Case("asr.fine_tune", lambda: asr().fine_tune(tiny(), None, asr().settings_for("gpu"), None), r"speech\.Corpus",
         label="corpus"),
    Case("asr.fine_tune", lambda: asr().fine_tune("model", None, None, None), "NeMo ASR model", label="model"),
    Case("asr.save_model", lambda: asr().save_model(None), "save_to", label="none"),
    Case("asr.save_model", lambda: asr().save_model(tiny(), NOWHERE.with_suffix(".pt")), r"ending in \.nemo",
         label="suffix"),
    Case("asr.restore_model", lambda: asr().restore_model(NOWHERE.with_suffix(".nemo")), r"run --labs 04",
         error=FileNotFoundError, label="missing"),
    Case("asr.restore_model", lambda: asr().restore_model(3), "path as a path", label="int"),
    Case("asr.train_lab_notes_asr", lambda: asr().train_lab_notes_asr("laptop"), "got str 'laptop'", label="profile"),
    Case("asr.train_lab_notes_asr", lambda: asr().train_lab_notes_asr("smoke", extra_words="cytokinesis"),
         "Wrap a single word", label="lone-word"),
    Case("asr.ensure_asr_model", lambda: asr().ensure_asr_model("laptop"), "got str 'laptop'", label="profile"),
    Case("asr.transcribe", lambda: asr().transcribe([]), "non-empty audio_paths", label="empty"),
    Case("asr.transcribe", lambda: asr().transcribe([NOWHERE]), "not found", error=FileNotFoundError,
         label="missing"),
    Case("asr.transcribe", lambda: asr().transcribe([HERE], model_path=NOWHERE.with_suffix(".nemo")),
         "run --labs 04", label="no-model"),
]

EXERCISE_CASES = [
    Case("exercises.check", lambda: exercises.check("07-unknown", 1), r"one of '00-matmul-flops'.*07-unknown",
         label="unknown"),
    Case("exercises.check", lambda: exercises.check(4, 1), "exercise id", label="int"),
    Case("exercises.exercise", lambda: exercises.exercise("1-transforms", "Right."), "'01-transforms'",
         error=ValueError, label="bad-id"),
    Case("exercises.exercise", lambda: exercises.exercise("01-x", ""), "confirmation", label="no-confirmation"),
    Case("exercises.lab04.reference_wer", lambda: lab04.reference_wer(None, "well a"), "as strings", label="none"),
    Case("exercises.lab04.reference_wer", lambda: lab04.reference_wer(["well", "a"], "well a"), "as strings",
         label="list"),
]

CASES = SPEECH_CASES + ASR_CASES + EXERCISE_CASES

ANSWER_CHECK = "answer check: returns a hint for a malformed answer (test_answer_checks_hint_on_malformed_answers)"
CALLBACK = "Lightning callback: the trainer calls it with its own data"


def checker_targets() -> dict[str, Any]:
    """'exercises.labNN.function' -> checker, for every registered exercise check."""
    found = {}
    for exercise_id in exercises.known_checks():
        fn = exercises._lookup(exercise_id)[0]
        found[f"{fn.__module__.removeprefix('workshop_utils.')}.{fn.__name__}"] = fn
    return found


EXEMPT = {
    "speech.require_tools": "takes no arguments; test_missing_tools_give_an_actionable_error covers its error",
    "speech.espeak_version": "takes no arguments",
    "speech.Voice.tag": "property of a validated Voice (Voice itself: test_voice_rejects_bad_settings)",
    "speech.Corpus.hours": "property of a finished corpus",
    "asr.quiet_logs": "takes no arguments",
    "asr.interactive": "takes no arguments",
    "asr.LossHistory.__init__": "takes no arguments",
    "asr.LossHistory.on_train_start": CALLBACK,
    "asr.LossHistory.on_train_batch_end": CALLBACK,
    "asr.LossHistory.on_train_end": CALLBACK,
    "asr.Evaluation.rtfx": "property of a finished evaluation",
    "exercises.known_checks": "takes no arguments",
    **{target: ANSWER_CHECK for target in checker_targets()},
}



MALFORMED: dict[str, Any] = {
    "none": None,
    "string": "2147483648",
    "empty-string": "",
    "empty-list": [],
    "empty-tuple": (),
    "empty-array": np.array([]),
    "empty-dict": {},
    "dict-without-keys": {"x": 1},
    "dict-of-nones": {"image": None, "label": None},
    "dict-of-strings": {"image": np.array([["a"]]), "label": np.array([["b"]])},
    "dict-wrong-shape": {"image": np.zeros((2, 3)), "label": np.zeros((2, 3))},
    "dict-empty-image": {"image": np.zeros((1, 0, 0), np.float32), "label": np.zeros((1, 0, 0), np.float32)},
    "dict-nan-image": {"image": np.full((1, 4, 4), np.nan, np.float32), "label": np.zeros((1, 4, 4), np.float32)},
    "wrong-shape": np.zeros((2, 3)),
    "wrong-dtype": np.array(["a", "b"]),
    "one-string-array": np.array(["a"]),
    "nan": float("nan"),
    "numpy-nan": np.float32("nan"),
    "inf": float("inf"),
    "triple": (1, 2, 3),
    "object": object(),
    "pair-of-nones": (None, None),
    "pair-nan-stage": ("asr", {"asr": float("nan")}),
    "pair-list-choice": (["asr"], {"asr": 1.0, "segment": 2.0}),
    "pair-empty-dict": ("asr", {}),
    "function-returning-none": lambda *args: None,
    "function-returning-nan": lambda *args: float("nan"),
    "function-returning-array": lambda *args: np.zeros(3),
    "function-raising": lambda *args: 1 / 0,
    "builtin-type": dict,
}


@pytest.mark.parametrize("answer", list(MALFORMED.values()), ids=list(MALFORMED))
@pytest.mark.parametrize("target", sorted(checker_targets()))
def test_answer_checks_hint_on_malformed_answers(target: str, answer: Any) -> None:
    hint = checker_targets()[target](answer)
    assert isinstance(hint, str) and hint.strip(), f"{target} accepted a malformed answer: {hint!r}"
    assert "expected" in hint, f"{target}: the hint does not say what was expected: {hint!r}"


def test_check_prints_a_hint_for_a_malformed_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check("06-slowest-stage", "asr") is False
    assert "expected a pair" in capsys.readouterr().out


def test_voice_rejects_bad_settings() -> None:
    assert_rejects(Case("speech.Voice", lambda: speech.Voice("en-us", speed_wpm=20), "speed_wpm between 80 and 450"))
    assert_rejects(Case("speech.Voice", lambda: speech.Voice("--stdout"), "espeak-ng voice"))
    assert_rejects(Case("speech.Voice", lambda: speech.Voice("en-us", pitch=120), "pitch between 0 and 99"))


def test_speech_valid_input_still_works(tmp_path: Path) -> None:
    assert speech.number_words(np.int64(42)) == "forty two"
    assert speech.lab_notes(3, seed=np.int64(1)) == speech.lab_notes(3, seed=1)
    assert all(n.endswith("cell cycle") for n in speech.lab_notes(3, extra_words=("cell cycle",)))
    assert speech.lab_note(random.Random(2)) == speech.lab_notes(1, seed=2)[0]
    assert speech.clip_path("well a one", V, str(tmp_path)) == speech.clip_path("well a one", V, tmp_path)
    manifest = speech.write_manifest((CLIP,), tmp_path / "m.json")
    assert speech.read_manifest(str(manifest)) == [CLIP]
    assert {v.tag for v in speech.TRAIN_VOICES + speech.HELDOUT_VOICES}  # every shipped voice validates


@needs_tools
def test_synthesis_and_transcription_accept_what_the_labs_pass(tmp_path: Path) -> None:
    clips = speech.synthesize_clips(("well a one",), speech.HELDOUT_VOICES, tmp_path, workers=np.int64(1))
    assert speech.duration_s(Path(clips[0].audio_filepath)) == pytest.approx(clips[0].duration, abs=1e-3)
    paths = (Path(clips[0].audio_filepath),)  # a tuple of Paths, as the capstone's clips are
    assert len(asr().transcribe_with(tiny(), paths)) == 1
    assert len(asr().evaluate(tiny(), clips).hypotheses) == 1


def test_asr_valid_input_still_works(tmp_path: Path) -> None:
    a = asr()
    manifest = speech.write_manifest([CLIP], tmp_path / "train.json")
    cfg = a.asr_config(manifest, str(manifest), width=np.int64(8), blocks=1, lr=np.float32(1e-3))
    assert cfg.train_ds.manifest_filepath == str(manifest)
    history = a.LossHistory()
    assert history in a.make_trainer(np.int64(3), extra_callbacks=(history,)).callbacks
    assert a.parameter_count(tiny()) > 0
    assert {a.settings_for(p).max_steps > 0 for p in ("smoke", "cpu", "gpu")} == {True}


def test_exercise_checks_accept_right_answers_in_every_form() -> None:
    import torch
    import torch.nn.functional as F

    targets = checker_targets()
    for right in (2 * 1024**3, np.int64(2 * 1024**3), 2.0 * 1024**3, torch.tensor(2.0 * 1024**3, dtype=torch.float64)):
        assert targets["exercises.lab00.matmul_flops"](right) is None, right
    assert targets["exercises.lab02.amdahl"](np.float64(1 / (0.4 + 0.6 / 2.5))) is None
    assert targets["exercises.lab03.ideal_batching"](np.array([800.0])) is None

    class InferInput:  # the three methods of tritonclient's InferInput the check reads
        def name(self) -> str:
            return "image"

        def datatype(self) -> str:
            return "FP32"

        def shape(self) -> list[Any]:
            return [np.int64(4), 1, 64, 64]

    assert targets["exercises.lab03.infer_input"](InferInput()) is None
    assert targets["exercises.lab04.word_error_rate_function"](lab04.reference_wer) is None

    def clip_loss(image_emb: Any, text_emb: Any, temperature: float) -> Any:
        logits = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T / temperature
        target = torch.arange(len(logits))
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

    assert targets["exercises.lab05.infonce"](clip_loss) is None
    assert targets["exercises.lab06.slowest_stage"](("segment", {"asr": np.float64(40.0), "segment": 90.0})) is None
    image = np.random.default_rng(0).uniform(0.05, 0.9, (1, 64, 64)).astype(np.float32)
    image.flat[:10] = 1.0  # the top 0.2%, as the percentile scaling leaves it
    label = (image > 0.5).astype(np.float32)
    prepared = {"image": torch.from_numpy(image), "label": torch.from_numpy(label)}
    assert targets["exercises.lab01.transforms"](prepared) is None
