"""The nuclei segmentation model labs 01, 02, 03 and 06 share (``wu.nuclei.<name>``).

- :mod:`~workshop_utils.nuclei.model`: the MONAI ``UNet``, its config, save and load, per-profile presets;
- :mod:`~workshop_utils.nuclei.pipeline`: preprocess -> forward pass on fixed tiles -> watershed, count, Dice;
- :mod:`~workshop_utils.nuclei.training`: training files, transforms, one epoch, fine-tuning, and the artifact rebuild;
- :mod:`~workshop_utils.nuclei.metrics`: object-level scores (match nuclei by IoU: TP, FP, FN, AP@0.5);
- :mod:`~workshop_utils.nuclei.dsb2018`: the (image, mask) pairs of StarDist's DSB2018 train and test splits.
"""

from workshop_utils.nuclei.dsb2018 import dsb2018_pairs
from workshop_utils.nuclei.metrics import Matching, match_instances, sum_matchings
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
    fine_tune_nuclei_model,
    prepare_transforms,
    train_nuclei_model,
    write_synthetic_files,
)

__all__ = [
    "ARTIFACT_NAME",
    "FORMAT",
    "NORMALISATION",
    "Matching",
    "PRESETS",
    "NucleiConfig",
    "NucleiModel",
    "Predictor",
    "build_network",
    "check_image",
    "check_normalisation",
    "count_nuclei",
    "dice",
    "dsb2018_pairs",
    "ensure_nuclei_model",
    "fine_tune_nuclei_model",
    "foreground_probability",
    "load_nuclei_model",
    "match_instances",
    "nuclei_preset",
    "postprocess",
    "predict_logits",
    "prepare_transforms",
    "preprocess",
    "require_nuclei_model",
    "save_nuclei_model",
    "segment_nuclei",
    "sum_matchings",
    "train_nuclei_model",
    "write_synthetic_files",
]
