"""The `hivebrain` console script end to end, as a user runs it: one `hivebrain up` in the
background for the module, every other command in its own process against it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from nodeproc import (
    HIVEBRAIN,
    Cli,
    NodeProcess,
    accepts_connections,
    one_clean_error,
    wait_until,
)

from hivebrain.cli.main import cli as cli_group
from hivebrain.transport.server import free_port

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("cli") / "home", free_port())


@pytest.fixture(scope="module")
def node(cli: Cli) -> Iterator[NodeProcess]:
    process = NodeProcess(cli)
    process.start()
    yield process
    process.close()


def as_json(out: str) -> Any:
    return json.loads(out)


def recall_ids(cli: Cli, query: str, *options: str) -> list[str]:
    return [hit["id"] for hit in as_json(cli.ok("--json", "recall", query, *options))]


def wait_caught_up(cli: Cli) -> dict[str, Any]:
    """`stats --json` once both streams are fully applied (HIVE sources EVENTS shortly after)."""

    def caught_up() -> dict[str, Any] | None:
        stats = as_json(cli.ok("--json", "stats"))
        streams = stats["streams"]
        return stats if all(streams[s]["lag"] == 0 for s in ("EVENTS", "HIVE")) else None

    return wait_until(caught_up, "the node to apply both streams", timeout=20)


def embedded(cli: Cli, count: int) -> None:
    """Wait until the node's embedder gave `count` texts their vectors."""

    def done() -> bool:
        return bool(as_json(cli.ok("--json", "stats"))["projection"]["embeddings"] >= count)

    wait_until(done, f"{count} vectors", timeout=60)


def test_remember_recall_edit_forget(cli: Cli, node: NodeProcess) -> None:
    out = cli.ok("remember", "the octopus guards a brass lantern", "--tag", "x")
    found = re.fullmatch(r"remembered ([0-9a-f]{32}) \(EVENTS #(\d+)\)\n", out)
    assert found, out  # no "will apply it when it runs": the running node applied it
    octopus = found.group(1)

    written = as_json(cli.ok("--json", "remember", "quokkas smile at dawn", "--tag", "y"))
    assert written["type"] == "memory.stored" and written["stream"] == "EVENTS"
    assert written["seq"] > int(found.group(2))  # the embedder's vectors are events too
    assert written["applied"] is True
    quokka = written["id"]
    embedded(cli, 2)  # `up` runs the local embedder by default

    plain = cli.ok("recall", "octopus")
    assert octopus in plain and "the octopus guards a brass lantern" in plain and "#x" in plain
    [hit] = as_json(cli.ok("--json", "recall", "octopus", "--keyword"))
    assert hit["id"] == octopus and hit["tags"] == ["x"] and hit["forgotten"] is False
    assert recall_ids(cli, "quokkas", "--tag", "y") == [quokka]
    assert quokka not in recall_ids(cli, "quokkas", "--tag", "x")
    for mode in ("--keyword", "--vector", "--hybrid"):
        assert recall_ids(cli, "octopus", mode)[0] == octopus
    # Meaning without shared words: only vectors can find these.
    assert recall_ids(cli, "a sea creature keeps a lamp", "--vector")[0] == octopus
    assert recall_ids(cli, "cheerful marsupials")[0] == quokka
    assert recall_ids(cli, "cheerful marsupials", "--keyword") == []
    hybrid = cli.run("recall", "octopus")
    assert hybrid.code == 0 and octopus in hybrid.out and hybrid.err_lines == []

    assert cli.ok("edit", octopus, "--text", "the octopus now hoards a silver compass").startswith(
        f"edited {octopus} "
    )
    assert recall_ids(cli, "compass", "--keyword") == [octopus]
    assert recall_ids(cli, "lantern", "--keyword") == []
    assert cli.ok("recall", "lantern", "--keyword").strip() == "nothing matches"
    embedded(cli, 2)
    assert recall_ids(cli, "a navigation instrument", "--vector")[0] == octopus

    assert cli.ok("forget", octopus).startswith(f"forgot {octopus} ")
    assert recall_ids(cli, "compass", "--keyword") == []
    assert octopus not in recall_ids(cli, "a navigation instrument", "--vector")
    assert recall_ids(cli, "quokkas", "--keyword") == [quokka]
    again = cli.run("forget", octopus)
    assert again.code == 3 and "no memory" in one_clean_error(again)


def test_publish_from_argument_and_stdin_then_tail(cli: Cli, node: NodeProcess) -> None:
    out = cli.ok("publish", "memory.stored", json.dumps({"text": "narwhals sing in argument"}))
    assert re.fullmatch(r"published memory\.stored [0-9a-f]{32} \(#\d+\)\n", out), out
    cli.ok("publish", "memory.stored", stdin=json.dumps({"text": "walruses hum from stdin"}))
    last = as_json(
        cli.ok(
            "--json",
            "publish",
            "memory.stored",
            "-",
            stdin=json.dumps({"text": "belugas whistle", "tags": ["sea"]}),
        )
    )
    assert last["applied"] is True
    assert recall_ids(cli, "narwhals") and recall_ids(cli, "walruses")
    assert recall_ids(cli, "belugas", "--tag", "sea") == [last["id"]]

    wait_caught_up(cli)
    # The embedder's events interleave with these: keep the memories of the last few events.
    lines = [x for x in cli.ok("events", "tail", "-n", "10").splitlines() if " memory." in x]
    lines = lines[-3:]
    for line, words in zip(
        lines, ("narwhals sing", "walruses hum", "belugas whistle"), strict=True
    ):
        assert line.startswith("#") and " memory.stored " in line and words in line

    tail = [as_json(line) for line in cli.ok("--json", "events", "tail", "-n", "10").splitlines()]
    tail = [e for e in tail if e["type"] == "memory.stored"][-2:]
    assert [e["stream"] for e in tail] == ["HIVE", "HIVE"]
    assert tail[-1]["entity"] == last["id"] and tail[-1]["payload"]["tags"] == ["sea"]
    own = [
        as_json(x)
        for x in cli.ok("--json", "events", "tail", "--stream", "EVENTS", "-n", "4").splitlines()
    ]
    [mine] = [e for e in own if e["seq"] == last["seq"]]
    assert mine["stream"] == "EVENTS" and mine["node"] == "n1" and mine["entity"] == last["id"]


def test_stats_and_digest(cli: Cli, node: NodeProcess) -> None:
    cli.ok("remember", "stats count this memory")
    stats = wait_caught_up(cli)
    assert stats["node"] == "n1" and stats["node_running"] is True
    events = stats["streams"]["EVENTS"]
    assert events["last_seq"] >= 1 and events["applied"] == events["last_seq"]
    # Every event was authored here, so each one is applied once (and skipped once via HIVE).
    assert stats["projection"]["applied"] == events["last_seq"]
    assert stats["projection"]["dead_letters"] == 0
    assert cli.ok("stats").startswith("node n1 (running)\n")

    value = cli.ok("projections", "digest").strip()
    assert HEX64.match(value), value
    assert as_json(cli.ok("--json", "projections", "digest")) == {"node": "n1", "digest": value}


def test_rebuild_is_refused_while_the_node_runs(cli: Cli, node: NodeProcess) -> None:
    result = cli.run("projections", "rebuild")
    assert result.code != 0
    assert "already running" in one_clean_error(result)
    assert node.proc is not None and node.proc.poll() is None


def test_a_second_node_on_the_same_data_is_refused(cli: Cli, node: NodeProcess) -> None:
    result = cli.run("up", timeout=20)
    assert result.code == 2
    assert "already running" in one_clean_error(result)
    assert node.proc is not None and node.proc.poll() is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("remember",), "TEXT"),
        (("publish", "no.such", "{}"), "unknown event type"),
        (("publish", "memory.stored", '{"nope": 1}'), "nope"),
        (("publish", "memory.stored", "not json"), "not JSON"),
        (("publish", "memory.stored", "[1, 2]"), "JSON object"),
        (("publish", "memory.stored", "{}"), "a memory needs text"),
        (("publish", "memory.stored", '{"text": "x", "confidence": 5}'), "confidence"),
        (("--node", "Bad Name", "stats"), "invalid node name"),
        (("recall", ""), "empty"),
        (("recall", "   "), "empty"),
        (("--nats", "http://127.0.0.1:1", "stats"), "invalid NATS URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    cli: Cli, node: NodeProcess, args: tuple[str, ...], says: str
) -> None:
    result = cli.run(*args, stdin="")
    assert result.code == 2, result
    line = one_clean_error(result)
    assert line.startswith("error:") and says in line, line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("edit", "unknown-id", "--text", "x"), "no memory 'unknown-id'"),
        (("forget", "unknown-id"), "no memory 'unknown-id'"),
        (("move", "unknown-id", "archive"), "no memory 'unknown-id'"),
        (("memories", "list", "--agent", "nobody"), "no agent 'nobody'"),
    ],
)
def test_unknown_ids_are_not_found_exit_3(
    cli: Cli, node: NodeProcess, args: tuple[str, ...], says: str
) -> None:
    result = cli.run(*args)
    assert result.code == 3, result
    assert says in one_clean_error(result)


def test_unreachable_nats_is_one_line(cli: Cli, node: NodeProcess) -> None:
    nobody = f"nats://127.0.0.1:{free_port()}"
    result = cli.run("--nats", nobody, "remember", "nobody will hear this")
    assert result.code != 0
    line = one_clean_error(result)
    assert line.startswith("error:") and "cannot reach NATS" in line and nobody in line


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


def test_every_command_has_help(cli: Cli, tmp_path: Path) -> None:
    """The console script answers --help; so does every command (run in process: forty
    interpreters starting at once would only measure the machine)."""
    env = {**cli.env, "HIVEBRAIN_HOME": str(tmp_path / "help")}
    top = subprocess.run(
        [str(HIVEBRAIN), "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert top.returncode == 0 and top.stdout.startswith("Usage: hivebrain"), top.stderr
    paths = [(), *command_paths(cli_group)]
    assert ("projections", "rebuild") in paths and ("events", "tail") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(cli_group, [*path, "--help"], prog_name="hivebrain", env=env)
        out = result.output
        assert result.exit_code == 0, (path, out)
        assert out.startswith(f"Usage: hivebrain {' '.join(path)}".rstrip()), (path, out)
        command: click.Command = cli_group
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        summary = (command.help or "").splitlines()[0]
        assert summary and summary in " ".join(out.split()), (path, out)


def test_ctrl_c_stops_the_node_then_rebuild_gives_the_same_digest(
    cli: Cli, node: NodeProcess
) -> None:
    """Runs last in this module: it stops the module's node."""
    cli.ok("remember", "a memory that must survive the rebuild", "--tag", "keep")
    wait_caught_up(cli)
    before = cli.ok("projections", "digest").strip()
    assert node.server_pid is not None

    assert node.interrupt(timeout=10) == 0
    assert "stopping..." in node.output()
    node.wait_released(timeout=5)  # the server child is gone and nothing listens on the port
    stopped = as_json(cli.ok("--json", "stats"))  # reads the store through a server of its own
    assert stopped["node_running"] is False
    assert stopped["streams"]["HIVE"]["lag"] == stopped["streams"]["EVENTS"]["lag"] == 0

    out = cli.ok("projections", "rebuild")
    found = re.search(r"replayed (\d+) messages .*: (\d+) events applied .*, (\d+) duplicates", out)
    assert found, out
    messages, applied, duplicates = map(int, found.groups())
    # Each event is read once (HIVE holds all of EVENTS): no duplicates to skip.
    assert messages == applied and duplicates == 0
    assert out.splitlines()[-1] == f"digest {before}"
    assert cli.ok("projections", "digest").strip() == before
    assert recall_ids(cli, "survive", "--tag", "keep")
    assert not accepts_connections(cli.port)  # the rebuild's own server is stopped again


def test_up_welcome_shows_recall_by_meaning(tmp_path: Path) -> None:
    """The README's first command: the welcome memory is found by a question that shares no
    word with it, through the local embedder `up` runs by default."""
    process = NodeProcess(Cli(tmp_path / "home", free_port()), "--welcome", "--no-devices")
    process.start()
    try:
        wait_until(lambda: "Ctrl-C stops it." in process.output(), "the welcome", timeout=60)
        out = process.output()
        recalled = out.split('$ hivebrain recall "which machines share what they know?"\n')[1]
        first = recalled.splitlines()[0].split(maxsplit=3)
        assert first[1] == "memory" and "every node of the homelab recalls" in first[3], out
        assert "keyword search only" not in out
    finally:
        process.close()
