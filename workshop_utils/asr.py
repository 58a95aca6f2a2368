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
from .errors import HardwareRequirementError, ProfileError, WorkshopError
from .profiles import require_profile
from .inputs import InputError, bad_input, describe, require_int, require_nonempty, require_number

ARTIFACT_NAME = "lab_notes_asr.nemo"
PRETRAINED_NAME = "nvidia/stt_en_fastconformer_ctc_large"  # gpu profile: fine-tuned when the hub is reachable


class AsrFileNotFound(InputError, FileNotFoundError):
    """An audio file or ``.nemo`` archive the caller named does not exist (still a FileNotFoundError)."""


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
    return SETTINGS[require_profile(profile, "asr.settings_for")]


def _require_settings(settings: Any, where: str) -> AsrSettings:
    if not isinstance(settings, AsrSettings):
        raise bad_input(where, "settings as an asr.AsrSettings", describe(settings),
                        "Pass asr.settings_for(PROFILE) (or dataclasses.replace of it).")
    return settings


def apply_threads(settings: AsrSettings) -> None:
    """Pin torch's CPU threads: the profile's count, else the cores other processes leave free."""
    _require_settings(settings, "asr.apply_threads")
    if settings.threads is not None:
        require_int(settings.threads, "asr.apply_threads", "settings.threads", minimum=1)
    torch.set_num_threads(settings.threads or hardware.fair_cpu_threads())


def _block(filters: int, kernel: int, residual: bool = True, repeat: int = 2) -> dict[str, Any]:
    return {"filters": filters, "repeat": repeat, "kernel": [kernel], "stride": [1],
            "dilation": [1], "dropout": 0.0, "residual": residual, "separable": True}


def asr_config(train_manifest: Path | None, test_manifest: Path | None, *, width: int = 64, blocks: int = 3,
               repeat: int = 2, spec_augment: bool = False,
               batch_size: int = 16, lr: float = 1e-2, max_steps: int = 300, labels: Sequence[str] = speech.LABELS,
               n_mels: int = 64) -> DictConfig:
    """A QuartzNet-like character CTC model: mel features, separable 1-D conv blocks, a 1x1 conv to the labels."""
    where = "asr.asr_config"
    for name, manifest in (("train_manifest", train_manifest), ("test_manifest", test_manifest)):
        if manifest is not None and not (isinstance(manifest, (str, Path)) and Path(manifest).is_file()):
            raise bad_input(where, f"{name} as None or an existing manifest file", describe(manifest),
                            "Pass corpus.train_manifest / corpus.test_manifest from speech.build_corpus().")
    width, blocks, repeat = (require_int(v, where, n, minimum=1) for n, v in
                             (("width", width), ("blocks", blocks), ("repeat", repeat)))
    batch_size, max_steps, n_mels = (require_int(v, where, n, minimum=1) for n, v in
                                     (("batch_size", batch_size), ("max_steps", max_steps), ("n_mels", n_mels)))
    lr = require_number(lr, where, "lr", minimum=0.0, strict=True)
    chars = list(labels) if isinstance(labels, Sequence) and not isinstance(labels, str) else []
    if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars) or len(set(chars)) != len(chars):
        raise bad_input(where, "labels as a list of distinct single characters", describe(labels),
                        "Keep the default speech.LABELS (space, a-z and ').")
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
    max_steps = require_int(max_steps, "asr.make_trainer", "max_steps", minimum=1)
    callbacks = list(extra_callbacks) if isinstance(extra_callbacks, (list, tuple)) else [None]
    if not all(isinstance(c, Callback) for c in callbacks):
        raise bad_input("asr.make_trainer", "extra_callbacks as a list of Lightning callbacks",
                        describe(extra_callbacks),
                        "Pass e.g. extra_callbacks=[asr.LossHistory()].")
    if use_gpu and not torch.cuda.is_available():
        raise HardwareRequirementError("asr.make_trainer: expected a CUDA GPU for use_gpu=True; got "
                                       "torch.cuda.is_available()=False. Pass use_gpu=False (train on the CPU).")
    root = paths.build_dir() / "lightning"
    root.mkdir(parents=True, exist_ok=True)
    accel = {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"} if use_gpu else \
        {"accelerator": "cpu", "devices": 1, "precision": "32-true"}
    return Trainer(**accel, max_steps=max_steps, max_epochs=-1, logger=False, enable_checkpointing=False,
                   enable_progress_bar=interactive(), enable_model_summary=False, log_every_n_steps=50,
                   limit_val_batches=0, num_sanity_val_steps=0, default_root_dir=str(root),
                   callbacks=callbacks)


def build_model(cfg: DictConfig, trainer: Trainer | None = None, seed: int = 0) -> EncDecCTCModel:
    """Instantiate the CTC model from ``cfg`` with a seeded initialisation."""
    missing = sorted({"preprocessor", "encoder", "decoder", "labels"} - set(cfg)) if isinstance(cfg, DictConfig) else []
    if not isinstance(cfg, DictConfig) or missing:
        raise bad_input("asr.build_model", "cfg as the DictConfig asr.asr_config() returns",
                        f"missing keys {missing}" if missing else describe(cfg), "Build it with asr.asr_config(...).")
    if trainer is not None and not isinstance(trainer, Trainer):
        raise bad_input("asr.build_model", "trainer as None or a Lightning Trainer", describe(trainer),
                        "Pass asr.make_trainer(max_steps, ...).")
    seed = require_int(seed, "asr.build_model", "seed")
    quiet_logs()
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        return EncDecCTCModel(cfg=cfg, trainer=trainer)


def parameter_count(model: torch.nn.Module) -> int:
    """Trainable parameters."""
    if not isinstance(model, torch.nn.Module):
        raise bad_input("asr.parameter_count", "model as a torch.nn.Module", describe(model),
                        "Pass the model asr.build_model(cfg) returns.")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train(model: EncDecCTCModel, trainer: Trainer, history: LossHistory) -> LossHistory:
    """Fit ``model`` with ``trainer`` (its ``train_ds`` manifest); returns the filled loss history."""
    where = "asr.train"
    if not isinstance(model, EncDecCTCModel):
        raise bad_input(where, "model as a NeMo EncDecCTCModel", describe(model), "Pass asr.build_model(cfg, trainer).")
    if not isinstance(trainer, Trainer) or not isinstance(history, LossHistory):
        raise bad_input(where, "a Lightning Trainer and an asr.LossHistory",
                        f"{describe(trainer)}, {describe(history)}",
                        "history = asr.LossHistory(); trainer = asr.make_trainer(steps, extra_callbacks=[history]).")
    if history not in trainer.callbacks:
        raise bad_input(where, "history among the trainer's callbacks", "a LossHistory the trainer does not call",
                        "Build the trainer with asr.make_trainer(steps, extra_callbacks=[history]).")
    manifest = model.cfg.get("train_ds", {}).get("manifest_filepath")
    if not manifest or not Path(str(manifest)).is_file():
        raise bad_input(where, "a model whose cfg.train_ds.manifest_filepath is an existing manifest",
                        f"manifest_filepath={manifest!r}", "Build the config with "
                        "asr.asr_config(corpus.train_manifest, corpus.test_manifest, ...).")
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


def _audio_list(audio_paths: Any, where: str) -> list[Path]:
    """The WAV paths as a non-empty list of existing files (a lone path is refused, not read per character)."""
    fix = "Pass a list of WAV paths, e.g. [clip] or [c.audio_filepath for c in corpus.test]."
    if isinstance(audio_paths, (str, Path)):
        raise bad_input(where, "audio_paths as a list of paths", describe(audio_paths),
                        f"Wrap it in a list: [{audio_paths!s}].")
    items = require_nonempty(audio_paths, where, "audio_paths", fix)
    odd = next((p for p in items if not isinstance(p, (str, Path)) or not str(p)), None)
    if odd is not None:
        raise bad_input(where, "each audio path as a str or pathlib.Path", describe(odd), fix)
    missing = [str(p) for p in items if not Path(p).is_file()]
    if missing:
        raise AsrFileNotFound(f"{where}: expected existing 16 kHz mono WAV files; got {len(missing)} audio file(s) not "
                              f"found, first={missing[0]}. Next step: pass paths to WAV files that exist "
                              "(speech.synthesize writes them).")
    return [Path(p) for p in items]


def _require_asr_model(model: Any, where: str) -> Any:
    if not (isinstance(model, torch.nn.Module) and callable(getattr(model, "transcribe", None))):
        raise bad_input(where, "model as a NeMo ASR model", describe(model),
                        "Pass asr.build_model(cfg) or asr.restore_model(path).")
    return model


def transcribe_with(model: EncDecCTCModel, audio_paths: Sequence[str | Path], batch_size: int = 16) -> list[str]:
    """Greedy CTC transcripts of WAV files (16 kHz mono) with ``model``."""
    _require_asr_model(model, "asr.transcribe_with")
    audio_paths = _audio_list(audio_paths, "asr.transcribe_with")
    batch_size = require_int(batch_size, "asr.transcribe_with", "batch_size", minimum=1)
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
    _require_asr_model(model, "asr.evaluate")
    clips = require_nonempty(clips, "asr.evaluate", "clips", "Pass corpus.test from speech.build_corpus().")
    odd = next((c for c in clips if not isinstance(c, speech.Clip)), None)
    if odd is not None:
        raise bad_input("asr.evaluate", "clips as speech.Clip items", describe(odd),
                        "Pass corpus.test (or speech.read_manifest(path)).")
    batch_size = require_int(batch_size, "asr.evaluate", "batch_size", minimum=1)
    refs = [c.text for c in clips]
    transcribe_with(model, [clips[0].audio_filepath])  # warm-up, not timed
    started = time.perf_counter()
    hyps = transcribe_with(model, [c.audio_filepath for c in clips], batch_size=batch_size)
    decode_s = time.perf_counter() - started
    return Evaluation(word_error_rate(hyps, refs), word_error_rate(hyps, refs, use_cer=True), refs, hyps,
                      sum(c.duration for c in clips), decode_s, list(zip(refs, hyps))[:5])


def try_pretrained(name: str = PRETRAINED_NAME) -> tuple[Any | None, str]:
    """Load a pretrained NeMo ASR checkpoint, or return (None, why) when the hub is unreachable (fast offline)."""
    if not isinstance(name, str) or not name.strip():
        raise bad_input("asr.try_pretrained", "name as a model id such as 'nvidia/stt_en_fastconformer_ctc_large'",
                        describe(name), "Pass a NeMo/Hugging Face model id, or leave the default.")
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
    _require_asr_model(model, "asr.fine_tune")
    if not isinstance(corpus, speech.Corpus):
        raise bad_input("asr.fine_tune", "corpus as a speech.Corpus", describe(corpus),
                        "Pass what speech.build_corpus(n_train, n_test) returns.")
    settings = _require_settings(settings, "asr.fine_tune")
    if not isinstance(trainer, Trainer):
        raise bad_input("asr.fine_tune", "trainer as a Lightning Trainer", describe(trainer),
                        "Pass asr.make_trainer(settings.max_steps, use_gpu=...).")
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
    if not callable(getattr(model, "save_to", None)):
        raise bad_input("asr.save_model", "model as a NeMo model (it has save_to)", describe(model),
                        "Pass the model asr.build_model(cfg) or asr.restore_model(path) returns.")
    if target is not None and (not isinstance(target, (str, Path)) or Path(target).suffix != ".nemo"):
        raise bad_input("asr.save_model", "target as None or a path ending in .nemo", describe(target),
                        f"Pass e.g. wu.artifacts_dir() / {ARTIFACT_NAME!r}.")
    target = Path(target) if target is not None else paths.artifacts_dir() / ARTIFACT_NAME
    partial = target.with_name(target.stem + ".partial.nemo")
    model.save_to(str(partial))
    partial.replace(target)
    return target


def restore_model(path: Path | None = None) -> Any:
    """Load a ``.nemo`` archive on the CPU (default: the lab-04 artifact; a fine-tuned BPE model works too)."""
    path = _model_path(path, "asr.restore_model")
    if not path.is_file():
        raise AsrFileNotFound(f"asr.restore_model: expected a .nemo archive at path={path}; got "
                              f"{'a folder' if path.is_dir() else 'no file'}. It is written by lab 04. Next step: run "
                              "`python -m workshop_utils run --labs 04`, or call wu.ensure_asr_model('smoke').")
    quiet_logs()
    with contextlib.redirect_stdout(io.StringIO()):
        model = ASRModel.restore_from(str(path), map_location=torch.device("cpu"))
    return model.eval()


def train_lab_notes_asr(profile: str, *, seed: int = 0, extra_words: Sequence[str] = ()) -> dict[str, Any]:
    """Corpus -> config -> Lightning training -> held-out WER, from scratch; what lab 04 does step by step."""
    s = settings_for(profile)
    corpus = speech.build_corpus(s.n_train, s.n_test, seed=seed, extra_words=extra_words)  # checks seed and words
    apply_threads(s)
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
    settings_for(profile)  # an unknown profile is an error even when the artifact exists
    target = paths.artifacts_dir() / ARTIFACT_NAME
    if target.is_file():
        return target
    result = train_lab_notes_asr(profile)
    return save_model(result["model"], target)


_CACHED: dict[str, Any] = {}


def transcribe(audio_paths: Sequence[str | Path], model_path: Path | None = None) -> list[str]:
    """Transcripts of 16 kHz mono WAV files with the lab-04 model (restored once, then cached)."""
    audio_paths = _audio_list(audio_paths, "asr.transcribe")  # before the model loads
    path = _model_path(model_path, "asr.transcribe")
    key = f"{path}:{path.stat().st_mtime_ns if path.is_file() else 0}"
    if key not in _CACHED:
        _CACHED.clear()
        _CACHED[key] = restore_model(path)
    return transcribe_with(_CACHED[key], audio_paths)


def _model_path(value: Any, where: str) -> Path:
    if value is not None and (not isinstance(value, (str, Path)) or not str(value)):
        raise bad_input(where, "the model path as None or a .nemo path", describe(value),
                        "Leave it out for the lab-04 artifact, or pass wu.artifacts_dir() / 'lab_notes_asr.nemo'.")
    return Path(value) if value is not None else paths.artifacts_dir() / ARTIFACT_NAME
