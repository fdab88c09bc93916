"""`hivebrain demo` run as the installed command: three real nats-servers, one leaf cut off and
reconnected, every node ending with the same state."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

HIVEBRAIN = str(Path(sys.executable).parent / "hivebrain")
DIGEST = re.compile(r"^\s+digest (\S+): ([0-9a-f]{64})", re.MULTILINE)


def test_demo_converges_and_recall_works_on_the_cut_off_leaf(tmp_path: Path) -> None:
    out = subprocess.run(
        [HIVEBRAIN, "demo", "--dir", str(tmp_path / "hive")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    found = DIGEST.findall(out.stdout)
    # three digests once the first writes converged, three after the link returned
    assert [name for name, _ in found] == ["hub", "leaf1", "leaf2"] * 2
    first, after = {d for _, d in found[:3]}, {d for _, d in found[3:]}
    assert len(first) == 1 and len(after) == 1 and first != after
    assert "recall on leaf1 while cut off" in out.stdout
    assert "'leaf1 offline memory number 199' -> 'leaf1 offline memory number 199'" in out.stdout
    assert re.search(r"converged [\d.]+s after the link returned", out.stdout)
    assert "demo OK" in out.stdout
    assert (tmp_path / "hive" / "nodes.toml").exists()  # --dir keeps the files


def test_demo_json_summary(tmp_path: Path) -> None:
    out = subprocess.run(
        [HIVEBRAIN, "demo", "--json", "--memories", "50"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["ok"] is True
    assert summary["after"]["same"] is True
    assert summary["after"]["memories"] == {"hub": 115, "leaf1": 115, "leaf2": 115}
    assert len(set(summary["after"]["digests"].values())) == 1
    assert summary["cut"]["recalls"] > 0
    assert not Path(summary["dir"]).exists()  # the temporary directory is removed
