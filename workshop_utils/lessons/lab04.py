"""Lab 04's lesson code, copied by ``make export`` from notebooks/04_nemo_lab_notes_asr.ipynb.

Do not edit: change the notebook's ``#| export`` cells and run ``make export``; tests/test_lessons.py
fails while this file and the notebook differ.
"""
# ruff: noqa: E402, I001  (each cell brings its own imports, where the notebook shows them)

from __future__ import annotations


import re
from collections.abc import Sequence
from pathlib import Path

import torch
from nemo.collections.asr.metrics.wer import word_error_rate
from nemo.collections.asr.models import ASRModel


def normalize_text(text: str) -> str:
    """Lower case, every character but a-z, 0-9 and the apostrophe turned into a space, runs of spaces collapsed."""
    return " ".join(re.sub(r"[^a-z0-9']+", " ", text.lower()).split())


def transcribe_files(model: ASRModel, audio_paths: Sequence[str | Path], batch_size: int = 16) -> list[str]:
    """Transcripts of 16 kHz mono audio files (WAV or FLAC), one per file, in order, normalised."""
    model.eval()  # inference behaviour: no dropout, no dither
    with torch.inference_mode():  # no autograd bookkeeping while decoding
        hypotheses = model.transcribe(audio=[str(p) for p in audio_paths], batch_size=batch_size, verbose=False)
    if isinstance(hypotheses, tuple):  # a transducer (TDT/RNNT) model returns (best, all) hypotheses
        hypotheses = hypotheses[0]
    return [normalize_text(getattr(h, "text", h)) for h in hypotheses]  # each Hypothesis's text, normalised


def error_rates(hypotheses: list[str], references: list[str]) -> tuple[float, float]:
    """Word and character error rates (0-1) of ``hypotheses`` against ``references``, as NeMo computes them."""
    hypotheses, references = [normalize_text(h) for h in hypotheses], [normalize_text(r) for r in references]
    wer = word_error_rate(hypotheses=hypotheses, references=references)
    cer = word_error_rate(hypotheses=hypotheses, references=references, use_cer=True)
    return wer, cer


from typing import Any

from omegaconf import DictConfig, OmegaConf


def build_config(train_manifest: Path | None, test_manifest: Path | None, *, labels: Sequence[str],
                 sample_rate: int = 16_000, width: int = 64, blocks: int = 3, repeat: int = 2,
                 spec_augment: bool = False, batch_size: int = 16, lr: float = 1e-2, max_steps: int = 300,
                 n_mels: int = 64) -> DictConfig:
    """The OmegaConf config of a QuartzNet-like character CTC model: data, preprocessor, encoder, decoder, optimiser.

    ``width`` channels per block (the last two have twice as many), ``blocks`` residual blocks of ``repeat`` convs."""

    def conv_block(filters: int, kernel: int, *, residual: bool = True, repeat: int = 2) -> dict[str, Any]:
        # One encoder block: `repeat` separable 1-D convolutions with `filters` channels, `kernel` frames wide.
        return {"filters": filters, "repeat": repeat, "kernel": [kernel], "stride": [1],
                "dilation": [1], "dropout": 0.0, "residual": residual, "separable": True}

    dataset = {"sample_rate": sample_rate, "labels": list(labels), "batch_size": batch_size,
               "num_workers": 0, "pin_memory": False,  # load clips in the training process, nothing to pin
               "trim_silence": False, "max_duration": 20.0}  # keep the clips whole; skip any longer than 20 s
    augment = {"_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
               "freq_masks": 1, "time_masks": 1, "freq_width": 8, "time_width": 0.05}  # one band, one 5% stretch
    encoder_blocks = [conv_block(width, 11, residual=False, repeat=1)]  # the first convolution
    encoder_blocks += [conv_block(width, 11 + 2 * i, repeat=repeat) for i in range(blocks)]  # kernels 11, 13, ...
    encoder_blocks += [conv_block(2 * width, 21, residual=False, repeat=1),  # a wide look at the context
                       conv_block(2 * width, 1, residual=False, repeat=1)]  # a 1x1 that mixes the channels
    cfg = {
        "sample_rate": sample_rate,
        "labels": list(labels),  # the characters the model writes; CTC adds the blank
        "train_ds": {**dataset, "manifest_filepath": str(train_manifest) if train_manifest else None, "shuffle": True},
        "validation_ds": {**dataset, "manifest_filepath": str(test_manifest) if test_manifest else None,
                          "shuffle": False},
        "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                         "sample_rate": sample_rate, "normalize": "per_feature",  # zero mean, unit variance per band
                         "window_size": 0.025, "window_stride": 0.02,  # 25 ms windows every 20 ms
                         "window": "hann", "features": n_mels, "n_fft": 512,  # n_mels bands from a 512-point FFT
                         "dither": 1e-5, "pad_to": 16},  # a little noise in training; frames padded to a multiple of 16
        "spec_augment": augment if spec_augment else None,
        "encoder": {"_target_": "nemo.collections.asr.modules.ConvASREncoder", "feat_in": n_mels,
                    "activation": "relu", "conv_mask": True,  # padding frames are masked out of every convolution
                    "jasper": encoder_blocks},
        "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": 2 * width,
                    "num_classes": len(labels), "vocabulary": list(labels)},  # one score per label (+ blank)
        "optim": {"name": "adamw", "lr": lr, "betas": [0.9, 0.98], "weight_decay": 1e-3,
                  "sched": {"name": "CosineAnnealing", "warmup_steps": max(1, max_steps // 10),  # a tenth warm-up
                            "min_lr": lr / 100}},  # then a cosine decay from lr to lr / 100
    }
    return OmegaConf.create(cfg)


import time

import lightning
from nemo.collections.asr.models import EncDecCTCModel


class LossHistory(lightning.Callback):
    """A Lightning callback: the training loss of every step (``losses``), and ``train_s`` / ``train_cpu_s``.

    Example:
        >>> history = LossHistory()
    """

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.started = self.started_cpu = 0.0
        self.train_s = self.train_cpu_s = 0.0

    def on_train_start(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        self.started, self.started_cpu = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))

    def on_train_end(self, trainer: lightning.Trainer, pl_module: Any) -> None:
        self.train_s = time.perf_counter() - self.started  # wall-clock seconds
        self.train_cpu_s = time.process_time() - self.started_cpu  # CPU seconds of this process


def build_trainer(max_steps: int, *, use_gpu: bool = False, callbacks: Sequence[lightning.Callback] = (),
                  progress_bar: bool = False, root_dir: Path = Path("build/lightning")) -> lightning.Trainer:
    """A Lightning Trainer for ``max_steps`` optimiser steps on the CPU (fp32) or one GPU (bf16 mixed precision)."""
    return lightning.Trainer(
        max_steps=max_steps,  # stop after this many optimiser steps...
        max_epochs=-1,  # ...however many passes over the data that takes
        accelerator="gpu" if use_gpu else "cpu",
        devices=1,  # one GPU, or one CPU process
        precision="bf16-mixed" if use_gpu else "32-true",
        logger=False,  # no TensorBoard or CSV logs
        enable_checkpointing=False,  # no checkpoint files: the lesson saves a .nemo itself
        limit_val_batches=0,  # no validation during training...
        num_sanity_val_steps=0,  # ...and no validation dry run before it
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        log_every_n_steps=50,
        callbacks=list(callbacks),
        default_root_dir=str(root_dir),
    )


def build_ctc_model(cfg: DictConfig, trainer: lightning.Trainer | None = None, seed: int = 0) -> EncDecCTCModel:
    """The CTC model ``cfg`` describes, its weights drawn from ``seed``, its data and optimiser set up for ``trainer``."""
    torch.manual_seed(seed)  # the same seed, the same initial weights
    return EncDecCTCModel(cfg=cfg, trainer=trainer)


import json


def fit_model(model: EncDecCTCModel, trainer: lightning.Trainer, seed: int = 0) -> EncDecCTCModel:
    """Train ``model`` on its ``train_ds`` manifest with ``trainer``; the shuffling and dither follow ``seed``."""
    torch.manual_seed(seed)
    model.set_trainer(trainer)  # the trainer whose steps, device and callbacks apply
    trainer.fit(model)  # batches, CTC loss, backward, optimiser and schedule, max_steps times
    return model


def fine_tune_model(model: ASRModel, trainer: lightning.Trainer, train_manifest: Path, *, sample_rate: int = 16_000,
                    batch_size: int = 32, max_steps: int = 3000, lr: float = 1e-4, num_workers: int = 0) -> ASRModel:
    """Fine-tune a pretrained NeMo model on ``train_manifest``: AdamW at peak ``lr``, a cosine schedule over ``max_steps``."""
    data: dict[str, Any] = {"manifest_filepath": str(train_manifest), "sample_rate": sample_rate,
                            "batch_size": batch_size, "shuffle": True, "num_workers": num_workers,
                            "pin_memory": num_workers > 0, "max_duration": 20.0, "trim_silence": False}
    if not hasattr(model, "tokenizer"):  # a character model: its alphabet must cover every character of the notes
        texts = [json.loads(line)["text"] for line in Path(train_manifest).read_text().splitlines() if line.strip()]
        missing = sorted(set("".join(texts)) - set(model.decoder.vocabulary))
        if missing:  # a new output layer with the grown alphabet (the encoder keeps what it learnt)
            model.change_vocabulary(new_vocabulary=list(model.decoder.vocabulary) + missing)
        data["labels"] = list(model.decoder.vocabulary)
    model.setup_training_data(OmegaConf.create(data))  # a BPE model's tokenizer encodes the transcripts
    model.setup_optimization(OmegaConf.create({
        "name": "adamw", "lr": lr, "weight_decay": 1e-3,  # small steps: keep what the model already knows
        "sched": {"name": "CosineAnnealing", "warmup_steps": max(1, max_steps // 10), "min_lr": lr / 100,
                  "max_steps": max_steps}}))
    model.set_trainer(trainer)
    trainer.fit(model)
    return model


def save_nemo(model: ASRModel, target: Path) -> Path:
    """Pack ``model``'s config, weights and vocabulary into one ``.nemo`` archive at ``target``; returns ``target``."""
    model.save_to(save_path=str(target))  # a tar file: model_config.yaml and model_weights.ckpt
    return Path(target)


def restore_nemo(path: Path) -> ASRModel:
    """The model saved in the ``.nemo`` archive at ``path``, on the CPU and in eval mode."""
    model = ASRModel.restore_from(restore_path=str(path), map_location=torch.device("cpu"))
    return model.eval()
