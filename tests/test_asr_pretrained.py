"""Lab 04's pretrained path, offline, end to end: a stand-in ``.nemo`` served by the loopback stand-in hub and a
stand-in LibriSpeech-layout ``.tar.gz`` from the loopback data server; fetch, verify, restore, score, fine-tune a
few steps, score again, record. Then bad input: a corrupt ``.nemo``, a tarball with a member outside its folder,
a transcript line without its audio file -- each a clear error, with nothing half-written in the cache.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nemo.collections.asr")

import soundfile as sf  # noqa: E402
import torch  # noqa: E402

import workshop_utils as wu  # noqa: E402
from workshop_utils import asr, speech  # noqa: E402
from workshop_utils.core.errors import MissingFileError, UnsafeArchiveError, WorkshopError  # noqa: E402
from workshop_utils.core.manifests import Dataset, parse_manifest  # noqa: E402
from workshop_utils.lessons import lab04  # noqa: E402

from .conftest import LoopbackServer, sha256_hex  # noqa: E402
from .test_huggingface_source import COMMIT, REPO, StandInHub  # noqa: E402

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng and sox are not installed (make setup installs them as root)")
NEMO = "stand_in.nemo"
UTTERANCES = ["well a one forty two nuclei", "well b three two cells in metaphase", "well c five normal"]


@pytest.fixture(scope="module")
def stand_in_nemo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny character CTC model from the lab's own config (untrained: this checks the plumbing, not accuracy),
    saved with ``save_to``: the 'pretrained' weights."""
    folder = tmp_path_factory.mktemp("stand-in")
    model = asr.build_model(asr.asr_config(None, None, width=16, blocks=1), seed=0)
    return asr.save_model(model, folder / NEMO).read_bytes()


def librispeech_tar(root: Path, lines: list[str], extra: dict[str, bytes] | None = None,
                    skip_audio: int | None = None) -> bytes:
    """A LibriSpeech-layout ``.tar.gz``: FLAC files (spoken by espeak-ng) and one ``*.trans.txt`` of capitals."""
    chapter = root / "LibriSpeech" / "dev-clean-2" / "84" / "121123"
    chapter.mkdir(parents=True)
    transcript = []
    for number, text in enumerate(lines):
        utterance = f"84-121123-{number:04d}"
        wav = speech.synthesize(text, speech.HELDOUT_VOICES[number % len(speech.HELDOUT_VOICES)],
                                root / f"{utterance}.wav")
        audio, rate = sf.read(str(wav), dtype="float32")
        if number != skip_audio:
            sf.write(str(chapter / f"{utterance}.flac"), audio, rate, format="FLAC")
        transcript.append(f"{utterance} {text.upper()}")
    (chapter / "84-121123.trans.txt").write_text("\n".join(transcript) + "\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tarred:
        tarred.add(root / "LibriSpeech", arcname="LibriSpeech")
        for name, body in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tarred.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def model_manifest() -> Dataset:
    return parse_manifest({"name": "stand_in_asr", "kind": "model", "description": "d", "licence": "CC BY 4.0",
                           "citation": "c", "used_by": [4], "files": [
                               {"name": NEMO, "huggingface": {"repo": REPO, "file": NEMO, "revision": "main"}}]})


def speech_manifest(url: str, body: bytes) -> Dataset:
    return parse_manifest({"name": "stand_in_librispeech", "description": "d", "licence": "CC BY 4.0",
                           "citation": "c", "used_by": [4], "files": [
                               {"name": "dev-clean-2.tar.gz", "url": url, "sha256": sha256_hex(body),
                                "size": len(body), "extract": "tar.gz"}]})


@pytest.fixture
def hub(isolated_dirs: Path, loopback_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> StandInHub:
    monkeypatch.setenv("HF_ENDPOINT", loopback_server.url(""))
    monkeypatch.setenv("HF_HOME", str(isolated_dirs / "hf-home"))
    return StandInHub(loopback_server)


def leftovers(cache: Path) -> list[str]:
    """Staging, partial and temporary names anywhere in the cache."""
    return sorted(p.name for p in cache.rglob("*") if p.name.endswith((".hub", ".part", ".partial"))
                  or ".partial." in p.name)


def test_the_pretrained_path_runs_end_to_end_offline(hub: StandInHub, isolated_dirs: Path, stand_in_nemo: bytes,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    hub.branch("main", COMMIT)
    hub.file(COMMIT, stand_in_nemo, name=NEMO)
    tar = librispeech_tar(isolated_dirs / "src", UTTERANCES)
    model_ds = model_manifest()
    speech_ds = speech_manifest(hub.server.add("/resources/31/dev-clean-2.tar.gz", tar), tar)
    lab = wu.start_lab("04_nemo_lab_notes_asr", "smoke")
    # The lab's online path, with the same functions: fetch (verified), restore, score, fine-tune, score again.
    checkpoint, real_speech = wu.try_fetch(model_ds), wu.try_fetch(speech_ds)
    assert checkpoint is not None and real_speech is not None and capsys.readouterr().out.count("synthetic") == 0
    pretrained = asr.restore_pretrained(checkpoint)
    pretrained_model = asr.pretrained_id(model_ds)
    assert pretrained_model == f"{REPO}@{COMMIT}", "the branch is resolved and recorded at the first fetch"
    real = speech.read_librispeech(real_speech, limit=2)
    assert [c.text for c in real] == UTTERANCES[:2] and {c.voice for c in real} == {"84"}
    assert all(lab04.normalize_text(c.text) == c.text for c in real), "references normalised as the WER does"
    corpus = speech.build_corpus(12, 3, seed=1, name="standin")
    real_before, notes_before = asr.evaluate(pretrained, real), asr.evaluate(pretrained, corpus.test)
    settings = dataclasses.replace(asr.settings_for("smoke"), fine_tune_batch_size=4, fine_tune_steps=4)
    history = asr.LossHistory()
    trainer = asr.make_trainer(settings.fine_tune_steps, extra_callbacks=[history])
    weights = {k: v.clone() for k, v in pretrained.state_dict().items()}
    asr.fine_tune(pretrained, corpus, settings, trainer)
    assert len(history.losses) == settings.fine_tune_steps and all(math.isfinite(x) for x in history.losses)
    assert any(not torch.equal(weights[k], v) for k, v in pretrained.state_dict().items()), "fine-tuning moved nothing"
    real_after, notes_after = asr.evaluate(pretrained, real), asr.evaluate(pretrained, corpus.test)
    figures = {"wer_real_speech_before": real_before.wer, "wer_real_speech_after": real_after.wer,
               "wer_labnotes_before": notes_before.wer, "wer_heldout": notes_after.wer,
               "rtfx_pretrained": real_before.rtfx}
    lab.record(pretrained_model=pretrained_model, **figures)
    artifact = asr.save_model(pretrained)
    asr.write_model_card(artifact, pretrained_model=pretrained_model, fine_tune_steps=settings.fine_tune_steps)
    assert asr.model_card()["pretrained_model"] == pretrained_model, "the capstone's artifact says what it is"
    assert asr.transcribe([real[0].audio_filepath]) == [real_after.hypotheses[0]]
    results = json.loads(lab.finish().read_text())
    metrics: dict[str, Any] = results["metrics"]
    print("stand-in pretrained run:", {k: metrics[k] for k in ("pretrained_model", *figures)})
    assert metrics["pretrained_model"] == pretrained_model
    assert all(math.isfinite(metrics[k]) and metrics[k] >= 0 for k in figures), metrics
    assert metrics["rtfx_pretrained"] > 0
    assert not leftovers(isolated_dirs / "cache")


def test_a_character_model_grows_its_alphabet_with_change_vocabulary(isolated_dirs: Path) -> None:
    corpus = speech.build_corpus(4, 1, seed=2, name="vocab")
    used = sorted(set("".join(c.text for c in corpus.train)))
    kept = [c for c in speech.LABELS if c not in used[-3:]]  # an alphabet without the corpus's last three letters
    model = asr.build_model(asr.asr_config(None, None, width=16, blocks=1, labels=kept), seed=0)
    settings = dataclasses.replace(asr.settings_for("smoke"), fine_tune_batch_size=2, fine_tune_steps=1)
    asr.fine_tune(model, corpus, settings, asr.make_trainer(1))
    assert set(used) <= set(model.decoder.vocabulary) and list(model.decoder.vocabulary)[: len(kept)] == kept


@pytest.mark.parametrize("body", [b"not a tar archive " * 1000, "no-config"], ids=["not-a-tar", "no-config"])
def test_a_corrupt_nemo_that_passes_its_recorded_hash_is_a_clear_error(hub: StandInHub, isolated_dirs: Path,
                                                                       body: bytes | str) -> None:
    if body == "no-config":  # a real tar, but not a NeMo archive
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tarred:
            info = tarfile.TarInfo("model_weights.ckpt")
            info.size = 4
            tarred.addfile(info, io.BytesIO(b"junk"))
        body = buffer.getvalue()
    assert isinstance(body, bytes)
    hub.branch("main", COMMIT)
    hub.file(COMMIT, body, name=NEMO)
    checkpoint = wu.fetch(model_manifest(), progress=False)  # the hub's hash is the corrupt file's: it verifies
    with pytest.raises(WorkshopError, match=r"restore_pretrained: expected a \.nemo archive.*Next step: delete"):
        asr.restore_pretrained(checkpoint)
    assert not leftovers(isolated_dirs / "cache")


def test_a_tarball_with_a_member_outside_its_folder_is_refused(isolated_dirs: Path,
                                                               loopback_server: LoopbackServer) -> None:
    tar = librispeech_tar(isolated_dirs / "src", UTTERANCES[:1], extra={"../outside.flac": b"x" * 10})
    ds = speech_manifest(loopback_server.add("/evil.tar.gz", tar), tar)
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./outside\.flac'.*refusing"):
        wu.fetch(ds, progress=False)
    folder = isolated_dirs / "cache" / ds.name
    assert not (folder / "dev-clean-2").exists() and not leftovers(isolated_dirs / "cache")
    assert not (isolated_dirs / "cache" / "outside.flac").exists()


def test_a_transcript_line_without_its_audio_is_a_clear_error(isolated_dirs: Path,
                                                              loopback_server: LoopbackServer) -> None:
    tar = librispeech_tar(isolated_dirs / "src", UTTERANCES[:2], skip_audio=1)
    folder = wu.fetch(speech_manifest(loopback_server.add("/short.tar.gz", tar), tar), progress=False)
    with pytest.raises(MissingFileError, match=r"line 2 of .*84-121123\.trans\.txt \(84-121123-0001\) with no "
                                               r"84-121123-0001\.flac.*Next step"):
        speech.read_librispeech(folder)
    assert not leftovers(isolated_dirs / "cache")
