"""Which numeric precision training uses: ``train.precision: auto`` picks bf16 only where it is native.

bf16 autocast (Lightning's ``bf16-mixed``: matrix products in bfloat16, weights, optimiser state and
reductions in float32) halves the bytes moved and runs on the tensor cores of recent GPUs and the
bf16 units of recent CPUs (AVX512-BF16, AMX). Elsewhere bf16 is emulated and slower than float32,
so ``auto`` resolves to:

- ``bf16-mixed`` on a CUDA GPU that supports bf16 (Ampere and newer);
- ``bf16-mixed`` on a CPU whose flags include ``avx512_bf16`` or ``amx_bf16`` (Linux /proc/cpuinfo);
- ``32-true`` everywhere else.

Evaluation (per-epoch and final) always runs in float32: autocast covers only the training step.
"""

from __future__ import annotations

from functools import lru_cache

import torch

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU advertises bf16 arithmetic (Linux only; False where it cannot tell)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: str) -> str:
    """The Lightning precision string to train with on ``device`` (``cpu`` or ``cuda``)."""
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"


def describe_precision(precision: str, device: str) -> str:
    """One line saying which precision training will use and, for ``auto``, why: a run's figures
    depend on it, so ``aqakit train`` prints it before training."""
    resolved = resolve_precision(precision, device)
    if precision != "auto":
        return f"precision {resolved} (train.precision)"
    if device == "cuda":
        reason = "this GPU supports bf16" if resolved == "bf16-mixed" else "this GPU has no bf16"
    else:
        reason = "this CPU has native bf16" if resolved == "bf16-mixed" else "this CPU has no native bf16"
    hint = "; --set train.precision=32-true for float32" if resolved == "bf16-mixed" else ""
    return f"precision {resolved} (train.precision auto: {reason}{hint})"
