"""Per-node secrets: private files, refused when others may read them, never printed."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from hivebrain.errors import ConfigError
from hivebrain.node.credentials import (
    NodeCredentials,
    generate_credentials,
    load_credentials,
    new_credentials,
    write_credentials,
)

ROOT = Path(__file__).resolve().parents[1]
HIVEBRAIN = Path(sys.executable).parent / "hivebrain"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_private_files_and_keeps_existing_ones(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "creds"
    first = generate_credentials(directory, ["hub", "pi-garage"])
    assert [(r.node, r.written) for r in first] == [("hub", True), ("pi-garage", True)]
    assert mode(directory) == 0o700
    for result in first:
        assert result.path == directory / f"{result.node}.json"
        assert mode(result.path) == 0o600
        data = json.loads(result.path.read_text())
        assert data["node"] == result.node and len(data["password"]) >= 32
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []  # no temp file

    hub_before = load_credentials(directory, "hub").reveal()
    again = generate_credentials(directory, ["hub", "pi-kitchen"])
    assert [(r.node, r.written) for r in again] == [("hub", False), ("pi-kitchen", True)]
    assert load_credentials(directory, "hub").reveal() == hub_before

    rotated = generate_credentials(directory, ["hub"], rotate=True)
    assert rotated[0].written
    assert load_credentials(directory, "hub").reveal() != hub_before
    assert mode(directory / "hub.json") == 0o600


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_credentials(tmp_path / "creds", ["hub"])
    finally:
        os.umask(old)
    assert mode(tmp_path / "creds") == 0o700
    assert mode(tmp_path / "creds" / "hub.json") == 0o600


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o620, 0o644])
def test_a_file_others_may_read_is_refused(tmp_path: Path, loose: int) -> None:
    path = write_credentials(tmp_path, new_credentials("hub"))
    path.chmod(loose)
    with pytest.raises(ConfigError) as info:
        load_credentials(tmp_path, "hub")
    assert str(info.value) == (
        f"{path}: permissions {loose:04o} are too open (others may read the secret); "
        f"chmod 600 {path}"
    )


def test_missing_wrong_or_broken_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no credentials for node 'hub' at .*creds generate"):
        load_credentials(tmp_path, "hub")
    path = write_credentials(tmp_path, new_credentials("pi-garage"))
    path.rename(tmp_path / "hub.json")
    with pytest.raises(ConfigError, match="holds the credentials of 'pi-garage', not 'hub'"):
        load_credentials(tmp_path, "hub")
    (tmp_path / "hub.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not a credentials file: not JSON"):
        load_credentials(tmp_path, "hub")
    (tmp_path / "hub.json").write_text('{"node": "hub", "password": "short"}')
    with pytest.raises(ConfigError, match="shorter than 16") as info:
        load_credentials(tmp_path, "hub")
    assert "short" not in str(info.value).replace("shorter", "")
    with pytest.raises(ConfigError, match="invalid node name"):
        load_credentials(tmp_path, "../etc/passwd")


def test_the_secret_never_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = new_credentials("hub")
    secret = creds.reveal()
    sys_secret = creds.sys_password.get_secret_value()
    assert sys_secret != secret and len(sys_secret) >= 32
    assert new_credentials("hub").sys_password != creds.sys_password
    shown = [repr(creds), str(creds), f"{creds}", repr(creds.password), creds.model_dump_json()]
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    try:
        structlog.get_logger("t").warning("creds", creds=creds, password=creds.password)
        logging.getLogger("t").warning("creds %s %r", creds, creds)
    finally:
        structlog.reset_defaults()
    captured = capsys.readouterr()
    shown += [captured.out, captured.err]
    for text in shown:
        assert secret not in text
        assert sys_secret not in text
    assert "**********" in repr(creds)
    assert NodeCredentials(node="hub", password=creds.password) == creds


def hivebrain(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HIVEBRAIN), "--data-dir", str(home), "creds", "generate", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def test_creds_generate_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = hivebrain(home=home)  # nodes.toml of the working directory, <data dir>/creds
    assert done.returncode == 0, done.stderr
    creds = home / "creds"
    assert done.stdout.splitlines() == [
        f"wrote {creds / name}.json" for name in ("hub", "pi-garage", "pi-kitchen")
    ]
    secrets = [load_credentials(creds, n).reveal() for n in ("hub", "pi-garage", "pi-kitchen")]
    assert mode(creds) == 0o700

    again = hivebrain("--node", "pi-garage", "--json", home=home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == [
        {"node": "pi-garage", "path": str(creds / "pi-garage.json"), "written": False}
    ]
    out = tmp_path / "elsewhere"
    rotated = hivebrain("--out", str(out), "--config", "nodes.toml", "--rotate", home=home)
    assert rotated.returncode == 0, rotated.stderr
    assert len(rotated.stdout.splitlines()) == 3
    secrets += [load_credentials(out, n).reveal() for n in ("hub", "pi-garage", "pi-kitchen")]
    for run in (done, again, rotated):
        for secret in secrets:
            assert secret not in run.stdout + run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--node", "pi-attic"],
            "error: unknown node 'pi-attic' (known: hub, pi-garage, pi-kitchen)",
        ),
        (
            ["--config", "missing.toml"],
            "error: missing.toml: cannot read: No such file or directory",
        ),
        (["--config", "{tmp}/broken.toml"], "error: {tmp}/broken.toml:1: invalid TOML: "),
    ],
)
def test_creds_generate_bad_input_is_one_error_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "broken.toml").write_text("[hub\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    message = message.replace("{tmp}", str(tmp_path))
    done = hivebrain(*args, home=tmp_path / "home")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert not (tmp_path / "home" / "creds").exists()
