"""Lab 04's speech recogniser with NeMo (``wu.asr.<name>``): a small CTC model for spoken lab notes.

- :mod:`~workshop_utils.asr.model`: per-profile settings, the CTC config, ``EncDecCTCModel``, save and restore;
- :mod:`~workshop_utils.asr.training`: Lightning's ``Trainer``, the loss history, fine-tuning, the artifact rebuild;
- :mod:`~workshop_utils.asr.inference`: transcription, word error rate per clip, the capstone's cached model;
- :mod:`~workshop_utils.asr.pretrained`: NVIDIA's pretrained checkpoints through the manifests (which commit,
  restoring a verified ``.nemo``) and the note saying what the lab-04 artifact is.

The NeMo and Lightning calls themselves are lab 04's lesson code (``workshop_utils.lessons.lab04``, exported from
the notebook's ``#| export`` cells); these modules check arguments, keep NeMo quiet and call it.

Importing this package imports NeMo (about 10 s), once, with its banners silenced; ``wu.asr`` loads it on first
use. ``transcribe(paths)`` is what the capstone calls; ``ensure_asr_model(profile)`` rebuilds the artifact through
the same code as lab 04 when it is missing.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub in CI: from_pretrained must fail fast, not hang
os.environ.setdefault("NEMO_TESTING", "0")
# Harmless notices that would otherwise land in every executed notebook (the last one: NeMo's transcribe asks for
# pinned memory, which a CPU-only run cannot give).
warnings.filterwarnings("ignore", message="IProgress not found")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true but no accelerator is found")

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
        warnings.catch_warnings():  # telemetry banners, tqdm's "IProgress not found"
    warnings.simplefilter("ignore")
    import lightning.pytorch  # noqa: F401 - loaded here once, quietly; the submodules import from it
    import nemo.collections.asr  # noqa: F401

from workshop_utils.asr.inference import (  # noqa: E402 - after NeMo's quiet import above
    Evaluation,
    evaluate,
    require_asr_model,
    transcribe,
    transcribe_with,
)
from workshop_utils.asr.model import (  # noqa: E402 - after NeMo's quiet import above
    ARTIFACT_NAME,
    MODEL_PATH_FIX,
    SETTINGS,
    AsrSettings,
    apply_threads,
    asr_config,
    build_model,
    parameter_count,
    quiet_logs,
    require_settings,
    restore_model,
    save_model,
    settings_for,
)
from workshop_utils.asr.pretrained import (  # noqa: E402 - after NeMo's quiet import above
    model_card,
    pretrained_id,
    restore_pretrained,
    write_model_card,
)
from workshop_utils.asr.training import (  # noqa: E402 - after NeMo's quiet import above
    LossHistory,
    ensure_asr_model,
    fine_tune,
    interactive,
    make_trainer,
    train,
    train_lab_notes_asr,
)

__all__ = [
    "ARTIFACT_NAME",
    "AsrSettings",
    "Evaluation",
    "LossHistory",
    "MODEL_PATH_FIX",
    "SETTINGS",
    "apply_threads",
    "asr_config",
    "build_model",
    "ensure_asr_model",
    "evaluate",
    "fine_tune",
    "interactive",
    "make_trainer",
    "model_card",
    "parameter_count",
    "pretrained_id",
    "quiet_logs",
    "require_asr_model",
    "require_settings",
    "restore_model",
    "restore_pretrained",
    "save_model",
    "settings_for",
    "train",
    "train_lab_notes_asr",
    "transcribe",
    "transcribe_with",
    "write_model_card",
]
