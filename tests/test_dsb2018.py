"""Lab 01's real-data path end to end on a stand-in ``dsb2018.zip`` served over loopback: manifest, checksum,
extraction, the (image, mask) pairs, the lesson's step-bounded training and the AP@0.5 scoring."""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

import workshop_utils as wu
from workshop_utils import nuclei
from workshop_utils.core import data, manifests, paths
from workshop_utils.core.errors import InputError, MissingFileError
from workshop_utils.nuclei import NucleiConfig, NucleiModel
from workshop_utils.nuclei_images import synthetic_nuclei

from .conftest import LoopbackServer, sha256_hex

TINY = NucleiConfig(tile_px=32, channels=(4, 8), strides=(2,), num_res_units=1, sw_batch_size=2)
SHAPES = {"train": [(96, 96), (96, 128), (112, 96)], "test": [(96, 96), (128, 96)]}


def tiff_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


def stand_in_zip(drop_mask: str | None = None) -> tuple[bytes, dict[str, np.ndarray]]:
    """dsb2018/{train,test}/{images,masks}/*.tif like StarDist's zip: uint8 and uint16 images, uint16 labels."""
    members, truths = {}, {}
    for split, shapes in SHAPES.items():
        for index, shape in enumerate(shapes):
            image, labels = synthetic_nuclei(shape[0], np.random.default_rng([7, index, len(split)]))
            image, labels = image[: shape[0], : shape[1]], labels[: shape[0], : shape[1]]
            if shape[1] > shape[0]:  # a wider field: two tiles side by side
                extra_image, extra_labels = synthetic_nuclei(shape[0], np.random.default_rng([8, index]))
                image = np.hstack([image, extra_image])[:, : shape[1]]
                labels = np.hstack([labels, np.where(extra_labels > 0, extra_labels + labels.max(), 0)])[:, : shape[1]]
            if index % 2:  # DSB2018 mixes 8- and 16-bit images
                image = (image / max(int(image.max()), 1) * 255).astype(np.uint8)
            name = f"{split}{index:02d}{'abcdef'[index]}.tif"
            members[f"dsb2018/{split}/images/{name}"] = tiff_bytes(image)
            if name != drop_mask:
                members[f"dsb2018/{split}/masks/{name}"] = tiff_bytes(labels.astype(np.uint16))
            truths[f"{split}/{name}"] = labels
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue(), truths


def served_manifest(server: LoopbackServer, body: bytes, path: str = "/stardist/dsb2018.zip") -> manifests.Dataset:
    """The shipped manifest with its URLs pointed at the loopback server and the stand-in's sha256."""
    raw = yaml.safe_load((paths.manifests_dir() / "stardist_dsb2018.yaml").read_text(encoding="utf-8"))
    entry = raw["files"][0]
    entry["url"], entry["mirrors"] = server.add("/missing/dsb2018.zip", b"", fault="404"), [server.add(path, body)]
    entry["sha256"] = sha256_hex(body)
    return manifests.parse_manifest(raw, source="stardist_dsb2018.yaml")


def test_the_shipped_manifest_names_stardists_release() -> None:
    ds = manifests.get_dataset("stardist_dsb2018")
    entry = ds.file()
    assert entry.name == "dsb2018.zip" and entry.extract == "zip"
    assert entry.urls == ("https://github.com/stardist/stardist/releases/download/0.1.0/dsb2018.zip",
                          "https://github.com/mpicbg-csbd/stardist/releases/download/0.1.0/dsb2018.zip")
    assert entry.sha256 == "e44921950edce378063aa4457e625581ba35b4c2dbd9a07c19d48900129f386f"
    assert ds.profiles == ("cpu", "gpu") and ds.used_by == (1, 5)
    assert "Caicedo" in ds.citation and "Schmidt" in ds.citation and "CC0" in ds.licence


def test_stand_in_zip_trains_and_scores_end_to_end(isolated_dirs: Path, loopback_server: LoopbackServer) -> None:
    body, truths = stand_in_zip()
    ds = served_manifest(loopback_server, body)
    assert ds.file().size is None  # no size published: the sha256 alone vouches for the zip
    root = wu.try_fetch(ds)  # the lab's call: 404 on the first URL, then the mirror; checked, unpacked
    assert root is not None and root.is_dir() and loopback_server.hits["/stardist/dsb2018.zip"] == 1
    assert data.fetch(ds, progress=False) == root and loopback_server.hits["/stardist/dsb2018.zip"] == 1
    train, test = nuclei.dsb2018_pairs(root, "train"), nuclei.dsb2018_pairs(root, "test")
    assert [len(train), len(test)] == [len(SHAPES["train"]), len(SHAPES["test"])]
    assert all(Path(p["image"]).name == Path(p["label"]).name for p in train + test)
    assert nuclei.dsb2018_pairs(root / "dsb2018", "test") == test  # the zip's own folder works too

    torch.manual_seed(0)
    synthetic = NucleiModel(nuclei.build_network(TINY), TINY, {"trained_on": ["synthetic"]})
    models = {"real only": NucleiModel(nuclei.build_network(TINY), TINY), "synthetic then real": copy.deepcopy(synthetic)}
    before = {k: v.clone() for k, v in models["synthetic then real"].network.state_dict().items()}
    lines: list[str] = []
    for model in models.values():
        losses = nuclei.fine_tune_nuclei_model(model, train, 6, source="stardist_dsb2018", batch_size=2, patch_px=32,
                                               log=lines.append)
        assert len(losses) == 6 and all(np.isfinite(losses)) and not model.network.training
    assert len(lines) == 12 and "6 steps" not in lines[0] and "1 steps" in lines[0]  # six rounds of one step
    after = models["synthetic then real"].network.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "fine-tuning must change the weights"
    assert models["real only"].meta["trained_on"] == ["stardist_dsb2018"]
    assert models["synthetic then real"].meta["trained_on"] == ["synthetic", "stardist_dsb2018"]

    saved = nuclei.save_nuclei_model(models["synthetic then real"], isolated_dirs / "m.pt")
    assert nuclei.load_nuclei_model(saved).meta["trained_on"] == ["synthetic", "stardist_dsb2018"]

    matchings, n_true, n_pred = [], 0, 0
    for pair in test:
        image, truth = tifffile.imread(pair["image"]), tifffile.imread(pair["label"])
        np.testing.assert_array_equal(truth, truths[f"test/{Path(pair['image']).name}"])
        assert nuclei.match_instances(truth, truth).ap == 1.0  # the masks are instance labels, read intact
        _, labels = nuclei.segment_nuclei(models["synthetic then real"], image)
        matchings.append(nuclei.match_instances(truth, labels))
        n_true, n_pred = n_true + nuclei.count_nuclei(truth), n_pred + nuclei.count_nuclei(labels)
    total = nuclei.sum_matchings(matchings)
    assert total.n_true == n_true > 0 and total.n_pred == n_pred
    assert 0.0 <= total.ap <= 1.0 and total.tp <= min(n_true, n_pred)
    print(f"stand-in DSB2018: {len(train)} train / {len(test)} test pairs, {n_true} true nuclei, {n_pred} predicted; "
          f"AP@0.5 {total.ap:.3f} (TP {total.tp}, FP {total.fp}, FN {total.fn}) after 6 steps of a 4-8 channel UNet")


def test_a_missing_mask_is_named(tmp_path: Path) -> None:
    body, _ = stand_in_zip(drop_mask="train01b.tif")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(tmp_path)
    with pytest.raises(MissingFileError, match=r"1 image\(s\) without a mask.*train01b\.tif.*wu\.fetch"):
        nuclei.dsb2018_pairs(tmp_path, "train")
    assert len(nuclei.dsb2018_pairs(tmp_path, "test")) == len(SHAPES["test"])
    with pytest.raises(MissingFileError, match="dsb2018/test/images"):
        nuclei.dsb2018_pairs(tmp_path / "dsb2018" / "train", "test")
    with pytest.raises(InputError, match="split one of 'test', 'train'"):
        nuclei.dsb2018_pairs(tmp_path, "val")


def test_fine_tune_refuses_what_it_cannot_train_on(tmp_path: Path) -> None:
    model = NucleiModel(nuclei.build_network(TINY), TINY)
    with pytest.raises(InputError, match='"image": path, "label": path'):
        nuclei.fine_tune_nuclei_model(model, [str(tmp_path / "a.tif")], 5, source="stardist_dsb2018")
    with pytest.raises(InputError, match="steps at least 1"):
        nuclei.fine_tune_nuclei_model(model, [{"image": "a", "label": "b"}], 0, source="stardist_dsb2018")
    with pytest.raises(InputError, match="model as a NucleiModel"):
        nuclei.fine_tune_nuclei_model(model.network, [{"image": "a", "label": "b"}], 5, source="x")
