"""StarDist's DSB2018 subset on disk: the (image, mask) TIFF pairs of its train and test splits.

``wu.fetch("stardist_dsb2018")`` unpacks ``dsb2018.zip`` into a folder holding ``dsb2018/<split>/images/*.tif``
and ``dsb2018/<split>/masks/*.tif``: the same file name in both, a grey fluorescence image (uint8 or uint16,
of varying size) and its uint16 instance labels (0 background, 1..n one per nucleus). 447 training and 50 test
images (Schmidt et al., MICCAI 2018, from the 2018 Data Science Bowl stage 1, Caicedo et al. 2019).
"""

from __future__ import annotations

from pathlib import Path

from workshop_utils.core.errors import MissingFileError
from workshop_utils.core.inputs import require_choice, require_folder

SPLITS = ("train", "test")
_SUFFIXES = (".tif", ".tiff")


def split_folder(root: Path, split: str) -> Path:
    """``root``'s folder for ``split`` (root is the unpacked zip, or its ``dsb2018`` folder)."""
    where = "dsb2018_pairs"
    root = require_folder(root, where, "root", 'Pass the folder wu.fetch("stardist_dsb2018") returns.')
    split = require_choice(split, where, "split", SPLITS, "Pass split='train' or split='test'.")
    for base in (root / "dsb2018", root):
        if (base / split / "images").is_dir():
            return base / split
    raise MissingFileError(
        f"{where}: expected {root} to hold dsb2018/{split}/images and dsb2018/{split}/masks; got "
        f"{sorted(p.name for p in root.iterdir())[:8] or 'an empty folder'}. The download was probably cut off or "
        'unpacked elsewhere: delete that folder and run wu.fetch("stardist_dsb2018") again.')


def _tiffs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _SUFFIXES} if folder.is_dir() else {}


def dsb2018_pairs(root: Path, split: str = "train") -> list[dict[str, str]]:
    """The (image, mask) pairs of one split, as MONAI-style dicts sorted by file name.

    Every image needs a mask of the same file name and every mask an image; a lone file is an error that names it.

    Args:
        root: the folder ``wu.fetch("stardist_dsb2018")`` returns (or its ``dsb2018`` folder).
        split: ``"train"`` (447 pairs) or ``"test"`` (50 pairs).

    Returns:
        One ``{"image": path, "label": path}`` dict per pair (paths as str), for a MONAI dataset or for scoring.

    Example:
        >>> real_train = wu.nuclei.dsb2018_pairs(dsb_root, "train")
    """
    folder = split_folder(root, split)
    images, masks = _tiffs(folder / "images"), _tiffs(folder / "masks")
    lone_images, lone_masks = sorted(set(images) - set(masks)), sorted(set(masks) - set(images))
    if lone_images or lone_masks:
        what = (f"{len(lone_images)} image(s) without a mask in masks/ (e.g. {lone_images[0]})" if lone_images
                else f"{len(lone_masks)} mask(s) without an image in images/ (e.g. {lone_masks[0]})")
        raise MissingFileError(
            f"dsb2018_pairs: expected every file in {folder}/images to have a mask of the same name in "
            f"{folder}/masks; got {what}. The archive is incomplete or was changed: delete {folder.parent} and "
            'run wu.fetch("stardist_dsb2018") again.')
    if not images:
        raise MissingFileError(
            f"dsb2018_pairs: expected .tif images in {folder}/images; got none. Delete {folder.parent} and "
            'run wu.fetch("stardist_dsb2018") again.')
    return [{"image": str(images[name]), "label": str(masks[name])} for name in sorted(images)]
