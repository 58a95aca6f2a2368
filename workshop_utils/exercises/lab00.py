"""Lab 00's exercise: how many floating-point operations a square matrix multiply performs."""

from __future__ import annotations

from typing import Any

from workshop_utils.exercises import as_answer_number, exercise, not_a_number

MATMUL_N = 1024


@exercise("00-matmul-flops", "An n×n by n×n product does n³ multiply-adds, 2·n³ FLOPs: that is what TFLOP/s counts.")
def matmul_flops(value: Any) -> str | None:
    """The FLOPs of a 1024×1024 @ 1024×1024 matmul."""
    expected = 2 * MATMUL_N**3
    got = as_answer_number(value)
    if got is None:
        return not_a_number(value, "flops = 2 * n**3")
    if got == expected:
        return None
    if got == MATMUL_N**3:
        return "you counted multiply-adds; each is two operations (a multiply and an add)."
    if got == 2 * MATMUL_N**2 or got == MATMUL_N**2:
        return "that is the size of the output; each of its n² entries needs a dot product of length n."
    return f"expected 2·n³ for n={MATMUL_N}; {got:.3g} is off by a factor of {got / expected:.3g}."
