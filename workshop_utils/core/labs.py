"""The labs in one table: what each needs, the metrics its summary shows and its smoke-profile time budget.

The runner, the health report, the doctor and the tests all read this one registry; a new lab adds a row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from workshop_utils.core.inputs import bad_input, describe, require_number

# A smoke run fails on time only past this multiple of its budget: a runaway, never a busy neighbour.
RUNAWAY_FACTOR = 3.0


@dataclass(frozen=True)
class Lab:
    """One lab notebook: ``notebooks/<stem>.ipynb``."""

    stem: str
    needs: tuple[str, ...]  # doctor's import checks this lab depends on
    key_metrics: tuple[str, ...]  # the figures the run summary shows
    smoke_budget_s: float  # whole notebook in the smoke profile, kernel start included, on 2 quiet cores


LABS: dict[str, Lab] = {lab.stem: lab for lab in (
    Lab("00_environment_check", ("torch",), ("matmul_gflops", "matmul_peak_fraction", "gpu_count"), 60),
    Lab("01_monai_nuclei_segmentation", ("torch", "monai"),
        ("dice_synthetic_heldout", "dice_real", "count_real", "count_true"), 90),
    Lab("02_tensorrt_acceleration", ("torch", "monai", "onnxruntime", "onnx export (onnxscript)"),
        ("parity_max_abs_diff", "speedup_ort_b1", "speedup_ort_b8", "speedup_trt_fp16_b8"), 90),
    Lab("03_triton_serving", ("onnxruntime", "pytriton (Triton server)", "tritonclient"),
        ("outputs_match", "batching_gain_fixed", "rps_real_c8", "failed_requests"), 120),
    Lab("04_nemo_lab_notes_asr", ("torch", "nemo asr"), ("wer_heldout", "cer_heldout", "train_s"), 120),
    Lab("05_multimodal_cells", ("torch", "text tower (sentence-transformers, MiniLM)", "language model (SmolLM2 GGUF)"),
        ("zeroshot_top1_heldout", "vlm_heldout_accuracy", "vlm_blind_accuracy", "llm_mcq_correct"), 150),
    Lab("06_capstone_assistant", ("torch", "monai", "nemo asr", "pytriton (Triton server)", "tritonclient",
                                  "text tower (sentence-transformers, MiniLM)", "language model (SmolLM2 GGUF)"),
        ("answers_correct", "questions", "end_to_end_ms_p50", "llm_intent_agreement", "intent_ms_p50"), 180),
)}


def smoke_budget_s(stem: str) -> float | None:
    """The smoke-profile budget of lab ``stem`` in seconds, or None for a notebook outside the registry."""
    if not isinstance(stem, str) or not stem:
        raise bad_input("smoke_budget_s", "stem as a lab notebook's name without .ipynb", describe(stem),
                        "Pass e.g. '01_monai_nuclei_segmentation'.")
    lab = LABS.get(stem)
    return lab.smoke_budget_s if lab else None


def is_over_budget(wall_s: float, budget_s: float | None) -> bool:
    """True when a run took longer than its budget (no budget: never); flagged in reports, never a failure."""
    wall_s = require_number(wall_s, "is_over_budget", "wall_s", minimum=0.0)
    return budget_s is not None and wall_s > require_number(budget_s, "is_over_budget", "budget_s", minimum=0.0)


def is_runaway(wall_s: float, budget_s: float | None) -> bool:
    """True when a run took more than RUNAWAY_FACTOR times its budget (no budget: never)."""
    wall_s = require_number(wall_s, "is_runaway", "wall_s", minimum=0.0)
    if budget_s is None:
        return False
    return wall_s > RUNAWAY_FACTOR * require_number(budget_s, "is_runaway", "budget_s", minimum=0.0, strict=True)
