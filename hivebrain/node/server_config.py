"""A node's complete nats-server config, rendered from the homelab and the node secrets.

Why and how: docs/design.md section 10, `hivebrain/node/server_config.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from hivebrain.errors import ConfigError
from hivebrain.node.credentials import NodeCredentials
from hivebrain.node.homelab import Homelab, NodeSpec
from hivebrain.node.liveness import SUBJECT_PREFIX as HEARTBEAT_PREFIX
from hivebrain.node.liveness import heartbeat_subject
from hivebrain.transport.server import RenderedServerConfig
from hivebrain.transport.topology import KV_BUCKETS

HIVE_ACCOUNT = "HIVE"
SYS_ACCOUNT = "SYS"
SYS_USER = "sys"
JOIN_SUBJECT = "hivebrain.join"
MAX_PAYLOAD = 8 * 1024 * 1024
LEAF_RECONNECT = "1s"
_BCRYPT = re.compile(r"^\$2[abxy]?\$")  # nats-server takes such a password for a bcrypt hash


def join_subject(node: str) -> str:
    return f"{JOIN_SUBJECT}.{node}"


def join_inbox_prefix(node: str) -> str:
    return f"_INBOX.{node}"


def api_prefix(domain: str) -> str:
    return f"$JS.{domain}.API"


def source_deliver_prefix(leaf: str) -> str:
    """`ExternalStream.deliver` of the hub's source of `leaf`'s EVENTS."""
    return f"$JS.S.{leaf}"


def mirror_deliver_prefix(leaf: str) -> str:
    """`ExternalStream.deliver` of `leaf`'s mirror of the hub's HIVE."""
    return f"$JS.M.{leaf}"


def needed_credentials(homelab: Homelab, node: str) -> tuple[str, ...]:
    """Whose secrets the node's config holds: the hub every node's, a leaf only its own."""
    spec = homelab.node(node)
    if spec.role == "hub":
        return tuple(n.name for n in homelab.nodes)
    return (spec.name,)


def shared_consumer_api(hub: str) -> list[str]:
    """The API subjects of the hub's JetStream a leaf's actors use for the consumers they
    share with other nodes (the embedder's): create, read info, pull."""
    hub_api = api_prefix(hub)
    return [
        f"{hub_api}.CONSUMER.CREATE.HIVE.>",
        f"{hub_api}.CONSUMER.INFO.HIVE.>",
        f"{hub_api}.CONSUMER.MSG.NEXT.HIVE.>",
    ]


def client_permissions(
    node: str, *, hub: bool, hub_name: str | None = None
) -> tuple[list[str], list[str]]:
    """(publish, subscribe) of a node's own user on its own server (`hub_name`: a leaf's
    hub, whose shared actor consumers it pulls)."""
    publish = [f"hive.{node}.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "_INBOX.>"]
    # Its own domain's API too, so `nats --js-domain <node>` works on the node itself.
    publish += [f"{api_prefix(node)}.>", join_subject(node), heartbeat_subject(node)]
    if not hub and hub_name is not None:
        publish += shared_consumer_api(hub_name)
    # Session context and tool cache: key-value buckets of the node's own server.
    publish += [f"$KV.{bucket}.>" for bucket in KV_BUCKETS]
    subscribe = ["hive.>", "_INBOX.>", f"{HEARTBEAT_PREFIX}.*"]
    if hub:
        subscribe.append(f"{JOIN_SUBJECT}.>")
    return publish, subscribe


def leaf_link_permissions(leaf: str, hub: str) -> tuple[list[str], list[str]]:
    """(publish, subscribe) of `leaf`'s link user on the hub: publish = what the leaf may send
    into the hub, subscribe = what the hub may send to the leaf."""
    hub_api = api_prefix(hub)
    leaf_api = api_prefix(leaf)
    publish = [
        f"hive.{leaf}.>",
        f"{hub_api}.CONSUMER.CREATE.HIVE",  # its mirror's consumer (name in the body)
        *shared_consumer_api(hub),  # its mirror's (create) and its shared actors' consumers
        f"{hub_api}.CONSUMER.DELETE.HIVE.>",
        "$JS.ACK.HIVE.>",  # its actors' acks of what they pulled from the hub's HIVE
        f"{source_deliver_prefix(leaf)}.>",  # deliveries to the hub's source
        "$JSC.R.>",  # replies to the hub's consumer-create requests
        "$JS.FC.>",  # flow-control replies of its mirror
        join_subject(leaf),
        heartbeat_subject(leaf),  # liveness, under its own name only
    ]
    subscribe = [
        f"{leaf_api}.CONSUMER.CREATE.EVENTS.>",
        f"{leaf_api}.CONSUMER.DELETE.EVENTS.>",
        f"{mirror_deliver_prefix(leaf)}.>",  # deliveries to its mirror
        "$JSC.R.>",  # replies to its mirror's consumer-create
        "$JS.FC.>",
        f"{join_inbox_prefix(leaf)}.>",  # replies to its join requests
        f"{HEARTBEAT_PREFIX}.*",  # everyone's liveness
    ]
    return publish, subscribe


def render_server_config(
    homelab: Homelab,
    node: str,
    credentials: Mapping[str, NodeCredentials],
    store_dir: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    http_port: int | None = None,
    no_advertise: bool = False,
) -> str:
    """The config text. `host`/`port` override the node's listen address from nodes.toml;
    `http_port` turns on the monitoring endpoint (unauthenticated: tests and loopback only).
    `no_advertise` (hub; also `[hub] no_advertise = true` in nodes.toml): do not tell leaves
    the hub's own leafnode URLs, so a leaf only ever dials the `[hub] leafnode_url` it was
    given (needed when that address is a proxy or a NAT in front of the hub)."""
    spec = homelab.node(node)
    creds = _needed(homelab, spec, credentials)
    own = creds[spec.name]
    host = host or spec.host
    port = spec.client_port if port is None else port
    is_hub = spec.role == "hub"
    out = [
        f"# nats-server config of node {spec.name!r} ({spec.role}), rendered by hivebrain "
        "from nodes.toml.",
        "# It holds passwords: keep it readable by its owner only.",
        f"server_name: {_q(spec.name)}",
        f"listen: {_q(_hostport(host, port))}",
        f"max_payload: {MAX_PAYLOAD}",
    ]
    if http_port is not None:
        out.append(f"http: {_q(_hostport(host, http_port))}")
    out += [
        "jetstream {",
        f"  store_dir: {_q(str(store_dir / 'jetstream'))}",
        f"  domain: {_q(spec.name)}",
        "}",
        f"system_account: {_q(SYS_ACCOUNT)}",
    ]
    if is_hub:
        out += ["leafnodes {", f"  listen: {_q(_hostport(host, spec.leafnode_port))}"]
        if no_advertise or homelab.hub.no_advertise:
            out.append("  no_advertise: true")
        out.append("}")
    else:
        out += [
            "leafnodes {",
            f"  reconnect: {_q(LEAF_RECONNECT)}",
            "  remotes: [",
            f"    {{ url: {_q(_remote_url(homelab, own))}, account: {_q(HIVE_ACCOUNT)} }}",
            "  ]",
            "}",
        ]
    own_permissions = client_permissions(spec.name, hub=is_hub, hub_name=homelab.hub.name)
    users = [_user(spec.name, own, *own_permissions, kind="STANDARD")]
    if is_hub:
        users += [
            _user(
                leaf.name,
                creds[leaf.name],
                *leaf_link_permissions(leaf.name, spec.name),
                kind="LEAFNODE",
            )
            for leaf in homelab.leaves
        ]
    sys_user = f"{{ user: {_q(SYS_USER)}, password: {_q(own.sys_password.get_secret_value())} }}"
    out += [
        "accounts {",
        f"  {SYS_ACCOUNT} {{",
        f"    users: [ {sys_user} ]",
        "  }",
        f"  {HIVE_ACCOUNT} {{",
        "    jetstream: enabled",
        "    users: [",
        *users,
        "    ]",
        "  }",
        "}",
    ]
    return "\n".join(out) + "\n"


def server_config(
    homelab: Homelab,
    node: str,
    credentials: Mapping[str, NodeCredentials],
    store_dir: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    http_port: int | None = None,
    no_advertise: bool = False,
) -> RenderedServerConfig:
    """What `NatsServer` runs: the rendered text and where it listens."""
    spec = homelab.node(node)
    text = render_server_config(
        homelab,
        node,
        credentials,
        store_dir,
        host=host,
        port=port,
        http_port=http_port,
        no_advertise=no_advertise,
    )
    return RenderedServerConfig(
        text=text,
        store_dir=store_dir,
        host=host or spec.host,
        port=spec.client_port if port is None else port,
    )


def _needed(
    homelab: Homelab, spec: NodeSpec, credentials: Mapping[str, NodeCredentials]
) -> dict[str, NodeCredentials]:
    if spec.name == SYS_USER or any(n.name == SYS_USER for n in homelab.leaves):
        raise ConfigError(f"node name {SYS_USER!r} is reserved for the system account user")
    found = {}
    for name in needed_credentials(homelab, spec.name):
        creds = credentials.get(name)
        if creds is None:
            raise ConfigError(f"the config of {spec.name!r} needs the credentials of {name!r}")
        if creds.node != name:
            raise ConfigError(f"credentials given for {name!r} belong to {creds.node!r}")
        if _BCRYPT.match(creds.reveal()):
            raise ConfigError(f"the password of {name!r} looks like a bcrypt hash; rotate it")
        found[name] = creds
    return found


def _user(
    name: str,
    creds: NodeCredentials,
    publish: Sequence[str],
    subscribe: Sequence[str],
    *,
    kind: str,
) -> str:
    return "\n".join(
        [
            "      {",
            f"        user: {_q(name)}",
            f"        password: {_q(creds.reveal())}",
            f"        allowed_connection_types: [{kind}]",
            "        permissions: {",
            f"          publish: {{ allow: {_list(publish)} }}",
            f"          subscribe: {{ allow: {_list(subscribe)} }}",
            "        }",
            "      }",
        ]
    )


def _remote_url(homelab: Homelab, creds: NodeCredentials) -> str:
    hub = homelab.hub
    secret = quote(creds.reveal(), safe="")
    user = quote(creds.node, safe="")
    return f"{hub.leafnode_scheme}://{user}:{secret}@{hub.leafnode_host}:{hub.leafnode_port}"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(item) for item in items) + "]"


def _q(value: str) -> str:
    """A double-quoted string of the nats-server config format (escapes: \\\\ and \\")."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ConfigError("control characters cannot be written to a nats-server config")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
