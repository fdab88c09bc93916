"""nodes.toml: the committed example loads, and every mistake is one line naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivebrain.errors import ConfigError
from hivebrain.node.homelab import Homelab, HubAddress, NodeSpec, load_homelab

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
[hub]
name = "hub"
client_url = "nats://hub.lan:4222"
leafnode_url = "nats-leaf://hub.lan:7422"

[[nodes]]
name = "hub"
role = "hub"
tier = "server"

[[nodes]]
name = "pi-garage"
role = "leaf"
tier = "edge"
sensors = ["system"]
"""


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nodes.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_homelab(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    return message.removeprefix(f"{path}:")


def test_the_committed_example_loads() -> None:
    lab = load_homelab(ROOT / "nodes.toml")
    assert lab.hub_node.name == lab.hub.name == "hub"
    assert lab.hub_node.role == "hub"
    assert [n.name for n in lab.leaves] == ["pi-garage", "pi-kitchen"]
    assert lab.node("pi-garage").sensors == ("system", "gpio:17")
    assert lab.node("pi-garage").tier == "edge"
    assert lab.hub.leafnode_host == "hub.lan"
    assert lab.hub.leafnode_port == lab.hub_node.leafnode_port == 7422


def test_defaults_and_unknown_node(tmp_path: Path) -> None:
    path = tmp_path / "nodes.toml"
    path.write_text(GOOD)
    lab = load_homelab(path)
    leaf = lab.node("pi-garage")
    assert (leaf.host, leaf.client_port, leaf.capabilities, leaf.ollama_url) == (
        "127.0.0.1",
        4222,
        (),
        None,
    )
    with pytest.raises(ConfigError, match=r"unknown node 'pi-attic' \(known: hub, pi-garage\)"):
        lab.node("pi-attic")


def test_models_are_frozen_and_strict() -> None:
    lab = Homelab(
        hub=HubAddress(name="h", client_url="nats://h:4222", leafnode_url="nats-leaf://h:7422"),
        nodes=(NodeSpec(name="h", role="hub", tier="server"),),
    )
    with pytest.raises(ValueError, match="frozen"):
        lab.hub_node.name = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="more than one hub"):
        Homelab(hub=lab.hub, nodes=(*lab.nodes, NodeSpec(name="h2", role="hub", tier="gpu")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace('tier = "edge"', 'tierr = "edge"'),
            "14: unknown key 'tierr' in node 'pi-garage'",
        ),
        (
            GOOD.replace('tier = "edge"', 'tier = "huge"'),
            "14: invalid 'tier' in node 'pi-garage': Input should be",
        ),
        (GOOD.replace('name = "pi-garage"', 'name = "Pi Garage"'), "12: invalid 'name' in node"),
        (GOOD.replace('name = "pi-garage"', 'name = "hub"'), "12: duplicate node name 'hub'"),
        (
            GOOD.replace('role = "leaf"', 'role = "hub"'),
            "13: more than one hub: 'hub' and 'pi-garage'",
        ),
        (GOOD.replace('role = "hub"', 'role = "leaf"'), '6: no node has role = "hub"'),
        (
            GOOD.replace('name = "hub"\nclient', 'name = "pi-garage"\nclient'),
            "2: [hub] name 'pi-garage'",
        ),
        (GOOD.replace("[hub]", "[hubb]"), "1: unknown key 'hubb'"),
        (
            GOOD[GOOD.index("[[nodes]]") :],
            "1: missing [hub] table",
        ),
        (
            GOOD.replace('leafnode_url = "nats-leaf://hub.lan:7422"', 'leafnode = "x"'),
            "4: unknown key 'leafnode' in [hub]",
        ),
        (
            GOOD.replace("nats-leaf://hub.lan:7422", "http://hub.lan"),
            "4: invalid 'leafnode_url' in [hub]",
        ),
        (
            GOOD.replace("nats-leaf://hub.lan:7422", "nats-leaf://u:p@hub.lan:7422"),
            "4: invalid 'leafnode_url' in [hub]: 'nats-leaf://u:p@hub.lan:7422' carries",
        ),
        (GOOD.replace('role = "leaf"\n', ""), "11: missing key 'role' in node 'pi-garage'"),
        (
            GOOD.replace('sensors = ["system"]', "client_port = 0"),
            "15: invalid 'client_port' in node 'pi-garage'",
        ),
        (
            GOOD.replace('sensors = ["system"]', 'sensors = ["system"'),
            "15: invalid TOML: Unclosed array",
        ),
        (GOOD + 'extra = "x', "16: invalid TOML: Unterminated string (at end of file)"),
        (GOOD + "\n[[nodes]]\n", "17: missing key 'name' in node '#3'"),
    ],
    ids=[
        "unknown-key",
        "bad-tier",
        "bad-name",
        "duplicate",
        "two-hubs",
        "no-hub",
        "hub-name",
        "unknown-table",
        "missing-hub",
        "hub-unknown-key",
        "bad-url",
        "url-with-credentials",
        "missing-role",
        "bad-port",
        "syntax",
        "syntax-at-end",
        "empty-block",
    ],
)
def test_each_mistake_is_one_line_with_its_line_number(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert error_of(tmp_path, text).startswith(expected)


def test_the_unknown_key_line_is_inside_the_right_block(tmp_path: Path) -> None:
    # `tierr` also appears in an earlier block (as a comment) and the same key name exists in
    # every block: the line must be the one inside the third [[nodes]].
    text = GOOD.replace("[hub]", '# tierr = "x"\n[hub]') + (
        '\n[[nodes]]\nname = "pi-kitchen"\nrole = "leaf"\ntier = "edge"\ntierr = "micro"\n'
    )
    assert error_of(tmp_path, text) == "22: unknown key 'tierr' in node 'pi-kitchen'"


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nodes\.toml: cannot read: No such file"):
        load_homelab(tmp_path / "nodes.toml")
