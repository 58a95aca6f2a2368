"""Lab 05's exercise: write the symmetric InfoNCE (CLIP) loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workshop_utils.core.inputs import describe
from workshop_utils.exercises import as_answer_number, exercise


def _reference(image_emb: Any, text_emb: Any, temperature: float) -> float:
    import torch
    import torch.nn.functional as F

    logits = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T / temperature
    target = torch.arange(len(logits))
    return float((F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2)


@exercise("05-infonce", "Each image must pick its caption among the batch's texts and each caption its image: "
                        "that symmetric classification is the whole CLIP objective.")
def infonce(value: Callable[..., Any]) -> str | None:
    """``value`` is a function ``(image_emb, text_emb, temperature) -> scalar loss``."""
    import torch
    import torch.nn.functional as F

    if not callable(value):
        return f"expected the function itself (clip_loss), not its result; got {describe(value)}."
    generator = torch.Generator().manual_seed(5)
    images, texts = torch.randn(8, 16, generator=generator) * 3, torch.randn(8, 16, generator=generator) * 3
    texts[:4] = images[:4] + 0.5 * texts[:4]  # some pairs match, so the two directions differ
    temperature = 0.1
    try:
        result = value(images.clone(), texts.clone(), temperature)
    except Exception as exc:  # the attendee's own code: report its failure as a hint
        return (f"clip_loss(image_emb, text_emb, 0.1) on (8, 16) embeddings raised {type(exc).__name__}: {exc}; "
                "expected a function of two (N, D) tensors and a float that returns a scalar loss.")
    got = as_answer_number(result)
    if got is None:
        return f"clip_loss returned {describe(result)}; expected a scalar loss (a 0-d tensor or a float), finite."
    expected = _reference(images, texts, temperature)
    if abs(got - expected) < 1e-4 * max(1.0, abs(expected)):
        return None
    target = torch.arange(8)
    logits = F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T / temperature
    if abs(got - float(F.cross_entropy(logits, target))) < 1e-4:
        return "that is only the image-to-text direction; average it with the text-to-image one (logits.T)."
    if abs(got - float(F.cross_entropy(logits.T, target))) < 1e-4:
        return "that is only the text-to-image direction; average it with the image-to-text one."
    if abs(got - _reference(images, texts, 1.0)) < 1e-4:
        return "divide the cosine similarities by the temperature before the softmax."
    raw = images @ texts.T / temperature
    if abs(got - float((F.cross_entropy(raw, target) + F.cross_entropy(raw.T, target)) / 2)) < 1e-3:
        return "normalise both embeddings to unit length first, so the dot product is a cosine similarity."
    return f"expected {expected:.4f}, got {got:.4f}. Logits = cos(image_i, text_j) / temperature; targets = arange(N)."
