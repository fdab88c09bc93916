"""`hivebrain node config` and the node commands' bad input, through the console script."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

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
