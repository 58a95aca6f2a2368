"""Lab 04's NeMo plumbing on a tiny untrained model: config, forward shapes, save/restore, clear errors.

The package checks arguments and calls the lesson's own functions (``workshop_utils.lessons.lab04``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("nemo.collections.asr")

import torch  # noqa: E402

from workshop_utils import asr, speech  # noqa: E402
from workshop_utils.lessons import lab04  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model() -> asr.EncDecCTCModel:
    return asr.build_model(asr.asr_config(None, None, width=16, blocks=1), seed=0)


def test_config_builds_a_small_char_ctc_model(tiny_model: asr.EncDecCTCModel) -> None:
    assert 1_000 < asr.parameter_count(tiny_model) < 50_000
    signal = torch.randn(2, speech.SAMPLE_RATE_HZ)
    log_probs, lengths, _ = tiny_model.forward(input_signal=signal, input_signal_length=torch.tensor([16_000, 8_000]))
    assert log_probs.shape[-1] == len(speech.LABELS) + 1  # characters + CTC blank
    assert 45 <= int(lengths[0]) <= 60  # 20 ms frames, no stride: ~50 per second
    assert int(lengths[1]) < int(lengths[0])


def test_the_package_config_is_the_lessons_config() -> None:
    cfg = asr.asr_config(None, None, width=16, blocks=1, max_steps=50)
    lesson = lab04.build_config(None, None, labels=speech.LABELS, sample_rate=speech.SAMPLE_RATE_HZ, width=16,
                                blocks=1, max_steps=50)
    assert cfg == lesson and cfg.optim.sched.warmup_steps == 5
    assert [b.kernel[0] for b in cfg.encoder.jasper] == [11, 11, 21, 1]


def test_the_trainer_writes_no_logs_or_checkpoints_and_keeps_the_loss_history() -> None:
    history = asr.LossHistory()
    assert isinstance(history, lab04.LossHistory)
    trainer = asr.make_trainer(7, extra_callbacks=[history])
    assert trainer.max_steps == 7 and trainer.logger is None and trainer.checkpoint_callback is None
    assert history in trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning at runtime


def test_error_rates_are_nemos_word_and_character_rates() -> None:
    assert lab04.error_rates(["well a one"], ["well a two"]) == pytest.approx((1 / 3, 3 / 10))


def test_smoke_model_is_larger_than_tiny_and_settings_are_known() -> None:
    s = asr.settings_for("smoke")
    assert s.max_steps > 0 and s.n_train > s.n_test
    with pytest.raises(ValueError, match="got str 'laptop'"):
        asr.settings_for("laptop")


def test_transcribe_reports_missing_files(tiny_model: asr.EncDecCTCModel, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        asr.transcribe_with(tiny_model, [tmp_path / "nope.wav"])


def test_restore_of_missing_artifact_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run --labs 04"):
        asr.restore_model(tmp_path / "missing.nemo")


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng/sox missing")
def test_save_restore_roundtrip_gives_same_transcripts(tiny_model: asr.EncDecCTCModel, tmp_path: Path) -> None:
    clip = speech.synthesize("well a one mitosis", speech.TRAIN_VOICES[0], tmp_path / "clip.wav")
    saved = asr.save_model(tiny_model, tmp_path / "tiny.nemo")
    assert saved.is_file() and not list(tmp_path.glob("*.partial.nemo"))
    restored = asr.restore_model(saved)
    assert asr.transcribe_with(restored, [clip]) == asr.transcribe_with(tiny_model, [clip])
    assert asr.transcribe([clip], model_path=saved) == asr.transcribe_with(restored, [clip])
