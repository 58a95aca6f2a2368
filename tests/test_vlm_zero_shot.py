"""Lab 05's zero-shot SmolVLM section against a tiny stand-in served by a loopback Hugging Face Hub.

The stand-in is a SmolVLM-256M-Instruct in miniature: the same architecture (Idefics3: a SigLIP-style vision tower,
pixel shuffle, MLP connector, a Llama text model), random weights, a small byte-level BPE tokenizer with the real
model's special tokens, and its files in the layout of the real repository at the pinned commit (the twelve files
that loaders could read, written the way that repository has them). The hub serves all twelve; the lab fetches
only those its manifest lists, and the tests check that those are exactly what ``AutoProcessor`` and
``AutoModelForImageTextToText`` need. The lab's own cells (tagged ``vlm_zero_shot``) run as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import workshop_utils as wu
from workshop_utils.core import manifests
from workshop_utils.core.manifests import Dataset, parse_manifest
from workshop_utils.multimodal import vlm_zero_shot

from .conftest import LoopbackServer, sha256_hex
from .test_huggingface_source import StandInHub

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_multimodal_cells.ipynb"
REPO = "HuggingFaceTB/SmolVLM-256M-Instruct"
COMMIT = "7e3e67edbbed1bf9888184d9df282b700a323964"
PUBLISHED_SHA256 = "74dea5904032e5ae99a2e0eef5179e6ac0f1dedc3ab0c7c2a5d4d387c843203e"
UPSTREAM = ("config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
            "processor_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "vocab.json", "merges.txt", "chat_template.json")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EXTRA = ["<global-img>", *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)),
         "<fake_token_around_image>", "<image>", "<end_of_utterance>"]
CHAT_TEMPLATE = (  # SmolVLM's chat template (chat_template.json of the real repository)
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == "
    "'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}"
    "{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")


def build_stand_in(out: Path) -> None:
    """Write a tiny SmolVLM (Idefics3) with random weights and a BPE tokenizer into ``out``, in the upstream layout."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    out.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = ["How many nuclei are in this microscope image? Answer with a number. There are 12 nuclei.",
              "interphase mitotic apoptotic elongated binucleated clustered one two three"] * 10
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=360, special_tokens=SPECIAL,
                                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                              show_progress=False))
    tokenizer.add_special_tokens(EXTRA)
    tokenizer.save(str(out / "tokenizer.json"))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL + EXTRA}
    special = {"bos_token": "<|im_start|>", "eos_token": "<end_of_utterance>", "pad_token": "<|im_end|>",
               "unk_token": "<|endoftext|>", "additional_special_tokens": EXTRA[-3:]}
    write = lambda name, value: (out / name).write_text(json.dumps(value, indent=1))  # noqa: E731
    write("tokenizer_config.json", {**special, "tokenizer_class": "GPT2Tokenizer", "processor_class": "Idefics3Processor",
                                    "model_max_length": 8192, "add_prefix_space": False, "legacy": False,
                                    "clean_up_tokenization_spaces": False, "added_tokens_decoder": {
                                        str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                                 "single_word": False, "special": True} for t, i in ids.items()}})
    write("special_tokens_map.json", special)
    write("added_tokens.json", {token: ids[token] for token in EXTRA})
    bpe = json.loads(tokenizer.to_str())["model"]
    write("vocab.json", bpe["vocab"])
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in bpe["merges"]) + "\n")
    write("chat_template.json", {"chat_template": CHAT_TEMPLATE})
    write("preprocessor_config.json", {
        "do_convert_rgb": True, "do_image_splitting": True, "do_normalize": True, "do_pad": True, "do_rescale": True,
        "do_resize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3, "image_processor_type": "Idefics3ImageProcessor",
        "max_image_size": {"longest_edge": 32}, "processor_class": "Idefics3Processor", "resample": 1,
        "rescale_factor": 1 / 255, "size": {"longest_edge": 128}})
    write("processor_config.json", {"image_seq_len": 4, "processor_class": "Idefics3Processor"})
    config = Idefics3Config(
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        text_config={"model_type": "llama", "vocab_size": tokenizer.get_vocab_size(), "hidden_size": 16,
                     "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "bos_token_id": ids["<|im_start|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|im_end|>"], "tie_word_embeddings": True},
        scale_factor=2, image_token_id=ids["<image>"], tie_word_embeddings=True)
    torch.manual_seed(0)
    Idefics3ForConditionalGeneration(config).save_pretrained(str(out))  # config, generation_config, safetensors
    assert sorted(p.name for p in out.iterdir()) == sorted(UPSTREAM)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("smolvlm") / "upstream"
    build_stand_in(folder)
    return folder


def listed() -> list[str]:
    return [entry.name for entry in manifests.get_dataset(vlm_zero_shot.VLM_MODEL).files]


def fingerprint(folder: Path) -> dict[str, Any]:
    """What the lab relies on, loaded with the real loaders: classes, special tokens, prompt ids, greedy answer."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(folder))
    model = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=torch.float32).eval()
    content = [{"type": "image"}, {"type": "text", "text": "How many nuclei?"}]
    prompt = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    image = wu.multimodal.to_pil(np.random.default_rng(0).random((40, 24, 3)))
    inputs = processor(text=prompt, images=[image], do_image_splitting=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False,
                             eos_token_id=processor.tokenizer.convert_tokens_to_ids("<end_of_utterance>"),
                             pad_token_id=processor.tokenizer.pad_token_id)
    tok = processor.tokenizer
    return {"classes": (type(processor).__name__, type(tok).__name__, type(model).__name__), "prompt": prompt,
            "special": (tok.bos_token, tok.eos_token, tok.pad_token, tok.model_max_length),
            "ids": inputs["input_ids"][0].tolist(), "answer": out[0].tolist()}


def copy_files(source: Path, names: list[str], target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in names:
        shutil.copy(source / name, target / name)
    return target


def test_the_manifest_pins_the_published_weights_at_one_commit() -> None:
    ds = manifests.get_dataset(vlm_zero_shot.VLM_MODEL)
    assert ds.profiles == ("cpu", "gpu") and 5 in ds.used_by and "Apache-2.0" in ds.licence
    for entry in ds.files:
        hub = entry.huggingface
        assert hub is not None and hub.repo == REPO and hub.revision == COMMIT and hub.pinned and hub.file == entry.name
    weights = ds.file("model.safetensors")
    assert weights.sha256 == PUBLISHED_SHA256 and weights.size == 513_028_808


def test_the_listed_files_are_what_the_loaders_need(stand_in: Path, tmp_path: Path) -> None:
    names = listed()
    everything = fingerprint(stand_in)
    assert everything["classes"] == ("Idefics3Processor", "GPT2Tokenizer", "Idefics3ForConditionalGeneration")
    assert fingerprint(copy_files(stand_in, names, tmp_path / "listed")) == everything, \
        "the manifest's files alone must load exactly as the full repository does"
    for name in names:  # and each listed file is needed: without it loading fails, or what the lab uses changes
        try:
            changed = fingerprint(copy_files(stand_in, [n for n in names if n != name], tmp_path / "minus"))
        except (OSError, ValueError, TypeError):
            continue
        assert changed != everything, f"{name} is listed but the loaders do without it"


def stand_in_dataset(weights: bytes) -> Dataset:
    """The real manifest with the stand-in's weights in place of the published ones (same repo, commit, files)."""
    raw = {"name": vlm_zero_shot.VLM_MODEL, "kind": "model", "description": "d", "licence": "Apache-2.0", "citation": "c",
           "used_by": [5], "profiles": ["cpu", "gpu"], "files": []}
    for entry in manifests.get_dataset(vlm_zero_shot.VLM_MODEL).files:
        hub = entry.huggingface
        assert hub is not None
        item: dict[str, Any] = {"name": entry.name, "huggingface": {"repo": hub.repo, "file": hub.file,
                                                                     "revision": hub.revision}}
        if entry.name == "model.safetensors":
            item |= {"sha256": sha256_hex(weights), "size": len(weights)}
        raw["files"].append(item)
    return parse_manifest(raw)


@pytest.fixture
def hub(stand_in: Path, isolated_dirs: Path, loopback_server: LoopbackServer,
        monkeypatch: pytest.MonkeyPatch) -> StandInHub:
    """Every upstream file of the stand-in at the pinned commit; the manifest names the stand-in's weights."""
    monkeypatch.setenv("HF_ENDPOINT", loopback_server.url(""))
    monkeypatch.setenv("HF_HOME", str(isolated_dirs / "hf-home"))
    served = StandInHub(loopback_server)
    for name in UPSTREAM:
        served.file(COMMIT, (stand_in / name).read_bytes(), name=name, lfs=name == "model.safetensors", repo=REPO)
    real = manifests.get_dataset
    patched = stand_in_dataset((stand_in / "model.safetensors").read_bytes())
    monkeypatch.setattr(manifests, "get_dataset",
                        lambda name, directory=None: patched if name == vlm_zero_shot.VLM_MODEL else real(name, directory))
    return served


def run_lab_cells(profile: str, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> dict[str, Any]:
    """Run lab 05's cells tagged ``vlm_zero_shot`` as they are, after what the lab's earlier cells would have made."""
    import matplotlib
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setitem(wu.multimodal.ZERO_SHOT_PROFILES, profile,
                        vlm_zero_shot.ZeroShotSettings(**{"n_real": 1, "n_cells": 6, "count_tokens": 4,
                                                      "describe_tokens": 4, **settings}))
    heldout = wu.cell_images.make_cells(24, seed=7, size=32)
    seen: list[int] = []

    def part_a_zero_shot(model: object, images: np.ndarray, prompts: list[str]) -> np.ndarray:
        seen.append(len(images))  # Part A's model is tested elsewhere (test_multimodal): here, a fixed answer
        return np.zeros(len(images), dtype=np.int64)

    monkeypatch.setattr(wu.multimodal, "zero_shot", part_a_zero_shot)
    namespace: dict[str, Any] = {
        "wu": wu, "np": np, "torch": torch, "plt": plt, "time": __import__("time"), "Any": Any,
        "AutoProcessor": AutoProcessor, "AutoModelForImageTextToText": AutoModelForImageTextToText,
        "PROFILE": profile, "device": torch.device("cpu"), "lab": wu.start_lab("05_multimodal_cells", profile),
        "heldout": heldout, "model": object(), "class_prompts": list(wu.cell_images.CLASS_PROMPTS.values()),
        "zeroshot_top1": 0.9, "vlm_heldout_accuracy": 0.8, "cfg": SimpleNamespace(num_hidden_layers=30, hidden_size=576),
        "_part_a_calls": seen,
    }
    cells = [cell for cell in json.loads(NOTEBOOK.read_text())["cells"]
             if "vlm_zero_shot" in cell.get("metadata", {}).get("tags", [])]
    assert len(cells) >= 4, "lab 05's zero-shot cells are tagged vlm_zero_shot"
    for cell in cells:
        exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:vlm_zero_shot", "exec"), namespace)  # noqa: S102
    plt.close("all")
    return namespace


def zero_shot_keys(lab: Any) -> dict[str, Any]:
    return {key: value for key, value in lab.metrics.items() if key.startswith("vlm_zero_shot")}


def test_the_lab_assesses_the_model_end_to_end_through_the_loopback_hub(
        hub: StandInHub, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    results = isolated_dirs / "build" / "results"
    results.mkdir(parents=True)
    (results / "01_monai_nuclei_segmentation.json").write_text(json.dumps(
        {"lab": "01_monai_nuclei_segmentation", "metrics": {"count_real": 118, "count_error_real_test": 0.12}}))
    # Lab 01's DSB2018 data set, as wu.try_fetch and wu.nuclei.dsb2018_pairs hand it over (both tested elsewhere).
    pairs = dsb_pairs(isolated_dirs / "dsb2018", 4)
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(wu, "try_fetch", lambda name, instead: asked.append((name, instead)) or isolated_dirs)
    monkeypatch.setattr(wu, "nuclei", SimpleNamespace(dsb2018_pairs=lambda root, split: pairs), raising=False)
    namespace = run_lab_cells("cpu", monkeypatch, n_real=3)
    out = capsys.readouterr().out
    assert asked == [("stardist_dsb2018", "counting on the packaged DSB2018 image only")]
    lab = namespace["lab"]
    keys = zero_shot_keys(lab)
    count_error, accuracy = keys["vlm_zero_shot_count_error"], keys["vlm_zero_shot_phenotype_accuracy"]
    assert isinstance(count_error, float) and 0 <= count_error <= 125, keys  # the packaged image holds 125 nuclei
    assert isinstance(accuracy, float) and accuracy in {k / 6 for k in range(7)}, keys
    assert keys["vlm_zero_shot_images"] == 3 + 6 + 6 and 0 <= keys["vlm_zero_shot_count_answered"] <= 1
    assert isinstance(keys["vlm_zero_shot_description_0"], str)
    assert namespace["_part_a_calls"] == [6], "Part A is scored on the same six cells"
    assert lab.data_sources == ["smolvlm_256m_instruct", "stardist_dsb2018_nucleus", "stardist_dsb2018"]
    assert "Idefics3ForConditionalGeneration" in out and "   answer " in out and "in its own words: " in out
    assert "lab 01's UNet found 118" in out and "lab 01's UNet is off by 12%" in out and "on its 3 real images" in out
    assert "DSB2018 image0.tif" in out and "DSB2018 image3.tif" in out
    assert "What a general VLM does and does not know about microscopy" in out
    assert (isolated_dirs / "build" / "figures" / "05_multimodal_cells" / "smolvlm_zero_shot.png").is_file()
    fetched = {name for name in UPSTREAM if hub.server.hits[f"/{REPO}/resolve/{COMMIT}/{name}"]}
    assert fetched == set(listed()), "the lab fetches the manifest's files and no others"
    before = hub.requests()
    run_lab_cells("cpu", monkeypatch, n_real=3)  # a second run reads the verified cache
    assert hub.requests() == before


@pytest.mark.parametrize("profile, offline", [("cpu", True), ("smoke", False)])
def test_offline_and_smoke_say_why_in_one_line_and_record_nothing(
        hub: StandInHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        profile: str, offline: bool) -> None:
    if offline:
        monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    namespace = run_lab_cells(profile, monkeypatch)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert "skipping the zero-shot SmolVLM section" in lines[0] and "make prefetch PROFILE=cpu" in lines[0]
    assert ("WORKSHOP_OFFLINE=1" in lines[0]) == offline and ("smoke profile" in lines[0]) == (not offline)
    assert zero_shot_keys(namespace["lab"]) == {} and namespace["lab"].data_sources == []
    assert hub.requests() == 0


@pytest.mark.parametrize("lying", [False, True], ids=["hub-announces-it", "hub-hides-it"])
def test_weights_that_do_not_match_the_published_sha256_are_refused(
        stand_in: Path, isolated_dirs: Path, loopback_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], lying: bool) -> None:
    monkeypatch.setenv("HF_ENDPOINT", loopback_server.url(""))
    monkeypatch.setenv("HF_HOME", str(isolated_dirs / "hf-home"))
    served = StandInHub(loopback_server)
    for name in UPSTREAM:
        served.file(COMMIT, (stand_in / name).read_bytes(), name=name, lfs=name == "model.safetensors", repo=REPO)
    route = f"/{REPO}/resolve/{COMMIT}/model.safetensors"
    if lying:  # the hub announces the published hash, then sends other bytes
        loopback_server.routes[route].headers["X-Linked-Etag"] = f'"{PUBLISHED_SHA256}"'
    assert wu.multimodal.fetch_vlm("cpu") is None  # the real manifest: the published sha256
    [line] = capsys.readouterr().out.splitlines()
    assert "model.safetensors failed its checksum check" in line and "skipping the zero-shot SmolVLM section" in line
    folder = isolated_dirs / "cache" / vlm_zero_shot.VLM_MODEL
    assert not (folder / "model.safetensors").exists() and not (folder / ".model.safetensors.record.json").exists()
    assert loopback_server.hits[route] == (3 if lying else 1), "an announced mismatch is refused before downloading"


def dsb_pairs(folder: Path, n: int) -> list[dict[str, str]]:
    """``n`` grey images with instance masks as DSB2018 ships them (uint16 TIFFs); pair k holds k + 1 nuclei."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for k in range(n):
        mask = np.zeros((20, 20), np.uint16)
        for j in range(k + 1):
            mask[2 + 3 * j: 4 + 3 * j, 2:5] = j + 1
        for kind, array in (("image", (mask > 0).astype(np.uint16) * 900), ("label", mask)):
            tifffile.imwrite(folder / f"{kind}{k}.tif", array)
        pairs.append({"image": str(folder / f"image{k}.tif"), "label": str(folder / f"label{k}.tif")})
    return pairs


def test_the_real_count_set_reads_dsb2018_pairs(tmp_path: Path) -> None:
    pairs = dsb_pairs(tmp_path, 5)
    items = wu.multimodal.real_count_set(3, pairs)
    assert [item.truth for item in items] == [125, 1, 5] and all(item.real for item in items)  # first, spread, last
    assert [item.truth for item in wu.multimodal.real_count_set(9, pairs)] == [125, 1, 2, 3, 4, 5]
    assert len(wu.multimodal.real_count_set(3)) == 1
    picture = wu.multimodal.to_pil(items[1].image)
    assert picture.mode == "RGB" and picture.size == (20, 20) and np.asarray(picture).max() == 255


def test_synthetic_sets_are_balanced_and_their_truth_is_by_construction() -> None:
    cells = wu.cell_images.make_cells(30, seed=3, size=16)
    counted = wu.multimodal.cell_count_set(cells, 5)
    assert [item.name.split()[1] for item in counted] == ["interphase", "elongated", "binucleated"] * 1 + \
        ["interphase", "elongated"]
    assert [item.truth for item in counted] == [1, 1, 2, 1, 1] and not any(item.real for item in counted)
    images, labels = wu.multimodal.phenotype_set(cells, 8)
    assert images.shape == (8, 16, 16, 3) and list(labels) == [0, 1, 2, 3, 4, 5, 0, 1]


@pytest.mark.parametrize("answer, number", [
    ("There are 12 nuclei in this image.", 12), ("I see two cells", 2), ("1,024", 1024), ("None.", 0),
    ("Twenty.", 20), ("A single cell with a nucleus.", None), ("", None), ("Stone and phone", None),
])
def test_parse_count_reads_the_first_number(answer: str, number: int | None) -> None:
    assert wu.multimodal.parse_count(answer) == number


def test_count_scores_and_what_it_knows_agree_with_the_figures() -> None:
    image = np.zeros((4, 4))
    items = [vlm_zero_shot.CountItem("a", image, 100, True), vlm_zero_shot.CountItem("b", image, 50, True),
             vlm_zero_shot.CountItem("c", image, 1, False), vlm_zero_shot.CountItem("d", image, 2, False)]
    scores = wu.multimodal.count_scores([10, None, 1, 2], items)
    assert scores == {"count_error": (90 + 50) / 4, "count_error_real": 70.0, "count_error_synthetic": 0.0,
                      "relative_error_real": 140 / 150, "answered": 0.75}
    lines = wu.multimodal.what_it_knows(scores, phenotype_accuracy=1 / 6, n_cells=12)
    assert "does not count dozens" in lines[0] and "tells one nucleus from two" in lines[1]
    assert "not one it reliably follows" in lines[2] and "not clearly above chance" in lines[3]
    assert "links some of the lab's words" in wu.multimodal.what_it_knows(scores, 0.9, 12)[3]
    only_synthetic = wu.multimodal.count_scores([3, 3], items[2:])
    assert np.isnan(only_synthetic["count_error_real"]) and only_synthetic["count_error_synthetic"] == 1.5
    assert len(wu.multimodal.what_it_knows(only_synthetic, 0.5, 6)) == 3


def test_the_module_does_not_shadow_part_as_zero_shot() -> None:
    # A submodule named like a package attribute replaces it on import: wu.multimodal.zero_shot is Part A's function.
    assert wu.multimodal.zero_shot.__module__ == "workshop_utils.multimodal.clip"


def test_try_fetch_says_what_the_lab_does_instead(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    assert wu.try_fetch("stardist_dsb2018", instead="counting on the packaged DSB2018 image only") is None
    [line] = capsys.readouterr().out.splitlines()
    assert "WORKSHOP_OFFLINE=1: counting on the packaged DSB2018 image only. To use the real data: make prefetch" in line


def test_a_model_that_does_not_load_ends_the_section_in_one_line(
        hub: StandInHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A processor that needs a package this lock lacks (as a newer upstream config could) is not a traceback."""
    from transformers import AutoProcessor

    def needs_more(*args: object, **kwargs: object) -> None:
        raise ImportError("Package `num2words` is required to run SmolVLM processor. Install it with `pip install num2words`.")

    monkeypatch.setattr(AutoProcessor, "from_pretrained", needs_more)
    namespace = run_lab_cells("cpu", monkeypatch)
    out = capsys.readouterr().out
    assert "SmolVLM did not load (ImportError: Package `num2words` is required" in out and "ends with Part B" in out
    assert zero_shot_keys(namespace["lab"]) == {} and namespace["lab"].data_sources == []
