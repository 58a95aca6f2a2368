"""The capstone's intent stage with a pretrained LLM: SmolLM2 scores each supported intent, the parser is the fallback.

The LLM reads the transcript at the end of a few-shot prompt and scores one answer word per action by
log-likelihood (lab 05's ``option_logprobs``, a constrained choice: it cannot answer anything else). Each score is
taken relative to the same word after an empty request, so a word that is merely likely does not win. When the
best action is not ahead of every other option ("other" included) by :data:`LLM_MARGIN`, the LLM is unsure and the
keyword parser (:func:`~workshop_utils.assistant.intent.parse_intent`) decides.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from workshop_utils.assistant.intent import Intent, parse_intent
from workshop_utils.core.inputs import bad_input, describe, require_number
from workshop_utils.lessons.lab05 import option_logprobs
from workshop_utils.multimodal.llm import load_llm

# Action -> the word the LLM answers with; "unknown" is the way out for a request that is none of them.
INTENT_OPTIONS: dict[str, str] = {"count": " count", "dividing": " dividing", "describe": " describe", "unknown": " other"}
# A few-shot prompt (none of these is a question the lab asks): a small LLM follows examples better than orders.
EXAMPLES = (("how many cells can you see", "count"), ("is any cell in mitosis", "dividing"),
            ("what does this picture show", "describe"), ("what time is it", "other"),
            ("give me the number of nuclei", "count"), ("summarise the slide", "describe"))
FEW_SHOT = "".join(f"Request: {request}\nAction: {action}\n" for request, action in EXAMPLES)
QUESTION = FEW_SHOT + "Request: {transcript}\nAction:"
NEUTRAL = FEW_SHOT + "Request:\nAction:"  # no request at all: the options' prior, subtracted ("calibrate before use")
LLM_MARGIN = 1.0  # nats; measured on the scripted and held-out questions (lab 06 records llm_intent_agreement)


@dataclass(frozen=True)
class IntentReading:
    """What the LLM chose and how sure it was, what the parser said, and the intent the assistant acts on."""

    llm_action: str  # the LLM's top option, "unknown" included
    margin: float  # nats between its top option and the next one
    parser: Intent
    intent: Intent  # the LLM's choice when sure and not "unknown", else the parser's

    @property
    def decided_by(self) -> str:
        """``"llm"`` or ``"parser"``."""
        return "llm" if self.intent.matched[:1] == ("llm",) else "parser"


@functools.lru_cache(maxsize=4)
def _neutral_scores(options: tuple[str, ...]) -> torch.Tensor:
    """Each option's log-probability after the neutral question: the same for every transcript, so once."""
    tokenizer, llm = load_llm()
    return option_logprobs(llm, tokenizer, NEUTRAL, list(options))


def read_intent(transcript: str, margin: float = LLM_MARGIN) -> IntentReading:
    """The intent of a transcript, chosen by the LLM among the supported actions; the parser when it is unsure.

    Args:
        transcript: one transcript, e.g. ``wu.asr.transcribe([clip])[0]``.
        margin: how far (nats) the LLM's best action must lead every other option to be taken.

    Returns:
        An :class:`IntentReading`; its ``intent`` is what :func:`~workshop_utils.assistant.answer_text` takes.

    Example:
        >>> reading = wu.assistant.read_intent("could you count the nuclei for me")
        >>> reading.intent.action
        'count'
    """
    if not isinstance(transcript, str):
        raise bad_input("read_intent", "the transcript as a string", describe(transcript),
                        "Pass one transcript, e.g. asr.transcribe([clip])[0].")
    margin = require_number(margin, "read_intent", "margin", minimum=0.0)
    parser = parse_intent(transcript)
    if not transcript.strip():
        return IntentReading("unknown", 0.0, parser, parser)
    tokenizer, llm = load_llm()
    actions, options = list(INTENT_OPTIONS), list(INTENT_OPTIONS.values())
    asked = QUESTION.format(transcript=" ".join(transcript.lower().split()))
    scores = option_logprobs(llm, tokenizer, asked, options) - _neutral_scores(tuple(options))
    ranked = scores.argsort(descending=True).tolist()
    lead = float(scores[ranked[0]] - scores[ranked[1]])
    best = actions[ranked[0]]
    if best != "unknown" and lead >= margin:
        return IntentReading(best, lead, parser, Intent(best, ("llm", INTENT_OPTIONS[best]), lead))
    return IntentReading(best, lead, parser, parser)
