"""The benchmark runner still runs end to end and prints its table (written to a temporary
file, never over bench/results)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import Figure

ROOT = Path(__file__).resolve().parent.parent
HEADER = "| metric | hivebrain | baseline | ratio | target |"


def bench(
    tmp_path: Path, *args: str, timeout: float, env: dict[str, str] | None = None
) -> tuple[str, dict[str, object]]:
    report, table = tmp_path / "bench.json", tmp_path / "bench.md"
    command = [sys.executable, "-m", "bench.run", "--quick", "--json", str(report)]
    out = subprocess.run(
        [*command, "--table", str(table), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
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


def test_bench_quick_hybrid_prints_its_rows(tmp_path: Path) -> None:
    stdout, report = bench(tmp_path, "--only", "hybrid", timeout=180)
    for mode in ("keyword", "vector", "hybrid"):
        for q in (50, 99):
            assert f"| {mode} recall p{q} (10,000 memories with vectors, 100 queries) |" in stdout
    assert "| vector recall@10 vs numpy exact (10,000 memories, 100 queries) |" in stdout
    assert "| node RSS, 10,000-memory store open after 100 hybrid recalls " in stdout
    figures = report["figures"]
    assert isinstance(figures, list)
    at_10 = next(f for f in figures if f["metric"].startswith("vector recall@10"))
    assert at_10["hivebrain"] >= 0.95
    hybrid = next(f for f in figures if f["metric"].startswith("hybrid recall p50"))
    assert hybrid["notes"]["hits"]["hybrid"] == 10 * 100


def test_bench_peers_not_installed_are_named_and_skipped(tmp_path: Path) -> None:
    """Without the `bench` extra (here: each peer's import fails), the runner names the
    missing peers with the install command and still prints the rest of the table."""
    hidden = tmp_path / "hidden"
    for package in ("chromadb", "agentrecall"):
        (hidden / package).mkdir(parents=True)
        (hidden / package / "__init__.py").write_text(f"raise ImportError('no {package} here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden), str(ROOT)])}
    stdout, report = bench(tmp_path, "--only", "recall", "--only", "peers", timeout=180, env=env)
    for peer in ("chromadb", "agentrecall-db"):
        assert f"peer {peer} not installed: pip install -e '.[bench]'" in stdout
    assert "| recall p50 (10,000 memories, 200 queries) |" in stdout
    figures = report["figures"]
    assert isinstance(figures, list)
    assert not any(f.get("peer") for f in figures)


@pytest.mark.slow
def test_bench_quick_runs_every_benchmark(tmp_path: Path) -> None:
    stdout, report = bench(tmp_path, timeout=480)
    rows = (
        "| publish ",
        "| rebuild ",
        "| recall p50 ",
        "| catch-up after a cut ",
        "| local embed, short texts ",
        "| write-to-searchable p99 (vector) ",
        "| mcp memory_recall p50 ",
        "| hybrid recall p50 ",
        "| vector recall@10 vs numpy exact ",
    )
    for row in rows:
        assert row in stdout
    figures = report["figures"]
    assert isinstance(figures, list)
    catchup = next(f for f in figures if f["metric"].startswith("catch-up"))
    assert catchup["met"] is True  # 5,000 events caught up within the 60 s target
    for name in ("publish", "rebuild"):
        f = next(f for f in figures if f["metric"].startswith(name))
        assert f["scaled_target"] == pytest.approx(
            f["target"] * f["baseline"] / f["reference_baseline"]
        )
        assert f"; at this baseline >= {f['scaled_target']:,.0f}/s " in stdout


def test_a_throughput_target_is_scaled_by_this_runs_baseline() -> None:
    def figure(hivebrain: float, baseline: float) -> Figure:
        return Figure(
            metric="rebuild",
            unit="events/s",
            hivebrain=hivebrain,
            baseline=baseline,
            target=25_000,
            higher_is_better=True,
            reference_baseline=140_000,
        )

    slow = figure(hivebrain=20_000, baseline=70_000)  # a machine at half the reference speed
    assert slow.scaled_target == 12_500 and slow.met_scaled is True and slow.met is False
    assert figure(hivebrain=12_000, baseline=70_000).met_scaled is False
    assert figure(hivebrain=26_000, baseline=140_000).met_scaled is True
