"""Rendered nats-server configs, run for real: a hub and two leaves on 127.0.0.1 free ports.

pi-a is configured correctly; pi-b's leaf remote uses a password the hub does not know."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import ServiceUnavailableError

from hivebrain.errors import ConfigError
from hivebrain.node.credentials import NodeCredentials, new_credentials
from hivebrain.node.homelab import Homelab, HubAddress, NodeSpec, load_homelab
from hivebrain.node.server_config import (
    join_inbox_prefix,
    join_subject,
    render_server_config,
    server_config,
)
from hivebrain.transport.server import NatsServer, free_port

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the hive fixture lives there


def homelab(leaves: tuple[str, ...] = ("pi-a", "pi-b"), hub: str = "hub") -> Homelab:
    leaf_port = free_port()
    return Homelab(
        hub=HubAddress(
            name=hub,
            client_url="nats://127.0.0.1:4222",
            leafnode_url=f"nats-leaf://127.0.0.1:{leaf_port}",
        ),
        nodes=(
            NodeSpec(
                name=hub,
                role="hub",
                tier="server",
                client_port=free_port(),
                leafnode_port=leaf_port,
            ),
            *(NodeSpec(name=n, role="leaf", tier="edge", client_port=free_port()) for n in leaves),
        ),
    )


@dataclass
class Hive:
    lab: Homelab
    creds: dict[str, NodeCredentials]
    servers: dict[str, NatsServer]
    monitor: int
    root: Path
    wrong: NodeCredentials  # the secret pi-b's leaf remote uses
    clients: list[Client] = field(default_factory=list)

    def url(self, node: str) -> str:
        return self.servers[node].url

    def leafz(self) -> list[str]:
        url = f"http://127.0.0.1:{self.monitor}/leafz"
        with urllib.request.urlopen(url, timeout=3) as response:
            data: dict[str, Any] = json.loads(response.read())
        return [f"{leaf['name']}/{leaf['account']}" for leaf in data.get("leafs") or []]

    def log(self, node: str) -> str:
        return (self.root / node / "nats-server.log").read_text(errors="replace")

    async def login(self, node: str, user: str | None = None, **options: Any) -> Client:
        """The node's own user on the node's own server (or `user` with its password)."""
        user = user or node
        nc = await nats.connect(
            self.url(node),
            user=user,
            password=self.creds[user].reveal(),
            allow_reconnect=False,
            **options,
        )
        self.clients.append(nc)
        return nc


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not true after {timeout}s")
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hive(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hive]:
    root = tmp_path_factory.mktemp("hive")
    lab = homelab()
    creds = {n.name: new_credentials(n.name) for n in lab.nodes}
    monitor = free_port()
    wrong = new_credentials("pi-b")
    configs = {
        "hub": server_config(lab, "hub", creds, root / "hub", http_port=monitor),
        "pi-a": server_config(lab, "pi-a", {"pi-a": creds["pi-a"]}, root / "pi-a"),
        # pi-b's own secret is not the one the hub was given for it
        "pi-b": server_config(lab, "pi-b", {"pi-b": wrong}, root / "pi-b"),
    }
    servers = {name: NatsServer(config) for name, config in configs.items()}
    hive = Hive(lab, creds, servers, monitor, root, wrong)
    await asyncio.gather(*(s.start() for s in servers.values()))
    try:
        yield hive
    finally:
        for nc in hive.clients:
            if not nc.is_closed:
                await nc.close()
        await asyncio.gather(*(s.stop() for s in servers.values()))


@in_module_loop
async def test_the_leaf_link_comes_up_bound_to_hive(hive: Hive) -> None:
    await until(lambda: "pi-a/HIVE" in hive.leafz())
    assert "Leafnode connection created for account: HIVE" in hive.log("pi-a")
    assert 'remote "hub"' in hive.log("pi-a")


@in_module_loop
async def test_a_leaf_with_a_wrong_password_is_refused(hive: Hive) -> None:
    await until(lambda: "Authorization Violation" in hive.log("pi-b"))
    await until(lambda: "pi-a/HIVE" in hive.leafz())
    assert not any(name.startswith("pi-b/") for name in hive.leafz())
    assert 'authentication error - User "pi-b"' in hive.log("hub")


def test_no_secret_reaches_a_server_log(hive: Hive) -> None:
    """Runs after the failed leaf logins, which log the remote they tried."""
    logs = "".join(hive.log(node) for node in hive.servers)
    assert "Authorization Violation" in logs
    for creds in [*hive.creds.values(), hive.wrong]:
        assert creds.reveal() not in logs
        assert creds.sys_password.get_secret_value() not in logs


@in_module_loop
async def test_a_node_publishes_under_its_own_name(hive: Hive) -> None:
    nc = await hive.login("pi-a")
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="EVENTS", subjects=["hive.pi-a.>"]))
    ack = await js.publish("hive.pi-a.memory.x", b"hello", timeout=5)
    assert (ack.stream, ack.seq) == ("EVENTS", 1)


@in_module_loop
@pytest.mark.parametrize(
    ("node", "subject"),
    [("pi-a", "hive.pi-b.memory.x"), ("pi-a", "hive.hub.memory.x"), ("hub", "hive.pi-a.x")],
)
async def test_a_node_cannot_publish_under_another_name(
    hive: Hive, node: str, subject: str
) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await hive.login(node, error_cb=on_error)
    js = nc.jetstream()
    with pytest.raises(nats.errors.TimeoutError):
        await js.publish(subject, b"forged", timeout=0.5)
    await until(lambda: bool(errors), timeout=2)
    assert errors == [f'nats: permissions violation for publish to "{subject}"']
    assert nc.is_connected


async def refusal(url: str, **options: Any) -> str:
    with pytest.raises(Exception) as info:
        nc = await nats.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **options
        )
        await nc.close()
    return str(info.value).lower()


@in_module_loop
@pytest.mark.parametrize("node", ["hub", "pi-a", "pi-b"])
async def test_no_login_without_the_right_password(hive: Hive, node: str) -> None:
    url = hive.url(node)
    assert "authorization violation" in await refusal(url)
    assert "authorization violation" in await refusal(url, user=node, password="x" * 32)
    assert "authorization violation" in await refusal(url, user="admin", password="admin")


@in_module_loop
async def test_logins_are_per_node_and_per_purpose(hive: Hive) -> None:
    pi_a = hive.creds["pi-a"].reveal()
    # the hub login of a leaf serves its leaf link only, not a client connection
    assert "authorization violation" in await refusal(hive.url("hub"), user="pi-a", password=pi_a)
    # a leaf's server knows no other node's user
    hub_password = hive.creds["hub"].reveal()
    refused = await refusal(hive.url("pi-a"), user="hub", password=hub_password)
    assert "authorization violation" in refused
    # the system account user works with the derived password
    sys_password = hive.creds["hub"].sys_password.get_secret_value()
    nc = await nats.connect(hive.url("hub"), user="sys", password=sys_password)
    await nc.close()


@in_module_loop
async def test_a_join_request_crosses_the_link_and_is_answered(hive: Hive) -> None:
    await until(lambda: "pi-a/HIVE" in hive.leafz())
    hub = await hive.login("hub")

    async def answer(msg: Any) -> None:
        await msg.respond(b"welcome " + msg.subject.encode())

    await hub.subscribe("hivebrain.join.>", cb=answer)
    await hub.flush()
    leaf = await hive.login("pi-a", inbox_prefix=join_inbox_prefix("pi-a"))

    async def ask() -> bool:
        try:
            reply = await leaf.request(join_subject("pi-a"), b"{}", timeout=0.5)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            return False  # the hub's interest has not crossed the link yet
        assert reply.data == b"welcome hivebrain.join.pi-a"
        return True

    await until(ask, timeout=10)

    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    impostor = await hive.login("pi-a", error_cb=on_error)
    await impostor.publish(join_subject("pi-b"), b"{}")
    await until(lambda: bool(errors), timeout=2)
    assert "permissions violation" in errors[0]


@in_module_loop
async def test_passwords_are_quoted_for_the_config_format(tmp_path: Path) -> None:
    lab = homelab(leaves=())
    odd = NodeCredentials.model_validate({"node": "hub", "password": "a\"b\\c$d #e}{f'g[h]:i,j=k"})
    server = NatsServer(server_config(lab, "hub", {"hub": odd}, tmp_path / "hub"))
    await server.start()
    try:
        nc = await nats.connect(server.url, user="hub", password=odd.reveal())
        await nc.close()
        assert "authorization violation" in await refusal(server.url, user="hub", password="a")
    finally:
        await server.stop()
    mode = (tmp_path / "hub" / "nats-server.conf").stat().st_mode & 0o777
    assert mode == 0o600


def test_the_config_needs_the_secrets_of_the_nodes_it_names(tmp_path: Path) -> None:
    lab = homelab(leaves=("pi-a",))
    hub = new_credentials("hub")
    with pytest.raises(ConfigError, match="the config of 'hub' needs the credentials of 'pi-a'"):
        render_server_config(lab, "hub", {"hub": hub}, tmp_path)
    with pytest.raises(ConfigError, match="credentials given for 'pi-a' belong to 'hub'"):
        render_server_config(lab, "pi-a", {"pi-a": hub}, tmp_path)
    with pytest.raises(ConfigError, match="unknown node 'pi-z'"):
        render_server_config(lab, "pi-z", {}, tmp_path)
    with pytest.raises(ConfigError, match="reserved"):
        render_server_config(homelab(leaves=("sys",)), "hub", {}, tmp_path)
    text = render_server_config(lab, "pi-a", {"pi-a": new_credentials("pi-a")}, tmp_path)
    assert hub.reveal() not in text  # a leaf's config holds only its own secret


def test_the_hub_advertises_its_leafnode_address_unless_told_not_to(tmp_path: Path) -> None:
    lab = homelab(leaves=("pi-a",))
    creds = {n.name: new_credentials(n.name) for n in lab.nodes}
    assert "no_advertise" not in render_server_config(lab, "hub", creds, tmp_path)
    text = render_server_config(lab, "hub", creds, tmp_path, no_advertise=True)
    leafnodes = text.split("leafnodes {", 1)[1].split("}", 1)[0]
    assert "no_advertise: true" in leafnodes
    assert "listen:" in leafnodes


def test_nodes_toml_turns_off_the_advertised_leafnode_address(tmp_path: Path) -> None:
    path = tmp_path / "nodes.toml"
    path.write_text(
        '[hub]\nname = "hub"\nclient_url = "nats://127.0.0.1:4222"\n'
        'leafnode_url = "nats-leaf://proxy.lan:7422"\nno_advertise = true\n\n'
        '[[nodes]]\nname = "hub"\nrole = "hub"\ntier = "server"\n\n'
        '[[nodes]]\nname = "pi-a"\nrole = "leaf"\ntier = "edge"\n'
    )
    lab = load_homelab(path)
    assert lab.hub.no_advertise
    creds = {n.name: new_credentials(n.name) for n in lab.nodes}
    leafnodes = render_server_config(lab, "hub", creds, tmp_path).split("leafnodes {", 1)[1]
    assert "no_advertise: true" in leafnodes.split("}", 1)[0]
    path.write_text(path.read_text().replace("no_advertise = true", "no_advertise = 3"))
    with pytest.raises(ConfigError, match="no_advertise"):
        load_homelab(path)


@in_module_loop
async def test_a_leaf_pulls_and_acks_a_consumer_it_shares_on_the_hub(hive: Hive) -> None:
    """The embedders of several nodes share one durable consumer of the hub's HIVE: a leaf
    creates it, pulls from it and acks through the hub's JetStream domain, over its link."""
    await until(lambda: "pi-a/HIVE" in hive.leafz())
    hub = await hive.login("hub")
    hub_js = hub.jetstream()
    await hub_js.add_stream(StreamConfig(name="HIVE", subjects=["hive.>"]))
    await hub_js.publish("hive.hub.memory.m1", b"a text to embed")
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    leaf = await hive.login("pi-a", inbox_prefix=join_inbox_prefix("pi-a"), error_cb=on_error)
    js = leaf.jetstream(domain="hub", timeout=2.0)
    name = "actor-embedder-m"
    config = ConsumerConfig(name=name, durable_name=name, ack_policy=AckPolicy.EXPLICIT)

    async def created() -> bool:
        try:
            await js.add_consumer("HIVE", config=config)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
            return False  # the hub's JetStream not reachable across the link yet
        return True

    await until(created, timeout=10)
    sub = await js.pull_subscribe_bind(durable="actor-embedder-m", stream="HIVE")
    [msg] = await sub.fetch(1, timeout=5)
    assert msg.data == b"a text to embed"
    await msg.ack_sync(timeout=5)
    info = await hub_js.consumer_info("HIVE", "actor-embedder-m")
    assert (info.delivered.stream_seq, info.num_ack_pending, info.num_pending) == (1, 0, 0)
    assert not errors


def test_free_ports_come_from_below_the_ephemeral_range() -> None:
    # Ports from the ephemeral range also go to outgoing connections, which could take one
    # between the pick and the server's bind.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(50)]
    assert all(1024 <= p < low for p in ports)
    assert len(set(ports)) == len(ports)  # none handed out twice before a server binds it
