"""Hardware detection and the tier / capability rules derived from it."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from hivebrain.events.device import Tier
from hivebrain.node.hardware import (
    Hardware,
    amd_gpu,
    apple_gpu,
    capabilities,
    classify,
    derived_capabilities,
    detect,
    parse_nvidia_smi,
)

GB = 1024


def hw(
    arch: str = "x86_64", cores: int = 8, ram_gb: float = 32, gpu: str | None = None
) -> Hardware:
    return Hardware(
        arch=arch, cores=cores, ram_mb=int(ram_gb * GB), gpu=gpu, os="Linux", hostname="h"
    )


# (arch, cores, RAM as reported in GiB, gpu) -> tier
CASES: list[tuple[str, int, float, str | None, Tier]] = [
    # a GPU wins over everything
    ("x86_64", 4, 16, "NVIDIA GeForce RTX 3060", "gpu"),
    ("x86_64", 64, 512, "NVIDIA H100 80GB HBM3", "gpu"),
    ("arm64", 8, 16, "Apple Silicon", "gpu"),
    # servers: many cores and much RAM (a 64 GB box reports ~62.7 GiB)
    ("x86_64", 16, 62.7, None, "server"),
    ("x86_64", 32, 256, None, "server"),
    ("aarch64", 80, 128, None, "server"),  # an ARM server is still a server
    ("x86_64", 16, 31.2, None, "standard"),  # cores without the RAM
    ("x86_64", 12, 125, None, "standard"),  # RAM without the cores
    # micro: small ARM boards, or a single core anywhere
    ("armv7l", 4, 0.9, None, "micro"),  # Pi 3
    ("aarch64", 4, 3.7, None, "micro"),  # Pi 4, 4 GB
    ("aarch64", 1, 0.4, None, "micro"),  # Pi Zero 2 booted with one core
    ("x86_64", 1, 2, None, "micro"),  # a one-vCPU VM
    # edge: larger ARM boards, small x86 machines
    ("aarch64", 4, 7.6, None, "edge"),  # Pi 5, 8 GB
    ("aarch64", 8, 15.5, None, "edge"),  # ARM laptop without a detected GPU
    ("x86_64", 4, 7.7, None, "edge"),  # an 8 GB laptop
    ("x86_64", 2, 3.8, None, "edge"),
    # standard: the rest
    ("x86_64", 8, 15.5, None, "standard"),
    ("x86_64", 2, 23.5, None, "standard"),
    ("AMD64", 8, 31.8, None, "standard"),
]


@pytest.mark.parametrize(("arch", "cores", "ram_gb", "gpu", "tier"), CASES)
def test_classify(arch: str, cores: int, ram_gb: float, gpu: str | None, tier: Tier) -> None:
    assert classify(hw(arch, cores, ram_gb, gpu)) == tier


@pytest.mark.parametrize(
    ("ram_gb", "gpu", "expected"),
    [
        (0.4, None, ()),
        (0.9, None, ()),
        (1.8, None, ("embed",)),
        (3.7, None, ("embed", "llm-small")),
        (7.6, None, ("embed", "llm-small")),
        (15.5, None, ("embed", "llm", "llm-small")),
        (3.7, "NVIDIA Jetson", ("embed", "gpu", "llm", "llm-small")),
    ],
)
def test_derived_capabilities(ram_gb: float, gpu: str | None, expected: tuple[str, ...]) -> None:
    assert derived_capabilities(hw(ram_gb=ram_gb, gpu=gpu)) == expected


def test_configured_capabilities_are_merged_sorted_and_unique() -> None:
    got = capabilities(hw(ram_gb=3.7), ["sensors", "embed", " ", "gpio "])
    assert got == ("embed", "gpio", "llm-small", "sensors")


def test_parse_nvidia_smi() -> None:
    one = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5d2c1a9e-0000-1111-2222-333344445555)\n"
    assert parse_nvidia_smi(one) == "NVIDIA H100 80GB HBM3"
    two = one + "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)\n"
    assert parse_nvidia_smi(two) == "2 x NVIDIA H100 80GB HBM3"
    assert parse_nvidia_smi("GPU 0: Tesla T4\n") == "Tesla T4"
    assert parse_nvidia_smi("") is None
    assert parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate") is None


def test_amd_gpu_from_sysfs(tmp_path: Path) -> None:
    drm = tmp_path / "drm"
    assert amd_gpu(drm) is None  # no sysfs at all
    intel = drm / "card0" / "device"
    intel.mkdir(parents=True)
    (intel / "vendor").write_text("0x8086\n")
    assert amd_gpu(drm) is None
    amd = drm / "card1" / "device"
    amd.mkdir(parents=True)
    (amd / "vendor").write_text("0x1002\n")
    (amd / "device").write_text("0x73bf\n")
    assert amd_gpu(drm) == "AMD GPU 0x73bf"


def test_apple_gpu() -> None:
    assert apple_gpu("Darwin", "arm64") == "Apple Silicon"
    assert apple_gpu("Darwin", "x86_64") is None
    assert apple_gpu("Linux", "arm64") is None


def test_detect_on_this_machine() -> None:
    found = detect()
    assert found.arch == platform.machine()
    assert found.os == platform.system()
    assert found.cores >= 1
    assert 256 <= found.ram_mb <= 64 * 1024 * 1024
    assert found.gpu is None or found.gpu.strip()
    assert found.hostname
    assert classify(found) in ("micro", "edge", "standard", "gpu", "server")
