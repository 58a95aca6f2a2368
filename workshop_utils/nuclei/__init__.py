"""The nuclei segmentation model labs 01, 02, 03 and 06 share (``wu.nuclei.<name>``).

- :mod:`~workshop_utils.nuclei.model`: the MONAI ``UNet``, its config, save and load, per-profile presets;
- :mod:`~workshop_utils.nuclei.pipeline`: preprocess -> forward pass on fixed tiles -> watershed, count, Dice;
- :mod:`~workshop_utils.nuclei.training`: training files, transforms, one epoch, and the artifact rebuild.
"""

from workshop_utils.nuclei.model import (
    ARTIFACT_NAME,
    FORMAT,
    NORMALISATION,
    PRESETS,
    NucleiConfig,
    NucleiModel,
    build_network,
    check_normalisation,
    load_nuclei_model,
    nuclei_preset,
    require_nuclei_model,
    save_nuclei_model,
)
from workshop_utils.nuclei.pipeline import (
    Predictor,
    check_image,
    count_nuclei,
    dice,
    foreground_probability,
    postprocess,
    predict_logits,
    preprocess,
    segment_nuclei,
)
from workshop_utils.nuclei.training import (
    ensure_nuclei_model,
    prepare_transforms,
    train_nuclei_model,
    write_synthetic_files,
)

__all__ = [
    "ARTIFACT_NAME",
    "FORMAT",
    "NORMALISATION",
    "PRESETS",
    "NucleiConfig",
    "NucleiModel",
    "Predictor",
    "build_network",
    "check_image",
    "check_normalisation",
    "count_nuclei",
    "dice",
    "ensure_nuclei_model",
    "foreground_probability",
    "load_nuclei_model",
    "nuclei_preset",
    "postprocess",
    "predict_logits",
    "prepare_transforms",
    "preprocess",
    "require_nuclei_model",
    "save_nuclei_model",
    "segment_nuclei",
    "train_nuclei_model",
    "write_synthetic_files",
]
