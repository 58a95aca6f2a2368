"""NVIDIA's pretrained recognisers, through the data manifests: which one a profile uses, which commit it came from,
restoring the verified ``.nemo`` with a clear error when it is not one, and the note saying what the lab-04
artifact is (a model trained from a config, or a pretrained model fine-tuned on lab notes).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from workshop_utils.asr.model import ARTIFACT_NAME, MODEL_PATH_FIX, quiet_logs
from workshop_utils.core import data, paths
from workshop_utils.core.data_store import read_record
from workshop_utils.core.errors import WorkshopError
from workshop_utils.core.files import atomic_write
from workshop_utils.core.inputs import bad_input, describe, require_file, require_path
from workshop_utils.core.manifests import Dataset
from workshop_utils.lessons.lab04 import restore_nemo

NEMO_MEMBERS = ("model_config.yaml", "model_weights.ckpt")  # what every .nemo archive holds


def pretrained_id(dataset: str | Dataset) -> str:
    """``"<repo>@<commit>"`` of a ``huggingface`` model manifest: its pinned commit, else the one recorded at its
    first verified fetch, else ``"<repo>@<branch> (not fetched yet)"``.

    Args:
        dataset: a model manifest's name, e.g. ``"stt_en_conformer_ctc_small"``, or its ``Dataset``.

    Returns:
        The repository and commit the weights came from, e.g. ``"nvidia/stt_en_conformer_ctc_small@4f0c…"``.

    Example:
        >>> lab.record(pretrained_model=wu.asr.pretrained_id(S.pretrained))
    """
    ds = data.dataset_of(dataset, "pretrained_id")
    entry = ds.file()
    hub = entry.huggingface
    if hub is None:
        raise bad_input("pretrained_id", "a model manifest with a 'huggingface' source", f"{ds.name} ({entry.source_text})",
                        "Pass a model entry such as 'stt_en_conformer_ctc_small'.")
    if hub.pinned:
        return f"{hub.repo}@{hub.revision}"
    commit = read_record(paths.data_cache_dir() / ds.name, entry).get("commit")
    return f"{hub.repo}@{commit}" if isinstance(commit, str) else f"{hub.repo}@{hub.revision} (not fetched yet)"


def _check_archive(path: Path) -> None:
    """Refuse a file that is not a ``.nemo`` tar archive holding a config and weights, before NeMo reads it."""
    fix = (f"Next step: delete {path} (and its .record.json beside it) and fetch it again "
           "(`python -m workshop_utils prefetch --lab 4`), or pin another revision in its manifest.")
    try:
        with tarfile.open(path, "r:*") as archive:
            names = {Path(name).name for name in archive.getnames()}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise WorkshopError(f"restore_pretrained: expected a .nemo archive (a tar file with {' and '.join(NEMO_MEMBERS)}); "
                            f"got {path} ({path.stat().st_size} bytes), which is not a readable tar file "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0]}). {fix}") from exc
    missing = [m for m in NEMO_MEMBERS if m not in names]
    if missing:
        raise WorkshopError(f"restore_pretrained: expected a .nemo archive with {' and '.join(NEMO_MEMBERS)}; got "
                            f"{path} without {', '.join(missing)}. {fix}")


def restore_pretrained(path: Path) -> Any:
    """Restore a verified pretrained ``.nemo`` (from ``wu.fetch``) with the lesson's ``restore_nemo`` (``ASRModel
    .restore_from``), on the CPU in eval mode; a file that is not a NeMo archive is a clear error, not a traceback.

    Args:
        path: the ``.nemo`` file, e.g. ``wu.try_fetch("stt_en_conformer_ctc_small")``.

    Returns:
        The NeMo ASR model the archive holds (``EncDecCTCModelBPE``, a hybrid TDT-CTC model, ...).

    Example:
        >>> pretrained = wu.asr.restore_pretrained(checkpoint)
    """
    path = require_file(path, "restore_pretrained", "path", "Pass the path wu.fetch(S.pretrained) returns.")
    _check_archive(path)
    quiet_logs()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return restore_nemo(path)
    except Exception as exc:  # NeMo raises many kinds (a bad config, missing tokenizer, torch.load errors)
        raise WorkshopError(f"restore_pretrained: expected ASRModel.restore_from to rebuild the model in {path}; got "
                            f"{type(exc).__name__}: {str(exc)[:300]}. Likely cause: a corrupt archive or one written "
                            "by a newer NeMo. Next step: delete the file and fetch it again, or pin an older revision "
                            "in its manifest.") from exc


def card_path(artifact: Path) -> Path:
    """The JSON note beside a ``.nemo`` artifact that says what the model is."""
    return artifact.with_suffix(".json")


def write_model_card(artifact: Path | None = None, **facts: str | float | int | None) -> Path:
    """Write the note beside the lab-04 artifact saying what model it is (read by :func:`model_card`).

    Args:
        artifact: the ``.nemo`` file; None means ``build/artifacts/lab_notes_asr.nemo``.
        facts: what to say, e.g. ``pretrained_model="nvidia/...@<commit>", fine_tune_steps=200``.

    Returns:
        The note's path (``lab_notes_asr.json``).

    Example:
        >>> wu.asr.write_model_card(artifact, pretrained_model=pretrained_model, fine_tuned_on="lab notes")
    """
    artifact = require_path(artifact, "write_model_card", "artifact", MODEL_PATH_FIX,
                            default=paths.artifacts_dir() / ARTIFACT_NAME)
    odd = {k: v for k, v in facts.items() if v is not None and not isinstance(v, (str, int, float))}
    if odd:
        raise bad_input("write_model_card", "facts as strings or numbers", describe(odd),
                        "Pass e.g. pretrained_model='nvidia/...@<commit>'.")
    with atomic_write(card_path(artifact)) as partial:
        partial.write_text(json.dumps(facts, indent=1), encoding="utf-8")
    return card_path(artifact)


def model_card(artifact: Path | None = None) -> dict[str, Any]:
    """What the lab-04 artifact is: its note, or ``{"pretrained_model": None}`` for a model trained from a config.

    A note older than the artifact (the artifact was rebuilt from a config since) counts as none.

    Args:
        artifact: the ``.nemo`` file; None means ``build/artifacts/lab_notes_asr.nemo``.

    Returns:
        The facts :func:`write_model_card` wrote, or ``{"pretrained_model": None}``.

    Example:
        >>> print(wu.asr.model_card())
    """
    artifact = require_path(artifact, "model_card", "artifact", MODEL_PATH_FIX,
                            default=paths.artifacts_dir() / ARTIFACT_NAME)
    card = card_path(artifact)
    if not card.is_file() or (artifact.is_file() and card.stat().st_mtime_ns < artifact.stat().st_mtime_ns):
        return {"pretrained_model": None}
    try:
        facts = json.loads(card.read_text(encoding="utf-8"))
    except ValueError:
        return {"pretrained_model": None}
    return facts if isinstance(facts, dict) else {"pretrained_model": None}
