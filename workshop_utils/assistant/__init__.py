"""The capstone's microscope assistant (``wu.assistant.<name>``): spoken question -> transcript -> intent ->
models on Triton -> answer.

Stages (each timed by the lab): ``asr`` (lab 04's NeMo model), ``intent`` (lab 05's SmolLM2 choosing among the
supported actions by log-likelihood, :mod:`~workshop_utils.assistant.llm_intent`, with keyword matching that
tolerates ASR spelling slips as the fallback, :mod:`~workshop_utils.assistant.intent`), ``segment`` (lab 02's ONNX nuclei model served by Triton,
lab 03), ``phenotype`` (lab 05's image-text model on crops around the nuclei found) and ``answer`` (text plus an
overlay, :mod:`~workshop_utils.assistant.answer`). The test fields with known phenotypes are
:mod:`~workshop_utils.assistant.field`.
"""

from workshop_utils.assistant.answer import CAPABILITIES, Answer, answer_text
from workshop_utils.assistant.field import (
    FIELD_TILE_PX,
    Field,
    calibrate_threshold,
    compose_field,
    overlay,
    require_phenotype_names,
    tile_crops,
)
from workshop_utils.assistant.intent import (
    ACTIONS,
    INTENT_KEYWORDS,
    KNOWN_QUESTIONS,
    SENTENCE_THRESHOLD,
    Intent,
    parse_intent,
)
from workshop_utils.assistant.llm_intent import INTENT_OPTIONS, LLM_MARGIN, IntentReading, read_intent

__all__ = [
    "ACTIONS",
    "CAPABILITIES",
    "FIELD_TILE_PX",
    "INTENT_KEYWORDS",
    "INTENT_OPTIONS",
    "KNOWN_QUESTIONS",
    "LLM_MARGIN",
    "SENTENCE_THRESHOLD",
    "Answer",
    "Field",
    "Intent",
    "IntentReading",
    "answer_text",
    "calibrate_threshold",
    "compose_field",
    "overlay",
    "parse_intent",
    "read_intent",
    "require_phenotype_names",
    "tile_crops",
]
