"""`python -m bench.run [--quick] [--json PATH] [--only NAME] [--table PATH]`: hivebrain's
throughput, latency and catch-up figures next to a baseline measured in the same run, as a
markdown table.

Each run starts its own nats-servers (file-backed stores in temporary directories); the table is
printed and written to bench/results/latest.md (or `--table`).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from hivebrain.logs import configure
from hivebrain.transport.server import find_binary

from . import catchup, embed, hybrid, mcp, peers, publish, rebuild, recall, searchable
from .common import FULL, QUICK, Figure, Sizes, nats_server, phase, say

BENCHMARKS = (
    "publish",
    "rebuild",
    "recall",
    "catchup",
    "embed",
    "searchable",
    "mcp",
    "hybrid",
    "peers",
)
RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, str]:
    try:
        out = subprocess.run(
            [str(find_binary()), "--version"], capture_output=True, text=True, timeout=10
        )
        server = out.stdout.strip() or out.stderr.strip()
    except Exception as exc:  # the table still says why
        server = f"unknown ({exc})"
    return {
        "cores": str(os.cpu_count()),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "nats_server": server.removeprefix("nats-server: "),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


async def measure(sizes: Sizes, only: tuple[str, ...]) -> list[Figure]:
    figures: list[Figure] = []
    if "publish" in only or "rebuild" in only:
        async with nats_server() as (_, bus, scratch):
            if "publish" in only:
                with phase("publish"):
                    figures += await publish.run(bus, scratch, sizes.publish)
            if "rebuild" in only:
                with phase("rebuild"):
                    figures += await rebuild.run(bus, scratch, sizes.rebuild)
    if "recall" in only:
        with tempfile.TemporaryDirectory(prefix="hivebrain-bench-") as tmp, phase("recall"):
            figures += recall.run(Path(tmp), sizes.recall_memories, sizes.recall_queries)
    if "catchup" in only:
        with tempfile.TemporaryDirectory(prefix="hivebrain-bench-") as tmp, phase("catchup"):
            figures += await catchup.run(Path(tmp), sizes.catchup)
    if "embed" in only:
        with tempfile.TemporaryDirectory(prefix="hivebrain-bench-") as tmp, phase("embed"):
            figures += await embed.run(Path(tmp) / "models", sizes.embed)
    if "searchable" in only:
        with tempfile.TemporaryDirectory(prefix="hivebrain-bench-") as tmp, phase("searchable"):
            figures += await searchable.run(Path(tmp), sizes.searchable)
    if "mcp" in only:
        with tempfile.TemporaryDirectory(prefix="hivebrain-bench-") as tmp, phase("mcp"):
            figures += await mcp.run(Path(tmp), sizes.recall_memories, sizes.recall_queries)
    if "hybrid" in only:
        with tempfile.TemporaryDirectory(prefix="hivebrain-bench-") as tmp, phase("hybrid"):
            figures += hybrid.run(Path(tmp), sizes.hybrid, sizes.hybrid_queries)
    if "peers" in only:
        with tempfile.TemporaryDirectory(prefix="hivebrain-bench-") as tmp, phase("peers"):
            figures += peers.run(Path(tmp), sizes.peers, sizes.peer_queries)
    return figures


def _number(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "s":
        return "timed out" if value == float("inf") else f"{value:.1f} s"
    if unit == "MB":
        return f"{value:,.0f} MB"
    if unit == "fraction":
        return f"{value:.3f}"
    return f"{value:,.0f}/s"


def table(
    figures: list[Figure],
    info: dict[str, str],
    mode: str,
    seconds: float,
    notes: list[str] | None = None,
) -> str:
    notes = notes or []
    lines = [
        f"# hivebrain bench ({mode})",
        "",
        f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, "
        f"nats-server {info['nats_server']}, {info['platform']}; "
        f"load average at start {info['load_at_start']}; "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; ran {seconds:.0f}s",
        "",
        "| metric | hivebrain | baseline | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for f in (f for f in figures if f.peer is None):
        if f.target is None:
            target = "-"
        else:
            op = ">=" if f.higher_is_better else "<="
            target = f"{op} {_number(f.target, f.unit)} {'met' if f.met else 'MISSED'}"
            if f.scaled_target is not None:
                verdict = "met" if f.met_scaled else "MISSED"
                target += f"; at this baseline {op} {_number(f.scaled_target, f.unit)} {verdict}"
        lines.append(
            f"| {f.metric} | {_number(f.hivebrain, f.unit)} | {_number(f.baseline, f.unit)} "
            f"| {f.ratio:.2f} | {target} |"
        )
    lines += [
        "",
        "Baselines: publish = nats-py `js.publish_async` of the same pre-encoded events and "
        "headers; rebuild = ordered consumer with a callback + msgpack decode of EVENTS only; "
        "recall = bare FTS5 table, same texts, tokenizer and OR-query, `ORDER BY rank LIMIT 10`; "
        "catch-up = the same hub + 2 leaves with the leaves' hello stopped (nats-server's own "
        "source/mirror retry only); seconds from the link's return until every projection "
        "applied every event and HIVE's last sequence is the same on all nodes; "
        "embed = the same int8 graph in a plain onnxruntime session (threads = cores, default "
        "options), batches in input order padded by the tokenizer (no sorting by length); "
        "write-to-searchable = from the same publish until the memory is keyword-searchable "
        "(applied by the projection); "
        "mcp = the same store (`Brain.publish_acked`, until the JetStream ack) and recall "
        "(`ProjectionStore.recall`) called in process, without MCP; "
        "keyword/vector/hybrid recall = bare FTS5 as for recall / numpy exact search "
        "(matrix product, argpartition top 10) / the sum of both per query, same memories, "
        "vectors and queries; node RSS = the same process before it opened the store.",
    ]
    lines += _peer_table(figures, notes)
    return "\n".join(lines) + "\n"


def _peer_table(figures: list[Figure], notes: list[str]) -> list[str]:
    rows = [f for f in figures if f.peer is not None]
    if not rows and not notes:
        return []
    lines = [
        "",
        "Peer libraries, same texts, vectors and queries (`bench/peers.py`):",
        "",
        "| peer | metric | hivebrain | peer | peer / hivebrain |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for f in rows:
        lines.append(
            f"| {f.peer} | {f.metric} | {_number(f.hivebrain, f.unit)} "
            f"| {_number(f.baseline, f.unit)} | {f.peer_ratio:.2f} |"
        )
    return lines + [f"\n{note}" for note in notes]


@click.command()
@click.option("--quick", is_flag=True, help="Smaller sizes (a minute or two).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--only", type=click.Choice(BENCHMARKS), multiple=True, help="Run only these.")
@click.option(
    "--table",
    "table_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=RESULTS / "latest.md",
    show_default=True,
    help="Where to write the markdown table.",
)
def main(quick: bool, json_path: Path | None, only: tuple[str, ...], table_path: Path) -> None:
    """Benchmark publish, rebuild, recall, catch-up and embedding against same-run baselines."""
    configure("warning")
    sizes = QUICK if quick else FULL
    mode = "quick" if quick else "full"
    selected = only or BENCHMARKS
    info = machine()
    say(f"bench ({mode}): {', '.join(selected)}; sizes {sizes}")
    started = time.perf_counter()
    figures = asyncio.run(measure(sizes, selected))
    seconds = time.perf_counter() - started
    text = table(figures, info, mode, seconds, peers.not_installed())
    click.echo(text)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(text)
    if json_path is not None:
        report: dict[str, Any] = {
            "mode": mode,
            "sizes": sizes.__dict__,
            "machine": info,
            "seconds": seconds,
            "figures": [f.as_dict() for f in figures],
            "notes": peers.not_installed(),
        }
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    if not all(f.met is not False for f in figures):
        say("some targets were missed")


if __name__ == "__main__":
    main(sys.argv[1:])
