"""What this machine is: hardware detection, its tier and the capabilities it implies.

Why and how: docs/design.md section 10, `hivebrain/node/hardware.py`.
"""

from __future__ import annotations

import platform
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from hivebrain.events.device import Tier

GIB = 1024  # MiB

#: Reported-RAM thresholds (MiB), halfway-ish between nominal sizes.
MICRO_MAX_RAM_MB = 4 * GIB + GIB // 2
EDGE_MAX_RAM_MB = 8 * GIB + GIB // 2
SERVER_MIN_RAM_MB = 60 * GIB
SERVER_MIN_CORES = 16
MICRO_MAX_CORES = 1  # fewer than 2

EMBED_MIN_RAM_MB = 2 * GIB - GIB // 2
LLM_SMALL_MIN_RAM_MB = 4 * GIB - GIB // 2
LLM_MIN_RAM_MB = 16 * GIB - GIB

NVIDIA_SMI_TIMEOUT_S = 3.0
AMD_VENDOR = "0x1002"


@dataclass(frozen=True, slots=True)
class Hardware:
    arch: str  # platform.machine(): x86_64, aarch64, arm64, armv7l, ...
    cores: int  # logical CPUs
    ram_mb: int  # total physical memory, MiB
    gpu: str | None  # a readable name of the (first) GPU, None when there is none
    os: str  # platform.system(): Linux, Darwin, ...
    hostname: str


def is_arm(arch: str) -> bool:
    a = arch.lower()
    return a.startswith(("arm", "aarch"))


def classify(hw: Hardware) -> Tier:
    """The hardware tier of `hw` (see the module docstring for the rules)."""
    if hw.gpu:
        return "gpu"
    if hw.cores >= SERVER_MIN_CORES and hw.ram_mb >= SERVER_MIN_RAM_MB:
        return "server"
    arm = is_arm(hw.arch)
    if (arm and hw.ram_mb <= MICRO_MAX_RAM_MB) or hw.cores <= MICRO_MAX_CORES:
        return "micro"
    if arm or hw.ram_mb <= EDGE_MAX_RAM_MB:
        return "edge"
    return "standard"


def derived_capabilities(hw: Hardware) -> tuple[str, ...]:
    """What the hardware alone allows, sorted."""
    caps: set[str] = set()
    if hw.ram_mb >= EMBED_MIN_RAM_MB:
        caps.add("embed")
    if hw.ram_mb >= LLM_SMALL_MIN_RAM_MB:
        caps.add("llm-small")
    if hw.ram_mb >= LLM_MIN_RAM_MB or hw.gpu:
        caps.add("llm")
    if hw.gpu:
        caps.add("gpu")
    return tuple(sorted(caps))


def capabilities(hw: Hardware, configured: Iterable[str] = ()) -> tuple[str, ...]:
    """Derived and configured capabilities together: sorted, each once, blanks dropped."""
    merged = set(derived_capabilities(hw)) | {c.strip() for c in configured}
    return tuple(sorted(c for c in merged if c))


# -- detection ---------------------------------------------------------------------------------


def parse_nvidia_smi(output: str) -> str | None:
    """The GPU name from `nvidia-smi -L` output ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: ...)"),
    with a count when there are several."""
    names = [
        m.group(1).strip()
        for line in output.splitlines()
        if (m := re.match(r"^GPU \d+: (.+?)(?: \(UUID: [^)]*\))?\s*$", line.strip()))
    ]
    if not names:
        return None
    return names[0] if len(names) == 1 else f"{len(names)} x {names[0]}"


def nvidia_gpu(timeout: float = NVIDIA_SMI_TIMEOUT_S) -> str | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "-L"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else None


def amd_gpu(drm: Path = Path("/sys/class/drm")) -> str | None:
    """An AMD GPU from sysfs: a `card*/device/vendor` of 0x1002 (integrated ones included)."""
    try:
        cards = sorted(drm.glob("card*/device/vendor"))
    except OSError:
        return None
    for vendor in cards:
        try:
            if vendor.read_text().strip().lower() != AMD_VENDOR:
                continue
            device = vendor.with_name("device")
            model = device.read_text().strip() if device.exists() else ""
        except OSError:
            continue
        return f"AMD GPU {model}".strip()
    return None


def apple_gpu(system: str, arch: str) -> str | None:
    return "Apple Silicon" if system == "Darwin" and arch.lower() == "arm64" else None


def detect_gpu(system: str, arch: str) -> str | None:
    return nvidia_gpu() or amd_gpu() or apple_gpu(system, arch)


def detect() -> Hardware:
    """This machine, as far as it can tell; never raises."""
    arch = platform.machine() or "unknown"
    system = platform.system() or "unknown"
    try:
        cores = int(psutil.cpu_count(logical=True) or 0)
    except Exception:  # psutil can fail in odd containers
        cores = 0
    try:
        ram_mb = int(psutil.virtual_memory().total) // (1024 * 1024)
    except Exception:
        ram_mb = 0
    try:
        gpu = detect_gpu(system, arch)
    except Exception:
        gpu = None
    return Hardware(
        arch=arch,
        cores=cores,
        ram_mb=ram_mb,
        gpu=gpu,
        os=system,
        hostname=socket.gethostname(),
    )
