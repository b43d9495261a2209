"""Which device a run uses (CUDA, then Apple MPS, then the CPU), its default dtype, and its free memory.

torch is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DeviceUnavailableError

if TYPE_CHECKING:
    import torch

CPU_FALLBACK_NOTICE = "no GPU found (CUDA or MPS): running on the CPU, which is much slower"


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(requested: str) -> tuple[str, str | None]:
    """The device to run on and a notice when `auto` falls back to the CPU.

    auto: CUDA, then MPS, then CPU. Asking for cuda or mps where it is missing is an error,
    never a silent fallback."""
    if requested == "auto":
        if _cuda_available():
            return "cuda", None
        if _mps_available():
            return "mps", None
        return "cpu", CPU_FALLBACK_NOTICE
    if requested == "cuda" and not _cuda_available():
        raise DeviceUnavailableError("--device cuda was asked for, but torch sees no CUDA GPU")
    if requested == "mps" and not _mps_available():
        raise DeviceUnavailableError("--device mps was asked for, but torch sees no Apple MPS device")
    if requested not in ("cuda", "mps", "cpu"):
        raise DeviceUnavailableError(f"unknown device {requested!r}")
    return requested, None


def cuda_devices() -> list[str]:
    """Every CUDA GPU torch sees, as `cuda:N` (for `--devices`); empty when it sees none."""
    if not _cuda_available():
        return []
    import torch

    return [f"cuda:{index}" for index in range(torch.cuda.device_count())]


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """auto: bfloat16 on CUDA, float32 on CPU and MPS."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[dtype]


def free_device_memory(device: str) -> int | None:
    """Bytes free for new tensors on `device` ("cuda", "cuda:1", "mps"); None on the CPU, or on
    an MPS build of torch that cannot say (older than 2.5)."""
    import torch

    where = torch.device(device)
    if where.type == "cuda":
        free, _total = torch.cuda.mem_get_info(where)
        return int(free)
    if where.type == "mps":
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        allocated = getattr(torch.mps, "driver_allocated_memory", None)
        if recommended is None or allocated is None:
            return None
        return max(0, int(recommended()) - int(allocated()))
    return None
