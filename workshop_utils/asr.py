"""A small NeMo CTC speech recogniser for spoken lab notes: config, Lightning training, WER, .nemo save/restore.

``transcribe(paths)`` is what the capstone calls; ``ensure_asr_model(profile)`` rebuilds the artifact through the
same code path as lab 04 when it is missing. Importing this module imports NeMo (~10 s), so it is exposed lazily.
"""

from __future__ import annotations

import contextlib
import io
import logging as _pylogging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub in CI: from_pretrained must fail fast, not hang
os.environ.setdefault("NEMO_TESTING", "0")
# Two harmless notices that would otherwise land in every executed notebook.
warnings.filterwarnings("ignore", message="IProgress not found")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
        warnings.catch_warnings():  # telemetry banners, tqdm's "IProgress not found"
    warnings.simplefilter("ignore")
    import torch
    from lightning.pytorch import Callback, Trainer
    from nemo.collections.asr.metrics.wer import word_error_rate
    from nemo.collections.asr.models import ASRModel, EncDecCTCModel
    from nemo.utils import logging as nemo_logging
from omegaconf import DictConfig, OmegaConf

from . import hardware, paths, speech
from .errors import WorkshopError

ARTIFACT_NAME = "lab_notes_asr.nemo"
PRETRAINED_NAME = "nvidia/stt_en_fastconformer_ctc_large"  # gpu profile: fine-tuned when the hub is reachable


def quiet_logs() -> None:
    """Keep NeMo and Lightning to warnings and errors (their info lines drown a notebook)."""
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
    fine_tune_pretrained: bool = False


SETTINGS: dict[str, AsrSettings] = {
    # Measured here (2 idle cores): 300 steps on 256 clips gave held-out WER 0.45 on the grammar with the capstone's
    # questions; 600 steps on 512 clips gave 0.17 in 49 s.
    "smoke": AsrSettings(n_train=512, n_test=48, max_steps=600, batch_size=12),
    "cpu": AsrSettings(n_train=1024, n_test=96, max_steps=1200, width=96, blocks=4),
    "gpu": AsrSettings(n_train=4096, n_test=192, max_steps=3000, width=256, blocks=5, batch_size=32,
                       fine_tune_pretrained=True),
}


def settings_for(profile: str) -> AsrSettings:
    """The :class:`AsrSettings` of ``profile`` (smoke, cpu or gpu)."""
    if profile not in SETTINGS:
        raise ValueError(f"No ASR settings for profile={profile!r}; expected one of {', '.join(SETTINGS)}.")
    return SETTINGS[profile]


def apply_threads(settings: AsrSettings) -> None:
    """Pin torch's CPU threads: the profile's count, else the cores other processes leave free."""
    torch.set_num_threads(settings.threads or hardware.fair_cpu_threads())


def _block(filters: int, kernel: int, residual: bool = True, repeat: int = 2) -> dict[str, Any]:
    return {"filters": filters, "repeat": repeat, "kernel": [kernel], "stride": [1],
            "dilation": [1], "dropout": 0.0, "residual": residual, "separable": True}


def asr_config(train_manifest: Path | None, test_manifest: Path | None, *, width: int = 64, blocks: int = 3,
               repeat: int = 2, spec_augment: bool = False,
               batch_size: int = 16, lr: float = 1e-2, max_steps: int = 300, labels: Sequence[str] = speech.LABELS,
               n_mels: int = 64) -> DictConfig:
    """A QuartzNet-like character CTC model: mel features, separable 1-D conv blocks, a 1x1 conv to the labels."""
    jasper = [_block(width, 11, residual=False, repeat=1)]
    jasper += [_block(width, 11 + 2 * i, repeat=repeat) for i in range(blocks)]
    jasper += [_block(2 * width, 21, residual=False, repeat=1), _block(2 * width, 1, residual=False, repeat=1)]
    dataset = {"sample_rate": speech.SAMPLE_RATE_HZ, "labels": list(labels), "batch_size": batch_size,
               "num_workers": 0, "pin_memory": False, "trim_silence": False, "max_duration": 20.0}
    augment = {"_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
               "freq_masks": 1, "time_masks": 1, "freq_width": 8, "time_width": 0.05}
    cfg = {
        "sample_rate": speech.SAMPLE_RATE_HZ,
        "labels": list(labels),
        "train_ds": {**dataset, "manifest_filepath": str(train_manifest) if train_manifest else None, "shuffle": True},
        "validation_ds": {**dataset, "manifest_filepath": str(test_manifest) if test_manifest else None,
                          "shuffle": False},
        "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                         "sample_rate": speech.SAMPLE_RATE_HZ, "normalize": "per_feature", "window_size": 0.025,
                         "window_stride": 0.02, "window": "hann", "features": n_mels, "n_fft": 512,
                         "dither": 1e-5, "pad_to": 16},
        "spec_augment": augment if spec_augment else None,
        "encoder": {"_target_": "nemo.collections.asr.modules.ConvASREncoder", "feat_in": n_mels,
                    "activation": "relu", "conv_mask": True, "jasper": jasper},
        "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": 2 * width,
                    "num_classes": len(labels), "vocabulary": list(labels)},
        "optim": {"name": "adamw", "lr": lr, "betas": [0.9, 0.98], "weight_decay": 1e-3,
                  "sched": {"name": "CosineAnnealing", "warmup_steps": max(1, max_steps // 10), "min_lr": lr / 100}},
    }
    return OmegaConf.create(cfg)


class LossHistory(Callback):
    """Records the training loss of every step (a plain list of floats) and the wall time of training (s)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.started = self.started_cpu = 0.0
        self.train_s = self.train_cpu_s = 0.0

    def on_train_start(self, trainer: Trainer, pl_module: Any) -> None:
        self.started, self.started_cpu = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))

    def on_train_end(self, trainer: Trainer, pl_module: Any) -> None:
        self.train_s = time.perf_counter() - self.started
        self.train_cpu_s = time.process_time() - self.started_cpu


def interactive() -> bool:
    """True in a live terminal or notebook, False under papermill/CI (keeps progress bars out of logs)."""
    if os.environ.get("TQDM_DISABLE") or os.environ.get("CI") or os.environ.get("PAPERMILL_EXECUTION"):
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def make_trainer(max_steps: int, *, use_gpu: bool = False, extra_callbacks: Sequence[Callback] = ()) -> Trainer:
    """A Lightning Trainer that writes nothing outside ``build/`` (no checkpoints, no loggers)."""
    root = paths.build_dir() / "lightning"
    root.mkdir(parents=True, exist_ok=True)
    accel = {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"} if use_gpu else \
        {"accelerator": "cpu", "devices": 1, "precision": "32-true"}
    return Trainer(**accel, max_steps=max_steps, max_epochs=-1, logger=False, enable_checkpointing=False,
                   enable_progress_bar=interactive(), enable_model_summary=False, log_every_n_steps=50,
                   limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=str(root),
                   callbacks=list(extra_callbacks))


def build_model(cfg: DictConfig, trainer: Trainer | None = None, seed: int = 0) -> EncDecCTCModel:
    """Instantiate the CTC model from ``cfg`` with a seeded initialisation."""
    quiet_logs()
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        return EncDecCTCModel(cfg=cfg, trainer=trainer)


def parameter_count(model: torch.nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train(model: EncDecCTCModel, trainer: Trainer, history: LossHistory) -> LossHistory:
    """Fit ``model`` with ``trainer`` (its ``train_ds`` manifest); returns the filled loss history."""
    quiet_logs()
    torch.manual_seed(0)
    model.set_trainer(trainer)
    trainer.fit(model)
    if not history.losses:
        raise WorkshopError("Training ran no steps (losses=[]). Likely cause: an empty train manifest. "
                            f"Next step: check {model.cfg.train_ds.manifest_filepath} has lines.")
    return history


def _texts(outputs: Any) -> list[str]:
    if isinstance(outputs, tuple):  # some NeMo versions return (best, all)
        outputs = outputs[0]
    return [" ".join((o if isinstance(o, str) else o.text).split()) for o in outputs]


def transcribe_with(model: EncDecCTCModel, audio_paths: Sequence[str | Path], batch_size: int = 16) -> list[str]:
    """Greedy CTC transcripts of WAV files (16 kHz mono) with ``model``."""
    missing = [str(p) for p in audio_paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"transcribe(): {len(missing)} audio file(s) not found, first={missing[0]}. "
                                "Next step: pass paths to 16 kHz mono WAV files that exist.")
    if not audio_paths:
        return []
    model.eval()
    with torch.inference_mode(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        outputs = model.transcribe([str(p) for p in audio_paths], batch_size=batch_size, verbose=False)
    return _texts(outputs)


@dataclass
class Evaluation:
    """Held-out scores: word and character error rates (0-1), transcripts, audio seconds and decode seconds."""

    wer: float
    cer: float
    references: list[str]
    hypotheses: list[str]
    audio_s: float
    decode_s: float
    examples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rtfx(self) -> float:
        """Inverse real-time factor: seconds of audio transcribed per second of compute."""
        return self.audio_s / self.decode_s if self.decode_s > 0 else float("nan")


def evaluate(model: EncDecCTCModel, clips: Sequence[speech.Clip], batch_size: int = 16) -> Evaluation:
    """WER and CER (NeMo's ``word_error_rate``) of ``model`` on ``clips``, with the decoding speed."""
    refs = [c.text for c in clips]
    transcribe_with(model, [clips[0].audio_filepath])  # warm-up, not timed
    started = time.perf_counter()
    hyps = transcribe_with(model, [c.audio_filepath for c in clips], batch_size=batch_size)
    decode_s = time.perf_counter() - started
    return Evaluation(word_error_rate(hyps, refs), word_error_rate(hyps, refs, use_cer=True), refs, hyps,
                      sum(c.duration for c in clips), decode_s, list(zip(refs, hyps))[:5])


def try_pretrained(name: str = PRETRAINED_NAME) -> tuple[Any | None, str]:
    """Load a pretrained NeMo ASR checkpoint, or return (None, why) when the hub is unreachable (fast offline)."""
    quiet_logs()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return ASRModel.from_pretrained(name), f"loaded {name}"
    except Exception as exc:  # offline: LocalEntryNotFoundError / connection errors; report, train from config
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        return None, (f"from_pretrained({name!r}) failed ({type(exc).__name__}"
                      f"{', HF_HUB_OFFLINE=1' if offline else ''}); training from a config instead")


def fine_tune(model: Any, corpus: speech.Corpus, settings: AsrSettings, trainer: Trainer) -> Any:
    """Fine-tune a pretrained NeMo CTC model (its own tokenizer/vocabulary) on the corpus with ``trainer``."""
    quiet_logs()
    data = {"manifest_filepath": str(corpus.train_manifest), "sample_rate": speech.SAMPLE_RATE_HZ,
            "batch_size": settings.batch_size, "shuffle": True, "num_workers": 4, "pin_memory": True,
            "max_duration": 20.0, "trim_silence": False}
    if hasattr(model, "decoder") and hasattr(model.decoder, "vocabulary") and not hasattr(model, "tokenizer"):
        data["labels"] = list(model.decoder.vocabulary)
    model.setup_training_data(OmegaConf.create(data))
    model.setup_optimization(OmegaConf.create({
        "name": "adamw", "lr": 1e-4, "weight_decay": 1e-3,
        "sched": {"name": "CosineAnnealing", "warmup_steps": max(1, settings.max_steps // 10), "min_lr": 1e-6,
                  "max_steps": settings.max_steps}}))
    model.set_trainer(trainer)
    trainer.fit(model)
    return model


def save_model(model: EncDecCTCModel, target: Path | None = None) -> Path:
    """Write ``model`` to a ``.nemo`` archive (default ``build/artifacts/lab_notes_asr.nemo``)."""
    target = target or paths.artifacts_dir() / ARTIFACT_NAME
    partial = target.with_name(target.stem + ".partial.nemo")
    model.save_to(str(partial))
    partial.replace(target)
    return target


def restore_model(path: Path | None = None) -> Any:
    """Load a ``.nemo`` archive on the CPU (default: the lab-04 artifact; a fine-tuned BPE model works too)."""
    path = Path(path or paths.artifacts_dir() / ARTIFACT_NAME)
    if not path.is_file():
        raise FileNotFoundError(f"No ASR model at path={path}. It is written by lab 04. Next step: run "
                                "`python -m workshop_utils run --labs 04`, or call wu.ensure_asr_model('smoke').")
    quiet_logs()
    with contextlib.redirect_stdout(io.StringIO()):
        model = ASRModel.restore_from(str(path), map_location=torch.device("cpu"))
    return model.eval()


def train_lab_notes_asr(profile: str, *, seed: int = 0, extra_words: Sequence[str] = ()) -> dict[str, Any]:
    """Corpus -> config -> Lightning training -> held-out WER, from scratch; what lab 04 does step by step."""
    s = settings_for(profile)
    apply_threads(s)
    corpus = speech.build_corpus(s.n_train, s.n_test, seed=seed, extra_words=extra_words)
    cfg = asr_config(corpus.train_manifest, corpus.test_manifest, width=s.width, blocks=s.blocks, repeat=s.repeat,
                     spec_augment=s.spec_augment, batch_size=s.batch_size, lr=s.lr, max_steps=s.max_steps)
    history = LossHistory()
    trainer = make_trainer(s.max_steps, use_gpu=profile == "gpu" and torch.cuda.is_available(),
                           extra_callbacks=[history])
    model = build_model(cfg, trainer, seed=seed)
    train(model, trainer, history)
    return {"model": model.cpu(), "history": history, "corpus": corpus, "evaluation": evaluate(model, corpus.test)}


def ensure_asr_model(profile: str = "smoke") -> Path:
    """The lab-04 artifact, trained now (same code path as the lab) if it is missing; returns its path."""
    target = paths.artifacts_dir() / ARTIFACT_NAME
    if target.is_file():
        return target
    result = train_lab_notes_asr(profile)
    return save_model(result["model"], target)


_CACHED: dict[str, Any] = {}


def transcribe(audio_paths: Sequence[str | Path], model_path: Path | None = None) -> list[str]:
    """Transcripts of 16 kHz mono WAV files with the lab-04 model (restored once, then cached)."""
    path = Path(model_path or paths.artifacts_dir() / ARTIFACT_NAME)
    key = f"{path}:{path.stat().st_mtime_ns if path.is_file() else 0}"
    if key not in _CACHED:
        _CACHED.clear()
        _CACHED[key] = restore_model(path)
    return transcribe_with(_CACHED[key], list(audio_paths))
