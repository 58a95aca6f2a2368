"""Lab 05's lesson code, copied by ``make export`` from notebooks/05_multimodal_cells.ipynb.

Do not edit: change the notebook's ``#| export`` cells and run ``make export``; tests/test_lessons.py
fails while this file and the notebook differ.
"""
# ruff: noqa: E402, I001  (each cell brings its own imports, where the notebook shows them)

from __future__ import annotations


import torch
import torch.nn.functional as F


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: torch.Tensor | float,
              targets: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over the batch's (N, N) cosine similarities divided by ``temperature``.

    ``targets``: None (pair i matches pair i), N class indices, or an (N, N) matrix of target probabilities.
    """
    if targets is None:
        targets = torch.arange(len(image_emb), device=image_emb.device)
    logits = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T / temperature
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


import math
from typing import Any


def warmup_cosine(step: int, total: int, warmup_frac: float = 0.1) -> float:
    """Learning-rate factor at ``step`` of ``total``: linear warm-up over ``warmup_frac`` of them, then cosine to 0."""
    warmup = max(1, int(total * warmup_frac))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def same_caption_targets(keys: torch.Tensor) -> torch.Tensor:
    """(N, N) target probabilities: row i is shared equally among the pairs whose key (description) equals pair i's."""
    same = (keys[:, None] == keys[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


def train_contrastive(model: Any, pixels: torch.Tensor, text_table: torch.Tensor, keys: torch.Tensor, *,
                      steps: int, batch: int, lr: float, warmup_frac: float, seed: int,
                      log_every: int = 25) -> dict[str, list[float]]:
    """Train ``model`` (a CellClip) on images ``pixels`` against their frozen caption embeddings ``text_table``.

    Returns the history: ``{"step", "loss", "lr"}`` every ``log_every`` steps and at the last one.
    """
    device = pixels.device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda s: warmup_cosine(s, steps, warmup_frac))
    generator = torch.Generator().manual_seed(seed)  # the same batches and augmentations on every run
    if device.type == "cuda":
        amp = torch.autocast("cuda", dtype=torch.bfloat16)  # matrix products in bfloat16 on Tensor Cores
    else:
        amp = torch.autocast("cpu", enabled=False)  # float32 throughout on the CPU
    history: dict[str, list[float]] = {"step": [], "loss": [], "lr": []}
    model.train()  # BatchNorm uses (and updates) batch statistics
    for step in range(steps):
        idx = torch.randint(len(pixels), (batch,), generator=generator).to(device)
        x = pixels[idx]
        if torch.rand(1, generator=generator).item() < 0.5:  # flips and 90-degree turns keep the phenotype
            x = x.flip(3)
        x = torch.rot90(x, int(torch.randint(4, (1,), generator=generator)), dims=(2, 3))
        with amp:
            image_emb = model.encode_image(x.contiguous(memory_format=torch.channels_last))  # image tower + head
            text_emb = model.encode_text(text_table[idx])  # the frozen text tower's embeddings of these captions
            temperature = 1 / model.logit_scale.exp().clamp(max=100)  # learned; stored as log(1/T)
            loss = clip_loss(image_emb, text_emb, temperature, targets=same_caption_targets(keys[idx]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % log_every == 0 or step == steps - 1:
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            history["lr"].append(optimizer.param_groups[0]["lr"])  # the rate this step used
        scheduler.step()
    model.eval()
    return history


from collections.abc import Sequence


@torch.no_grad()
def option_logprobs(llm: Any, tokenizer: Any, prompt: str, options: Sequence[str]) -> torch.Tensor:
    """Log-probability of each option's tokens following ``prompt`` (summed over its tokens), shape (len(options),).

    The prompt goes through the model once; its key-value cache is then shared by all options, which go through
    in one right-padded batch. Nothing adds special tokens (the chat template holds them already).
    """
    device = next(llm.parameters()).device
    prefix = tokenizer(prompt, add_special_tokens=False).input_ids
    rows = [tokenizer(option, add_special_tokens=False).input_ids for option in options]
    out = llm(input_ids=torch.tensor([prefix], device=device), use_cache=True)
    first = out.logits[0, -1].float().log_softmax(-1).cpu()  # the prompt's last position predicts each first token
    cache = out.cache
    cache.batch_repeat_interleave(len(rows))  # one copy of the prompt's keys and values per option
    ids = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), len(prefix) + ids.shape[1], dtype=torch.long)
    mask[:, : len(prefix)] = 1
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, len(prefix): len(prefix) + len(row)] = 1
    logprobs = llm(input_ids=ids.to(device), attention_mask=mask.to(device),
                   cache=cache).logits.float().log_softmax(-1).cpu()
    scores = []
    for i, row in enumerate(rows):  # position t of the options' batch predicts token t + 1
        scores.append(first[row[0]] + logprobs[i, torch.arange(len(row) - 1), torch.tensor(row[1:], dtype=torch.long)].sum())
    return torch.stack(scores)
