"""Train and fine-tune the recogniser with Lightning, and rebuild the artifact, through lab 04's lesson code.

The loss history, the trainer, training and fine-tuning are lab 04's own functions (``workshop_utils.lessons.lab04``,
copied from the notebook); the wrappers here check their arguments.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch import Callback, Trainer
from nemo.collections.asr.models import EncDecCTCModel

from workshop_utils import speech
from workshop_utils.asr.inference import evaluate, require_asr_model
from workshop_utils.asr.model import (
    ARTIFACT_NAME,
    AsrSettings,
    apply_threads,
    asr_config,
    build_model,
    quiet_logs,
    require_settings,
    save_model,
    settings_for,
)
from workshop_utils.core import paths
from workshop_utils.core.errors import (
    HardwareRequirementError,
    WorkshopError,
)
from workshop_utils.core.files import ensure_artifact
from workshop_utils.core.inputs import bad_input, describe, require_int
from workshop_utils.core.profiles import torch_device
from workshop_utils.lessons.lab04 import LossHistory, build_trainer, fine_tune_model, fit_model


def interactive() -> bool:
    """True in a live terminal or notebook, False under papermill/CI (keeps progress bars out of logs).

    Returns:
        Whether a progress bar would be seen: False when ``TQDM_DISABLE``, ``CI`` or ``PAPERMILL_EXECUTION`` is set.

    Example:
        >>> trainer = build_trainer(S.max_steps, progress_bar=wu.asr.interactive(), root_dir=wu.build_dir() / "lightning")
    """
    if os.environ.get("TQDM_DISABLE") or os.environ.get("CI") or os.environ.get("PAPERMILL_EXECUTION"):
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def make_trainer(max_steps: int, *, use_gpu: bool = False, extra_callbacks: Sequence[Callback] = ()) -> Trainer:
    """Lab 04's Lightning Trainer (the lesson's ``build_trainer``): nothing written outside ``build/``.

    Validation is off and the progress bar shows only in a live notebook or terminal. On the GPU it trains in
    bf16 mixed precision, on the CPU in fp32.

    Args:
        max_steps: optimiser steps to train for (epochs are unlimited).
        use_gpu: True trains on one CUDA GPU (an error when none is usable); False trains on the CPU.
        extra_callbacks: Lightning callbacks to add, e.g. ``[LossHistory()]``.

    Returns:
        A configured ``lightning.pytorch.Trainer``.

    Example:
        >>> trainer = wu.asr.make_trainer(S.max_steps, use_gpu=on_gpu, extra_callbacks=[history])
    """
    max_steps = require_int(max_steps, "make_trainer", "max_steps", minimum=1)
    callbacks = list(extra_callbacks) if isinstance(extra_callbacks, (list, tuple)) else [None]
    if not all(isinstance(c, Callback) for c in callbacks):
        raise bad_input("make_trainer", "extra_callbacks as a list of Lightning callbacks",
                        describe(extra_callbacks),
                        "Pass e.g. extra_callbacks=[asr.LossHistory()].")
    if use_gpu and not torch.cuda.is_available():
        raise HardwareRequirementError("make_trainer: expected a CUDA GPU for use_gpu=True; got "
                                       "torch.cuda.is_available()=False. Pass use_gpu=False (train on the CPU).")
    root = paths.build_dir() / "lightning"
    root.mkdir(parents=True, exist_ok=True)
    return build_trainer(max_steps, use_gpu=use_gpu, callbacks=cast("list[Callback]", callbacks),  # checked above
                         progress_bar=interactive(), root_dir=root)


def train(model: EncDecCTCModel, trainer: Trainer, history: LossHistory) -> LossHistory:
    """Fit ``model`` with ``trainer`` (the lesson's ``fit_model``, on its ``train_ds`` manifest); returns the history.

    Args:
        model: the NeMo CTC model from :func:`build_model`, whose config names an existing training manifest.
        trainer: the Lightning trainer from :func:`make_trainer`; ``history`` must be among its callbacks.
        history: the :class:`LossHistory` that records the losses.

    Returns:
        ``history``, now holding one loss per step and the training time.

    Example:
        >>> wu.asr.train(model, trainer, history)
    """
    where = "train"
    if not isinstance(model, EncDecCTCModel):
        raise bad_input(where, "model as a NeMo EncDecCTCModel", describe(model), "Pass asr.build_model(cfg, trainer).")
    if not isinstance(trainer, Trainer) or not isinstance(history, LossHistory):
        raise bad_input(where, "a Lightning Trainer and an asr.LossHistory",
                        f"{describe(trainer)}, {describe(history)}",
                        "history = asr.LossHistory(); trainer = asr.make_trainer(steps, extra_callbacks=[history]).")
    if history not in trainer.callbacks:  # type: ignore[attr-defined]  # Lightning sets Trainer.callbacks at runtime but does not declare it
        raise bad_input(where, "history among the trainer's callbacks", "a LossHistory the trainer does not call",
                        "Build the trainer with asr.make_trainer(steps, extra_callbacks=[history]).")
    manifest = model.cfg.get("train_ds", {}).get("manifest_filepath")
    if not manifest or not Path(str(manifest)).is_file():
        raise bad_input(where, "a model whose cfg.train_ds.manifest_filepath is an existing manifest",
                        f"manifest_filepath={manifest!r}", "Build the config with "
                        "asr.asr_config(corpus.train_manifest, corpus.test_manifest, ...).")
    quiet_logs()
    fit_model(model, trainer, seed=0)
    if not history.losses:
        raise WorkshopError("Training ran no steps (losses=[]). Likely cause: an empty train manifest. "
                            f"Next step: check {model.cfg.train_ds.manifest_filepath} has lines.")
    return history


def fine_tune(model: Any, corpus: speech.Corpus, settings: AsrSettings, trainer: Trainer) -> Any:
    """Fine-tune a pretrained NeMo model on the corpus with ``trainer`` (the lesson's ``fine_tune_model``).

    Uses AdamW at ``settings.fine_tune_lr`` with a cosine schedule over ``settings.fine_tune_steps`` (a tenth of them
    warm-up) and batches of ``settings.fine_tune_batch_size``; a
    character model whose alphabet lacks a character of the corpus grows it with ``change_vocabulary`` first.

    Args:
        model: a pretrained NeMo ASR model, e.g. from :func:`restore_pretrained`.
        corpus: the :class:`speech.Corpus` whose training manifest it learns from.
        settings: the profile's :class:`AsrSettings` (``fine_tune_steps``, ``fine_tune_batch_size``, ``fine_tune_lr``).
        trainer: the Lightning trainer from :func:`make_trainer`, built for ``settings.fine_tune_steps``.

    Returns:
        ``model``, fine-tuned in place.

    Example:
        >>> wu.asr.fine_tune(pretrained, corpus, S, trainer)
    """
    require_asr_model(model, "fine_tune")
    if not isinstance(corpus, speech.Corpus):
        raise bad_input("fine_tune", "corpus as a speech.Corpus", describe(corpus),
                        "Pass what speech.build_corpus(n_train, n_test) returns.")
    settings = require_settings(settings, "fine_tune")
    require_int(settings.fine_tune_steps, "fine_tune", "settings.fine_tune_steps", minimum=1)
    if not isinstance(trainer, Trainer):
        raise bad_input("fine_tune", "trainer as a Lightning Trainer", describe(trainer),
                        "Pass asr.make_trainer(settings.fine_tune_steps, use_gpu=...).")
    quiet_logs()
    on_gpu = next(model.parameters()).is_cuda
    return fine_tune_model(model, trainer, corpus.train_manifest, sample_rate=speech.SAMPLE_RATE_HZ,
                           batch_size=settings.fine_tune_batch_size, max_steps=settings.fine_tune_steps,
                           lr=settings.fine_tune_lr, num_workers=4 if on_gpu else 0)


def train_lab_notes_asr(profile: str, *, seed: int = 0, extra_words: Sequence[str] = ()) -> dict[str, Any]:
    """Corpus -> config -> Lightning training -> held-out WER, from scratch; what lab 04 does step by step."""
    s = settings_for(profile)
    corpus = speech.build_corpus(s.n_train, s.n_test, seed=seed, extra_words=extra_words)  # checks seed and words
    apply_threads(s)
    cfg = asr_config(corpus.train_manifest, corpus.test_manifest, width=s.width, blocks=s.blocks, repeat=s.repeat,
                     spec_augment=s.spec_augment, batch_size=s.batch_size, lr=s.lr, max_steps=s.max_steps)
    history = LossHistory()
    trainer = make_trainer(s.max_steps, use_gpu=torch_device(profile).type == "cuda",
                           extra_callbacks=[history])
    model = build_model(cfg, trainer, seed=seed)
    train(model, trainer, history)
    return {"model": model.cpu(), "history": history, "corpus": corpus, "evaluation": evaluate(model, corpus.test)}


def ensure_asr_model(profile: str = "smoke") -> Path:
    """The lab-04 artifact, trained now with the lesson's own functions if it is missing; returns its path.

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``: the settings (and device) used if the model must be trained.

    Returns:
        The path of ``build/artifacts/lab_notes_asr.nemo``.

    Example:
        >>> wu.asr.ensure_asr_model(PROFILE)
    """
    settings_for(profile)  # an unknown profile is an error even when the artifact exists

    def build(target: Path) -> None:
        save_model(train_lab_notes_asr(profile)["model"], target)

    return ensure_artifact(paths.artifacts_dir() / ARTIFACT_NAME, build, what="speech model")
