"""The benchmark runner still runs end to end and prints its table (written to a temporary
file, never over bench/results)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER = "| metric | hivebrain | baseline | ratio | target |"


def bench(tmp_path: Path, *args: str, timeout: float) -> tuple[str, dict[str, object]]:
    report, table = tmp_path / "bench.json", tmp_path / "bench.md"
    command = [sys.executable, "-m", "bench.run", "--quick", "--json", str(report)]
    out = subprocess.run(
        [*command, "--table", str(table), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert HEADER in out.stdout
    assert table.read_text() in out.stdout
    return out.stdout, json.loads(report.read_text())


def test_bench_quick_recall_prints_a_table(tmp_path: Path) -> None:
    stdout, report = bench(tmp_path, "--only", "recall", timeout=120)
    assert "| recall p50 (10,000 memories, 200 queries) |" in stdout
    assert report["mode"] == "quick"


def test_bench_quick_mcp_prints_a_table(tmp_path: Path) -> None:
    stdout, report = bench(tmp_path, "--only", "mcp", timeout=180)
    assert "| mcp memory_store p50 (until ack, 200 calls) |" in stdout
    assert "| mcp memory_recall p50 (10,000 memories, 200 calls) |" in stdout
    figures = report["figures"]
    assert isinstance(figures, list) and all(f["notes"]["hits_mcp"] > 0 for f in figures)


@pytest.mark.slow
def test_bench_quick_runs_every_benchmark(tmp_path: Path) -> None:
    stdout, report = bench(tmp_path, timeout=300)
    rows = (
        "| publish ",
        "| rebuild ",
        "| recall p50 ",
        "| catch-up after a cut ",
        "| local embed, short texts ",
        "| write-to-searchable p99 (vector) ",
        "| mcp memory_recall p50 ",
    )
    for row in rows:
        assert row in stdout
    figures = report["figures"]
    assert isinstance(figures, list)
    catchup = next(f for f in figures if f["metric"].startswith("catch-up"))
    assert catchup["met"] is True  # 5,000 events caught up within the 60 s target
