"""Device identity: ``cuda:N`` -> the GPU's UUID -> its NVML handle, one mapping for every consumer.

``cuda:N`` means what CUDA means in the harness's own environment: the Nth device CUDA enumerates
under this process's ``CUDA_VISIBLE_DEVICES`` and ``CUDA_DEVICE_ORDER``. That is asked of the CUDA
driver itself (``cuDeviceGetUuid`` through ctypes, no context is created), so the answer is right
even where CUDA's default "fastest first" order differs from NVML's PCI order. Where the driver
library cannot be loaded, the mapping is derived from ``CUDA_VISIBLE_DEVICES`` (indices in PCI
order, UUIDs or UUID prefixes) over NVML's device list, and says so.

A worker is then pinned to that one GPU by its UUID (``CUDA_VISIBLE_DEVICES=GPU-...``), so it sees
``cuda:0``; its NVML measurement opens the GPU by UUID, never by index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from harness.cuda_driver import cuda_driver_uuids
from harness.errors import HarnessError
from harness.measure.nvml_poller import NvmlUnavailable, decoded, nvml_init
from harness.results.metadata import cpu_model


@dataclass(frozen=True)
class DeviceIdentity:
    """What ``device`` is on this host. ``uuid`` and ``nvml_index`` are None on the CPU."""

    device: str  # as the user named it: cpu, cuda:N
    model: str | None  # GPU name (NVML) or CPU model name
    uuid: str | None = None
    nvml_index: int | None = None
    mapping: str = "cpu"  # how cuda:N was mapped: "cuda-driver" or "CUDA_VISIBLE_DEVICES+nvml"


def parse_device(device: str) -> tuple[str, int | None]:
    """("cpu", None) or ("cuda", N); HarnessError for anything else."""
    if device == "cpu":
        return "cpu", None
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit() and index.isascii():
        return "cuda", int(index)
    raise HarnessError(f"unknown device '{device}' (use cpu or cuda:N)")


@dataclass(frozen=True)
class VisibleGpus:
    """The GPUs CUDA enumerates here, in its order, and NVML's list to find them in."""

    uuids: list[str]  # CUDA's order: cuda:N is uuids[N]
    nvml: list[tuple[str, str]]  # (UUID, name) in NVML (PCI) order
    mapping: str  # how the order was learned: "cuda-driver" or "CUDA_VISIBLE_DEVICES+nvml"


def visible_gpus() -> VisibleGpus:
    """The GPUs CUDA would enumerate in this environment (none where NVML cannot initialise): the one
    enumeration behind ``cuda:N``, the default device and the multi-GPU lanes."""
    try:
        pynvml = nvml_init()
    except NvmlUnavailable:
        return VisibleGpus([], [], "none")
    try:
        gpus = nvml_gpus(pynvml)
    finally:
        pynvml.nvmlShutdown()
    uuids = cuda_driver_uuids()
    if uuids is not None:
        return VisibleGpus(uuids, gpus, "cuda-driver")
    return VisibleGpus(visible_uuids(os.environ.get("CUDA_VISIBLE_DEVICES"), [u for u, _ in gpus]), gpus,
                       "CUDA_VISIBLE_DEVICES+nvml")


def identify(device: str) -> DeviceIdentity:
    """The identity of ``device`` on this host; HarnessError when ``cuda:N`` does not exist here."""
    _, ordinal = parse_device(device)
    if ordinal is None:
        return DeviceIdentity(device, cpu_model())
    try:
        nvml_init().nvmlShutdown()
    except NvmlUnavailable as exc:
        raise HarnessError(f"{device}: {exc}") from None
    gpus = visible_gpus()
    if ordinal >= len(gpus.uuids):
        pinned = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise HarnessError(f"{device}: no such GPU here ({len(gpus.uuids)} visible to CUDA"
                           f"{'' if pinned is None else ', CUDA_VISIBLE_DEVICES=' + pinned})")
    uuid = gpus.uuids[ordinal]
    by_uuid = {u: (i, name) for i, (u, name) in enumerate(gpus.nvml)}
    if uuid not in by_uuid:
        raise HarnessError(f"{device}: CUDA's GPU {uuid} is not among NVML's ({', '.join(by_uuid)})")
    index, name = by_uuid[uuid]
    return DeviceIdentity(device, name, uuid, index, gpus.mapping)


def nvml_gpus(pynvml: Any) -> list[tuple[str, str]]:
    """(UUID, name) of every GPU NVML sees, in NVML (PCI bus) order."""
    out = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(i)
        uuid, name = pynvml.nvmlDeviceGetUUID(handle), pynvml.nvmlDeviceGetName(handle)
        out.append((str(decoded(uuid)), str(decoded(name))))
    return out


def visible_uuids(visible: str | None, nvml_uuids: list[str]) -> list[str]:
    """The UUIDs CUDA would enumerate under ``CUDA_VISIBLE_DEVICES=visible`` (indices taken in PCI
    order, as with CUDA_DEVICE_ORDER=PCI_BUS_ID), from NVML's list. CUDA's rules: entries are indices,
    ``GPU-`` UUIDs or unique UUID prefixes; enumeration stops at the first invalid entry; unset means all."""
    if visible is None:
        return list(nvml_uuids)
    out: list[str] = []
    for entry in (e.strip() for e in visible.split(",")):
        if entry.isdigit():
            index = int(entry)
            if index >= len(nvml_uuids):
                break
            match = nvml_uuids[index]
        else:
            prefix = entry if entry.startswith("GPU-") else f"GPU-{entry}"
            matches = [u for u in nvml_uuids if u.startswith(prefix)]
            if len(matches) != 1:
                break
            match = matches[0]
        if match in out:
            break
        out.append(match)
    return out
