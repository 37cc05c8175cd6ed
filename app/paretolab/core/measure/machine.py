"""What this machine is: CPU, instruction sets that decide whether int8 can pay off, runtimes."""

from __future__ import annotations

import functools
import os
import platform
import socket
from pathlib import Path

# Instruction sets that matter for low-precision inference on x86 CPUs.
_CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",
                 "amx_bf16", "amx_fp16")


def _cpu_flags() -> tuple[str, set[str]]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.processor() or platform.machine(), set()
    model, flags = "", set[str]()
    for line in cpuinfo.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model or platform.machine(), flags


@functools.cache
def machine_info() -> dict:
    import onnxruntime
    import openvino
    import psutil
    import torch

    model, flags = _cpu_flags()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cpu_features": [f for f in _CPU_FEATURES if f in flags],
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "openvino": openvino.__version__.split("-")[0],
    }


BF16_FEATURES = ("avx512_bf16", "amx_bf16")
FP16_FEATURES = ("avx512_fp16", "amx_fp16")


def this_process() -> dict:
    """Which machine and process did something (built or measured a variant): a cluster's record."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def cpu_features() -> set[str]:
    """The instruction sets of `_CPU_FEATURES` this CPU has (tests substitute them through `_cpu_flags`)."""
    return set(machine_info().get("cpu_features", []))


def has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere OpenVINO would emulate it, slower."""
    return bool(cpu_features() & set(BF16_FEATURES))
