"""`hivebrain node config` and the node commands' bad input, through the console script."""

from __future__ import annotations

import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

from hivebrain.demo.hive import homelab_toml
from hivebrain.transport.server import free_port

HIVEBRAIN = str(Path(sys.executable).parent / "hivebrain")
NODES_TOML = Path(__file__).resolve().parents[1] / "nodes.toml"


def hivebrain(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HIVEBRAIN, "--data-dir", str(home), *args], capture_output=True, text=True, timeout=60
    )


def test_node_config_renders_a_private_config_for_a_separate_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert hivebrain(home, "creds", "generate", "--config", str(NODES_TOML)).returncode == 0
    out = tmp_path / "hub.conf"
    done = hivebrain(
        home, "node", "config", "--node", "hub", "--config", str(NODES_TOML), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert 'domain: "hub"' in text and "leafnodes" in text
    secret = (home / "creds" / "pi-garage.json").read_text()
    assert secret not in done.stdout + done.stderr  # never printed
    leaf = hivebrain(home, "node", "config", "--node", "pi-garage", "--config", str(NODES_TOML))
    assert (
        leaf.returncode == 0 and "remotes" in leaf.stdout and 'domain: "pi-garage"' in leaf.stdout
    )


def test_node_commands_refuse_bad_input_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cases = [
        ("node", "config", "--node", "nope", "--config", str(NODES_TOML)),  # unknown node
        ("node", "config", "--node", "hub", "--config", str(NODES_TOML)),  # no credentials
        ("node", "run", "--node", "hub", "--config", str(tmp_path / "missing.toml")),
    ]
    for args in cases:
        done = hivebrain(home, *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_commands_on_a_stopped_homelab_node_refuse_instead_of_writing_elsewhere(
    tmp_path: Path,
) -> None:
    """With its credentials present, a node's commands need its own server (accounts and
    users): when it is stopped they say so, and never start a plain server in its place."""
    home = tmp_path / "home"
    assert hivebrain(home, "creds", "generate", "--config", str(NODES_TOML)).returncode == 0
    for args in (("--node", "pi-garage", "remember", "x"), ("--node", "pi-garage", "stats")):
        done = subprocess.run(
            [HIVEBRAIN, "--data-dir", str(home), "--port", str(free_port()), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if args[-1] == "stats":  # stats still shows the projection, and says where NATS is
            assert done.returncode == 0 and "start this node first" in done.stdout
            continue
        assert done.returncode == 1
        assert done.stderr.strip() == (
            f"error: cannot reach NATS at nats://127.0.0.1:{done.args[4]}: "
            "start this node first (hivebrain node run --node pi-garage)"
        )
    assert not (home / "nats").exists()  # no server was started on the node's store


def test_a_stopped_homelab_node_uses_its_own_rendered_server(tmp_path: Path) -> None:
    """After `node run` rendered its config once, commands on the stopped node start that
    server for their length: writes land in the node's own streams and a rebuild replays them."""
    ports = {"hub": free_port(), "pi": free_port()}
    toml = tmp_path / "nodes.toml"
    toml.write_text(homelab_toml("hub", ["pi"], ports, free_port()))
    home = tmp_path / "hub"
    assert hivebrain(home, "creds", "generate", "--config", str(toml)).returncode == 0
    run = subprocess.Popen(
        [HIVEBRAIN, "--data-dir", str(home), "node", "run", "--node", "hub", "--config", str(toml)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    assert "is up" in run.stdout.readline()  # streams made, config rendered
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=30) == 0
    url = f"nats://127.0.0.1:{ports['hub']}"
    base = ("--node", "hub", "--nats", url)
    wrote = hivebrain(home, *base, "--json", "remember", "kept in the node's own streams")
    assert wrote.returncode == 0, wrote.stderr
    rebuilt = hivebrain(home, *base, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    # the memory, and the node's device registration if it got to it before the SIGINT
    assert re.search(r"replayed [12] messages .*: [12] events applied", rebuilt.stdout)
    assert "0 dead letters" in rebuilt.stdout
    found = hivebrain(home, "--node", "hub", "recall", "own streams")
    assert "kept in the node's own streams" in found.stdout
