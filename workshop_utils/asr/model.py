"""The lab-notes speech recogniser as a NeMo model: per-profile settings, and checked calls of lab 04's lesson code.

The config, the model, saving and restoring are lab 04's own functions (``workshop_utils.lessons.lab04``, copied
from the notebook); the wrappers here check their arguments and keep NeMo's output quiet.
"""

from __future__ import annotations

import contextlib
import io
import logging as _pylogging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Trainer
from nemo.collections.asr.models import EncDecCTCModel
from nemo.utils import logging as nemo_logging
from omegaconf import DictConfig

from workshop_utils import speech
from workshop_utils.core import paths
from workshop_utils.core.cpus import fair_cpu_threads
from workshop_utils.core.errors import (
    MissingFileError,
)
from workshop_utils.core.files import atomic_write
from workshop_utils.core.inputs import bad_input, describe, require_file, require_int, require_number, require_path
from workshop_utils.core.profiles import require_profile
from workshop_utils.lessons.lab04 import build_config, build_ctc_model, restore_nemo, save_nemo

ARTIFACT_NAME = "lab_notes_asr.nemo"
MODEL_PATH_FIX = "Leave it out for the lab-04 artifact, or pass wu.artifacts_dir() / 'lab_notes_asr.nemo'."


def quiet_logs() -> None:
    """Keep NeMo and Lightning to warnings and errors (their info lines drown a notebook).

    Sets NeMo's logger and the Lightning loggers to ERROR level for the rest of the process.

    Example:
        >>> wu.asr.quiet_logs()
    """
    nemo_logging.setLevel(nemo_logging.ERROR)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "nv_one_logger"):
        _pylogging.getLogger(name).setLevel(_pylogging.ERROR)


@dataclass(frozen=True)
class AsrSettings:
    """Knobs of one profile: corpus size (clips), training steps, model width (channels) and depth (blocks)."""

    n_train: int
    n_test: int
    max_steps: int
    width: int = 64
    blocks: int = 3
    repeat: int = 2
    spec_augment: bool = False
    batch_size: int = 16
    threads: int | None = None  # torch CPU threads; 1 on a shared 2-core CI box (busy-waiting threads collide)
    lr: float = 1e-2
    pretrained: str | None = None  # the manifest of the pretrained checkpoint to fine-tune; None trains from a config
    n_real: int | None = None  # real utterances (Mini LibriSpeech dev-clean-2) scored; None scores all 1,089
    fine_tune_steps: int = 200
    fine_tune_batch_size: int = 16
    fine_tune_lr: float = 1e-4  # peak; small, to keep what the pretrained model knows


SETTINGS: dict[str, AsrSettings] = {
    # Measured here on one pinned core (as make test runs it), 512 clips of 12: 600 steps at lr 1e-2 gave held-out
    # WER 0.19 in 51 s; 400 steps at 1.5e-2 gave 0.24 in 35 s (0.18 on 2 threads), the capstone's five questions
    # all parsed right; 300 steps gave 0.36 and 200 steps 0.81 (CTC's loss still on its plateau): 400 keeps a margin.
    "smoke": AsrSettings(n_train=512, n_test=48, max_steps=400, batch_size=12, lr=1.5e-2),
    # cpu online: Conformer-CTC small (13M). A stand-in of its size (16 layers, d_model 176) measured here on 2
    # shared cores under load ~6 decoded at RTFx ~1 and trained at ~40 s a step of 16 clips; an idle laptop is a few
    # times faster. So: 100 real utterances (~12 min of speech) scored twice, and 30 steps of 8 clips at a higher
    # peak lr. Offline, the from-config model (max_steps) is trained instead.
    "cpu": AsrSettings(n_train=1024, n_test=96, max_steps=1200, width=96, blocks=4,
                       pretrained="stt_en_conformer_ctc_small", n_real=100, fine_tune_steps=30,
                       fine_tune_batch_size=8, fine_tune_lr=5e-4),
    "gpu": AsrSettings(n_train=4096, n_test=192, max_steps=3000, width=256, blocks=5, batch_size=32,
                       pretrained="parakeet_tdt_ctc_110m", fine_tune_steps=1000, fine_tune_batch_size=32),
}


def settings_for(profile: str) -> AsrSettings:
    """The :class:`AsrSettings` of ``profile`` (smoke, cpu or gpu).

    Args:
        profile: ``"smoke"``, ``"cpu"`` or ``"gpu"``.

    Returns:
        The profile's frozen settings: corpus size, training steps, model width and depth, batch size, lr, threads.

    Example:
        >>> S = wu.asr.settings_for(PROFILE)
    """
    return SETTINGS[require_profile(profile, "settings_for")]


def require_settings(settings: Any, where: str) -> AsrSettings:
    if not isinstance(settings, AsrSettings):
        raise bad_input(where, "settings as an asr.AsrSettings", describe(settings),
                        "Pass asr.settings_for(PROFILE) (or dataclasses.replace of it).")
    return settings


def apply_threads(settings: AsrSettings) -> None:
    """Pin torch's CPU threads: the profile's count, else the cores other processes leave free.

    Calls ``torch.set_num_threads`` with ``settings.threads``, or with :func:`fair_cpu_threads` when that is None.

    Args:
        settings: the profile's :class:`AsrSettings`, from :func:`settings_for`.

    Example:
        >>> wu.asr.apply_threads(S)
    """
    require_settings(settings, "apply_threads")
    if settings.threads is not None:
        require_int(settings.threads, "apply_threads", "settings.threads", minimum=1)
    torch.set_num_threads(settings.threads or fair_cpu_threads())


def asr_config(train_manifest: Path | None, test_manifest: Path | None, *, width: int = 64, blocks: int = 3,
               repeat: int = 2, spec_augment: bool = False,
               batch_size: int = 16, lr: float = 1e-2, max_steps: int = 300, labels: Sequence[str] = speech.LABELS,
               n_mels: int = 64) -> DictConfig:
    """Lab 04's QuartzNet-like character CTC config (the lesson's ``build_config``), with its arguments checked.

    Features are per-feature normalised log-mel frames of 25 ms windows every 20 ms; the optimiser is AdamW with
    a cosine schedule from ``lr`` down to ``lr / 100``.

    Args:
        train_manifest: the training clips' NeMo manifest (JSON lines), or None for a model that is not trained.
        test_manifest: the held-out clips' manifest (the validation set), or None.
        width: channels of the convolution blocks (the last two blocks use twice as many).
        blocks: residual blocks between the first and last convolutions; their kernels widen 11, 13, 15, ...
        repeat: separable convolutions inside each residual block.
        spec_augment: True masks one band of mel bins and one stretch of time per training example.
        batch_size: clips per training and validation batch.
        lr: the peak learning rate.
        max_steps: the planned training steps; only sets the warm-up length (a tenth of them, at least 1).
        labels: the output characters, distinct and one character each (default: space, a-z and ').
        n_mels: mel frequency bands per frame.

    Returns:
        An OmegaConf ``DictConfig`` for ``EncDecCTCModel`` (build it with :func:`build_model`).

    Example:
        >>> cfg = wu.asr.asr_config(corpus.train_manifest, corpus.test_manifest, width=S.width, blocks=S.blocks,
        ...                         repeat=S.repeat, batch_size=S.batch_size, lr=S.lr, max_steps=S.max_steps)
    """
    where = "asr_config"
    for name, manifest in (("train_manifest", train_manifest), ("test_manifest", test_manifest)):
        if manifest is not None:
            require_file(manifest, where, name, "Pass corpus.train_manifest / corpus.test_manifest from "
                         "speech.build_corpus(), or None.")
    width, blocks, repeat = (require_int(v, where, n, minimum=1) for n, v in
                             (("width", width), ("blocks", blocks), ("repeat", repeat)))
    batch_size, max_steps, n_mels = (require_int(v, where, n, minimum=1) for n, v in
                                     (("batch_size", batch_size), ("max_steps", max_steps), ("n_mels", n_mels)))
    lr = require_number(lr, where, "lr", minimum=0.0, strict=True)
    chars = list(labels) if isinstance(labels, Sequence) and not isinstance(labels, str) else []
    if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars) or len(set(chars)) != len(chars):
        raise bad_input(where, "labels as a list of distinct single characters", describe(labels),
                        "Keep the default speech.LABELS (space, a-z and ').")
    return build_config(train_manifest, test_manifest, labels=chars, sample_rate=speech.SAMPLE_RATE_HZ, width=width,
                        blocks=blocks, repeat=repeat, spec_augment=spec_augment, batch_size=batch_size, lr=lr,
                        max_steps=max_steps, n_mels=n_mels)


def build_model(cfg: DictConfig, trainer: Trainer | None = None, seed: int = 0) -> EncDecCTCModel:
    """Lab 04's CTC model from ``cfg`` (the lesson's ``build_ctc_model``), seeded, with NeMo's output silenced.

    Args:
        cfg: the config from :func:`asr_config`.
        trainer: the Lightning trainer that will fit the model (from :func:`make_trainer`), or None.
        seed: the ``torch.manual_seed`` used before the weights are initialised.

    Returns:
        A NeMo ``EncDecCTCModel``.

    Example:
        >>> model = wu.asr.build_model(cfg, trainer, seed=SEED)
    """
    missing = sorted({"preprocessor", "encoder", "decoder", "labels"} - set(cfg)) if isinstance(cfg, DictConfig) else []
    if not isinstance(cfg, DictConfig) or missing:
        raise bad_input("build_model", "cfg as the DictConfig asr.asr_config() returns",
                        f"missing keys {missing}" if missing else describe(cfg), "Build it with asr.asr_config(...).")
    if trainer is not None and not isinstance(trainer, Trainer):
        raise bad_input("build_model", "trainer as None or a Lightning Trainer", describe(trainer),
                        "Pass asr.make_trainer(max_steps, ...).")
    seed = require_int(seed, "build_model", "seed")
    quiet_logs()
    with contextlib.redirect_stdout(io.StringIO()):
        return build_ctc_model(cfg, trainer, seed)


def parameter_count(model: torch.nn.Module) -> int:
    """Trainable parameters.

    Args:
        model: any torch module, e.g. the NeMo model from :func:`build_model`.

    Returns:
        The number of parameters with ``requires_grad`` set.

    Example:
        >>> n_params = wu.asr.parameter_count(model)
    """
    if not isinstance(model, torch.nn.Module):
        raise bad_input("parameter_count", "model as a torch.nn.Module", describe(model),
                        "Pass the model asr.build_model(cfg) returns.")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_model(model: EncDecCTCModel, target: Path | None = None) -> Path:
    """Write ``model`` to a ``.nemo`` archive with the lesson's ``save_nemo`` (default: the lab-04 artifact).

    Args:
        model: a NeMo model (anything with ``save_to``).
        target: the archive's path, ending in ``.nemo``; None means ``build/artifacts/lab_notes_asr.nemo``.

    Returns:
        The path written.

    Example:
        >>> artifact = wu.asr.save_model(model)
    """
    if not callable(getattr(model, "save_to", None)):
        raise bad_input("save_model", "model as a NeMo model (it has save_to)", describe(model),
                        "Pass the model asr.build_model(cfg) or asr.restore_model(path) returns.")
    fix = f"Pass e.g. wu.artifacts_dir() / {ARTIFACT_NAME!r}, or leave it out for that default."
    target = require_path(target, "save_model", "target", fix, default=paths.artifacts_dir() / ARTIFACT_NAME)
    if target.suffix != ".nemo":
        raise bad_input("save_model", "target as a path ending in .nemo", str(target), fix)
    with atomic_write(target) as partial:  # a reader (the capstone) never sees half an archive
        save_nemo(model, partial)
    return target


def restore_model(path: Path | None = None) -> Any:
    """Load a ``.nemo`` archive on the CPU with the lesson's ``restore_nemo`` (default: the lab-04 artifact).

    Args:
        path: the ``.nemo`` archive; None means lab 04's ``build/artifacts/lab_notes_asr.nemo``.

    Returns:
        The restored NeMo ASR model, in eval mode on the CPU.

    Example:
        >>> restored = wu.asr.restore_model(artifact)
    """
    path = require_path(path, "restore_model", "path", MODEL_PATH_FIX, default=paths.artifacts_dir() / ARTIFACT_NAME)
    if not path.is_file():
        raise MissingFileError(f"restore_model: expected a .nemo archive at path={path}; got "
                              f"{'a folder' if path.is_dir() else 'no file'}. It is written by lab 04. Next step: run "
                              "`python -m workshop_utils run --labs 04`, or call wu.asr.ensure_asr_model('smoke').")
    quiet_logs()
    with contextlib.redirect_stdout(io.StringIO()):
        return restore_nemo(path)
