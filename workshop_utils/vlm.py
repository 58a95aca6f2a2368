"""A tiny vision-language captioner with the shape of LLaVA-style VLMs: image encoder -> MLP projector -> LLM.

The image encoder is the (frozen) CNN tower of the lab's image-text model; its feature map becomes a sequence of
image tokens, an MLP projects them to the language model's width, and a small decoder-only transformer
(``transformers`` ``LlamaForCausalLM``, random init) reads them followed by the caption and learns to continue it. The training loop is lab 05's own cell
(``workshop_utils.lessons.lab05.train_captioner``); :func:`train_vlm` checks its arguments and calls it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from workshop_utils import cell_images as phenotypes
from workshop_utils.cell_images import CellSet
from workshop_utils.core.inputs import (
    as_array,
    bad_input,
    describe,
    require_instance,
    require_int,
    require_same_length,
    require_texts,
)
from workshop_utils.lessons.lab05 import train_captioner
from workshop_utils.multimodal.checks import (
    require_cells,
    require_image_batch,
    require_images,
    require_settings,
    require_tensor,
)
from workshop_utils.multimodal.clip import ImageTower, to_tensor

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"


def _require_text(text: Any, where: str) -> str:
    if not isinstance(text, str):
        raise bad_input(where, "text as one string", describe(text),
                        "Pass a single caption; for several use tokenizer.batch([...]) or a loop.")
    return text


class WordTokenizer:
    """Whole-word vocabulary of the caption templates (real VLMs use the LLM's sub-word tokenizer).

    Ids 0-3 are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; ``encode``, ``batch`` and ``decode`` convert captions.

    Args:
        texts: the captions whose words make the vocabulary, e.g. ``wu.cell_images.all_captions()``.

    Example:
        >>> tokenizer = wu.vlm.WordTokenizer(wu.cell_images.all_captions())
    """

    def __init__(self, texts: Sequence[str]) -> None:
        texts = require_texts(texts, "WordTokenizer", "texts")
        words = sorted({w for t in texts for w in self.split(t)})
        self.itos = [PAD, BOS, EOS, UNK, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @staticmethod
    def split(text: str) -> list[str]:
        """The words of ``text``, with commas as words of their own."""
        return _require_text(text, "WordTokenizer.split").replace(",", " ,").split()

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """``<bos> w1 … wn <eos>`` as ids."""
        return [1, *(self.stoi.get(w, 3) for w in self.split(_require_text(text, "WordTokenizer.encode"))), 2]

    def batch(self, texts: Sequence[str]) -> torch.Tensor:
        """Right-padded (B, T) id tensor."""
        ids = [self.encode(t) for t in require_texts(texts, "WordTokenizer.batch", "texts", allow_blank=True)]
        out = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
        for row, seq in enumerate(ids):
            out[row, : len(seq)] = torch.tensor(seq)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """The words of ``ids`` up to the first ``<eos>``, without the special tokens."""
        if isinstance(ids, (list, tuple)) and not ids:
            return ""
        array = as_array(ids, "WordTokenizer.decode", "ids", ndim=1, kind="integer", allow_empty=True,
                         fix="Pass one caption's token ids, e.g. tokenizer.encode(text) or row.tolist().")
        if array.size and (array.min() < 0 or array.max() >= len(self)):
            raise bad_input("WordTokenizer.decode", f"ids between 0 and {len(self) - 1} (this vocabulary)",
                            f"ids from {array.min()} to {array.max()}", "Decode with the tokenizer that made the ids.")
        words = []
        for i in ids:
            if i == 2:
                break
            if i > 3:
                words.append(self.itos[i])
        return " ".join(words).replace(" ,", ",")


@dataclass(frozen=True)
class VlmSettings:
    """Size of the language model and its training (steps, batch, peak learning rate)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    steps: int = 250
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    threads: int | None = None


VLM_PROFILES: dict[str, VlmSettings] = {
    "smoke": VlmSettings(steps=160, lr=3e-3, threads=1),
    "cpu": VlmSettings(steps=500),
    "gpu": VlmSettings(hidden=256, layers=4, steps=2000, batch=256),
}


class TinyVLM(nn.Module):
    """Frozen image tower -> 2-layer MLP projector -> LlamaForCausalLM over [image tokens, caption tokens].

    The tower is copied and frozen, so training the captioner leaves the CLIP model untouched; only the projector
    and the language model learn. ``generate(features)`` decodes captions greedily.

    Args:
        tower: the trained image encoder of lab 05's CLIP model, ``model.tower``.
        tokenizer: the :class:`WordTokenizer` of the captions.
        settings: the language model's size and training, e.g. ``wu.vlm.VLM_PROFILES[PROFILE]``.

    Example:
        >>> captioner = wu.vlm.TinyVLM(model.tower, tokenizer, vlm_settings).to(device)
    """

    def __init__(self, tower: ImageTower, tokenizer: WordTokenizer, settings: VlmSettings) -> None:
        super().__init__()
        where = "TinyVLM"
        require_instance(tower, ImageTower, where, "tower", "Pass the trained CLIP model's tower: model.tower.")
        require_instance(tokenizer, WordTokenizer, where, "tokenizer", "Pass vlm.WordTokenizer(ph.all_captions()).")
        require_instance(settings, VlmSettings, where, "settings",
                          "Pass vlm.VLM_PROFILES[PROFILE] (or a dataclasses.replace of it).")
        for name in ("hidden", "layers", "heads"):
            require_int(getattr(settings, name), where, f"settings.{name}", minimum=1)
        if settings.hidden % settings.heads:
            raise bad_input(where, "settings.hidden divisible by settings.heads", f"hidden={settings.hidden}, "
                            f"heads={settings.heads}", "Pick a width that splits evenly, e.g. hidden=128, heads=4.")
        from transformers import LlamaConfig, LlamaForCausalLM

        self.tokenizer = tokenizer
        self.vision = copy.deepcopy(tower).requires_grad_(False).eval()  # the CLIP model stays untouched
        self.projector = nn.Sequential(nn.Linear(tower.out_channels, settings.hidden), nn.GELU(),
                                       nn.Linear(settings.hidden, settings.hidden))
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=settings.hidden,
                             intermediate_size=2 * settings.hidden, num_hidden_layers=settings.layers,
                             num_attention_heads=settings.heads, num_key_value_heads=settings.heads,
                             max_position_embeddings=128, tie_word_embeddings=True,
                             pad_token_id=0, bos_token_id=1, eos_token_id=2)
        self.llm = LlamaForCausalLM(config)

    @torch.no_grad()
    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen encoder output as a token sequence (B, h*w, channels)."""
        require_image_batch(x, "TinyVLM.image_features")
        return self.vision(x).flatten(2).transpose(1, 2).float()

    def _check(self, where: str, features: Any, ids: Any = None) -> None:
        require_tensor(features, where, "features", 3, width=cast(nn.Linear, self.projector[0]).in_features,
                        fix="Pass image tokens from vlm.features_of(captioner, images).")
        if ids is not None:
            ok = isinstance(ids, torch.Tensor) and ids.ndim == 2 and ids.numel() > 0 and ids.dtype == torch.long
            if not ok:
                raise bad_input(where, "ids as a non-empty (B, T) torch.long tensor", describe(ids),
                                "Pass token ids from captioner.tokenizer.batch(captions).")
            require_same_length(where, features=features, ids=ids)

    def prefix(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Projected image tokens followed by the text tokens' embeddings (B, n_img + T, hidden)."""
        self._check("TinyVLM.prefix", features, ids)
        return torch.cat([self.projector(features), self.llm.get_input_embeddings()(ids)], dim=1)

    def loss(self, features: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy on the caption only (image tokens and padding are not predicted)."""
        self._check("TinyVLM.loss", features, ids)
        labels = torch.cat([torch.full(features.shape[:2], -100, dtype=torch.long, device=ids.device),
                            ids.masked_fill(ids == 0, -100)], dim=1)
        return self.llm(inputs_embeds=self.prefix(features, ids), labels=labels).loss

    @torch.no_grad()
    def generate(self, features: torch.Tensor, max_new_tokens: int = 24) -> list[str]:
        """Greedy decoding with a KV cache: feed the most likely next word back until every caption ends."""
        self._check("TinyVLM.generate", features)
        require_int(max_new_tokens, "TinyVLM.generate", "max_new_tokens", minimum=1)
        bos = torch.full((len(features), 1), 1, dtype=torch.long, device=features.device)
        out = self.llm(inputs_embeds=self.prefix(features, bos), use_cache=True)
        done = torch.zeros(len(features), dtype=torch.bool, device=features.device)
        words = []
        for _ in range(max_new_tokens):
            nxt = out.logits[:, -1].argmax(dim=-1).masked_fill(done, 0)
            words.append(nxt)
            done |= nxt == 2
            if done.all():
                break
            embeds = self.llm.get_input_embeddings()(nxt[:, None])
            out = self.llm(inputs_embeds=embeds, cache=out.cache, use_cache=True)
        return [self.tokenizer.decode(row.tolist()) for row in torch.stack(words, dim=1).cpu()]


def _require_vlm(vlm: Any, where: str) -> TinyVLM:
    return require_instance(vlm, TinyVLM, where, "vlm", "Pass the captioner: vlm.TinyVLM(tower, tokenizer, settings).")


def parameter_counts(vlm: TinyVLM) -> dict[str, int]:
    """Parameters per part: vision encoder, projector, language model, total.

    Args:
        vlm: the :class:`TinyVLM` captioner.

    Returns:
        ``{"vision": n, "projector": n, "llm": n, "total": n}``, frozen parameters included.

    Example:
        >>> counts = wu.vlm.parameter_counts(captioner)
    """
    _require_vlm(vlm, "parameter_counts")
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    parts = {"vision": count(vlm.vision), "projector": count(vlm.projector), "llm": count(vlm.llm)}
    return {**parts, "total": sum(parts.values())}


def features_of(vlm: TinyVLM, images: np.ndarray, batch: int = 512) -> torch.Tensor:
    """Image tokens for a set of images, computed once (the encoder is frozen).

    Args:
        vlm: the :class:`TinyVLM` captioner.
        images: (N, H, W, 3) float images in [0, 1], e.g. ``cells.images``.
        batch: images encoded per forward pass (a memory bound, not a result setting).

    Returns:
        A float32 tensor (N, h*w, channels) of image tokens on the captioner's device.

    Example:
        >>> captions = captioner.generate(wu.vlm.features_of(captioner, heldout.images))
    """
    _require_vlm(vlm, "features_of")
    images = require_images(images, "features_of")
    batch = require_int(batch, "features_of", "batch", minimum=1)
    return _features(vlm, images, batch)


def _features(vlm: TinyVLM, images: np.ndarray, batch: int = 512) -> torch.Tensor:
    device = next(vlm.projector.parameters()).device
    return torch.cat([vlm.image_features(to_tensor(images[i:i + batch], device))
                      for i in range(0, len(images), batch)])


def train_vlm(vlm: TinyVLM, cells: CellSet, settings: VlmSettings) -> dict[str, Any]:
    """Train projector + LLM to caption ``cells`` with lab 05's loop (``lessons.lab05.train_captioner``).

    Args:
        vlm: the :class:`TinyVLM` to train, on its device.
        cells: the captioned training cells, from :func:`make_cells`.
        settings: steps, batch size, peak learning rate, seed and CPU threads, e.g. ``wu.vlm.VLM_PROFILES[PROFILE]``.

    Returns:
        ``{"step": [...], "loss": [...], "train_s": s}``: the loss every 10 steps (and the last), and wall time (s).

    Example:
        >>> vlm_history = wu.vlm.train_vlm(captioner, train, vlm_settings)
    """
    _require_vlm(vlm, "train_vlm")
    require_cells(cells, "train_vlm")
    require_settings(settings, VlmSettings, "train_vlm", "VLM_PROFILES")
    images = require_images(cells.images, "train_vlm")
    torch.manual_seed(settings.seed)
    device = next(vlm.projector.parameters()).device
    threads_before = torch.get_num_threads()
    if settings.threads and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    try:
        features, ids = _features(vlm, images), vlm.tokenizer.batch(cells.captions).to(device)
        history: dict[str, Any] = dict(train_captioner(vlm, features, ids, steps=settings.steps,
                                                       batch=settings.batch, lr=settings.lr, seed=settings.seed))
        history["train_s"] = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads_before)
    return history


def caption_class(caption: str) -> str | None:
    """The phenotype a caption names (one of its training phrases), or None when it names none or several.

    Args:
        caption: one caption, e.g. generated by the captioner.

    Returns:
        A name from ``wu.cell_images.PHENOTYPES``, or None.

    Example:
        >>> wu.vlm.caption_class("a dividing cell in metaphase, fluorescent stain, 40x magnification")
        'mitotic'
    """
    if not isinstance(caption, str):
        raise bad_input("caption_class", "caption as one string", describe(caption),
                        "Pass one caption; for a list use [vlm.caption_class(c) for c in captions].")
    found = [p for p in phenotypes.PHENOTYPES if any(phrase in caption for phrase in phenotypes.PHRASES[p])]
    return found[0] if len(found) == 1 else None


def caption_class_accuracy(captions: Sequence[str], labels: Sequence[int] | np.ndarray) -> float:
    """Fraction of captions whose phenotype phrase is the image's true phenotype.

    Args:
        captions: one caption per image (an empty caption counts as wrong).
        labels: the images' phenotype indices into ``PHENOTYPES`` (``cells.labels``, not names).

    Returns:
        The accuracy in [0, 1]; a caption naming no phenotype or several counts as wrong.

    Example:
        >>> caption_accuracy = wu.vlm.caption_class_accuracy(captions, heldout.labels)
    """
    where = "caption_class_accuracy"
    captions = require_texts(captions, where, "captions", allow_blank=True)  # a generated caption may be empty
    labels = as_array(labels, where, "labels", ndim=1, kind="integer",
                      fix="Pass phenotype indices (cells.labels), not names (cells.label_names).")
    require_same_length(where, captions=captions, labels=labels)
    if labels.min() < 0 or labels.max() >= len(phenotypes.PHENOTYPES):
        raise bad_input(where, f"labels between 0 and {len(phenotypes.PHENOTYPES) - 1} (indices into PHENOTYPES)",
                        f"labels from {labels.min()} to {labels.max()}", "Pass cells.labels of a ph.make_cells set.")
    hits = [caption_class(c) == phenotypes.PHENOTYPES[y] for c, y in zip(captions, labels, strict=True)]
    return float(np.mean(hits)) if hits else 0.0
