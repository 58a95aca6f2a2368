"""Lab 05 Part A's image-text model for cell phenotypes (``wu.multimodal.<name>``), used again by the capstone.

- :mod:`~workshop_utils.multimodal.text`: the frozen MiniLM text tower and its embedding cache;
- :mod:`~workshop_utils.multimodal.clip`: the image tower, checked wrappers around lab 05's own loss, schedule and
  training loop (``workshop_utils.lessons.lab05``, exported from the notebook), zero-shot and retrieval scores;
- :mod:`~workshop_utils.multimodal.artifact`: save and load the model, and rebuild it through the lesson's loop;
- :mod:`~workshop_utils.multimodal.classify`: name the phenotype of any crop with the saved model;
- :mod:`~workshop_utils.multimodal.checks`: argument checks shared with the VLM of Part B;
- :mod:`~workshop_utils.multimodal.llm`: Part B's pretrained language model (SmolLM2-135M-Instruct from its wheel's
  GGUF, converted once to safetensors in the data cache), also the capstone's intent reader;
- :mod:`~workshop_utils.multimodal.vlm_zero_shot`: the zero-shot assessment of a real VLM (SmolVLM-256M-Instruct through
  the data layer): its files, the count and phenotype images with their truth, parsing and scoring the answers.
"""

from workshop_utils.multimodal.artifact import ensure_cell_clip, load_cell_clip, save_cell_clip
from workshop_utils.multimodal.checks import (
    require_cells,
    require_image_batch,
    require_images,
    require_settings,
    require_tensor,
)
from workshop_utils.multimodal.classify import classify_cells, phenotype_probabilities
from workshop_utils.multimodal.clip import (
    ARTIFACT,
    CLIP_PROFILES,
    CellClip,
    ClipSettings,
    ImageTower,
    clip_loss,
    embed_images,
    embed_prompts,
    lr_at,
    require_clip_model,
    retrieval_recall,
    to_tensor,
    train_clip,
    zero_shot,
)
from workshop_utils.multimodal.llm import LLM_FILE, LLM_MODEL, llm_dir, load_llm
from workshop_utils.multimodal.text import TEXT_DIM, TEXT_MODEL, encode_texts, load_text_encoder, text_model_dir
from workshop_utils.multimodal.vlm_zero_shot import (
    NUCLEI_PER_CELL,
    VLM_MODEL,
    ZERO_SHOT_PROFILES,
    CountItem,
    ZeroShotSettings,
    cell_count_set,
    count_scores,
    fetch_vlm,
    parse_count,
    phenotype_set,
    real_count_set,
    to_pil,
    what_it_knows,
)

__all__ = [
    "ARTIFACT",
    "LLM_FILE",
    "LLM_MODEL",
    "CLIP_PROFILES",
    "NUCLEI_PER_CELL",
    "TEXT_DIM",
    "TEXT_MODEL",
    "VLM_MODEL",
    "ZERO_SHOT_PROFILES",
    "CellClip",
    "ClipSettings",
    "CountItem",
    "ImageTower",
    "ZeroShotSettings",
    "cell_count_set",
    "classify_cells",
    "clip_loss",
    "count_scores",
    "embed_images",
    "embed_prompts",
    "encode_texts",
    "ensure_cell_clip",
    "fetch_vlm",
    "llm_dir",
    "load_cell_clip",
    "load_llm",
    "load_text_encoder",
    "lr_at",
    "parse_count",
    "phenotype_probabilities",
    "phenotype_set",
    "real_count_set",
    "require_cells",
    "require_clip_model",
    "require_image_batch",
    "require_images",
    "require_settings",
    "require_tensor",
    "retrieval_recall",
    "save_cell_clip",
    "text_model_dir",
    "to_pil",
    "to_tensor",
    "train_clip",
    "what_it_knows",
    "zero_shot",
]
