"""Where tensors run and in which precision: shared by training, prediction, chat and serving."""
from __future__ import annotations

import contextlib
import os

import torch


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_fast_bf16() -> bool:
    """AMX tiles or AVX512-BF16: bf16 matmuls run several times faster than fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(precision: str, device: torch.device, bf16_on_cpu: bool = True) -> str:
    """'auto' picks bf16 where the hardware runs it fast (AMX/AVX512-BF16 CPUs, bf16 GPUs), else fp32;
    ``bf16_on_cpu=False`` (image backbones: no faster there, and they learn worse) keeps fp32 on the CPU."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if bf16_on_cpu and cpu_has_fast_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def free_memory_bytes(device: torch.device) -> int:
    """Memory a new allocation can get: on Linux MemAvailable, which counts the page cache the kernel gives
    back (MemFree does not: after reading a few GB of files it says 1 GB of 24 is free)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            return int(next(line for line in meminfo if line.startswith("MemAvailable:")).split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
