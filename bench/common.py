"""What every benchmark shares: a deterministic homelab corpus, a real nats-server in a
temporary directory, results, and progress lines on stderr."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivebrain.events.subjects import EVENTS_STREAM, HIVE_STREAM
from hivebrain.transport.bus import Bus, connect
from hivebrain.transport.server import NatsServer, ServerConfig, free_port

NODE = "bench"

# -- results ----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One row of the table. `higher_is_better` decides how the target is checked. With
    `peer` set, `baseline` is that peer library's figure on the same workload, and the row
    goes into the peer table (ratio peer / hivebrain)."""

    metric: str
    unit: str
    hivebrain: float
    baseline: float
    target: float | None
    higher_is_better: bool
    notes: dict[str, Any] = field(default_factory=dict)
    peer: str | None = None
    #: The baseline's figure on the machine where `target` was set, when the target names it.
    reference_baseline: float | None = None

    @property
    def ratio(self) -> float:
        return self.hivebrain / self.baseline if self.baseline else float("nan")

    @property
    def peer_ratio(self) -> float:
        return self.baseline / self.hivebrain if self.hivebrain else float("nan")

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self._meets(self.target)

    @property
    def scaled_target(self) -> float | None:
        """The target at this machine's speed: scaled by this run's baseline over the one the
        target was set beside (a throughput target on a machine whose raw client runs at half
        the speed asks for half)."""
        if self.target is None or self.reference_baseline is None or not self.baseline:
            return None
        return self.target * self.baseline / self.reference_baseline

    @property
    def met_scaled(self) -> bool | None:
        scaled = self.scaled_target
        return None if scaled is None else self._meets(scaled)

    def _meets(self, bound: float) -> bool:
        return self.hivebrain >= bound if self.higher_is_better else self.hivebrain <= bound

    def as_dict(self) -> dict[str, Any]:
        if self.peer is not None:
            return {
                "metric": self.metric,
                "unit": self.unit,
                "peer": self.peer,
                "hivebrain": self.hivebrain,
                "peer_value": self.baseline,
                "peer_over_hivebrain": self.peer_ratio,
                "notes": self.notes,
            }
        return {
            "metric": self.metric,
            "unit": self.unit,
            "hivebrain": self.hivebrain,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target,
            "target_op": ">=" if self.higher_is_better else "<=",
            "met": self.met,
            "reference_baseline": self.reference_baseline,
            "scaled_target": self.scaled_target,
            "met_scaled": self.met_scaled,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Sizes:
    publish: int
    rebuild: int
    recall_memories: int
    recall_queries: int
    catchup: int
    embed: int = 2_000
    searchable: int = 200
    hybrid: tuple[int, ...] = (10_000, 100_000)
    hybrid_queries: int = 300
    peers: int = 25_000
    peer_queries: int = 200


FULL = Sizes(
    publish=200_000,
    rebuild=200_000,
    recall_memories=100_000,
    recall_queries=500,
    catchup=100_000,
    embed=2_000,
    searchable=200,
    hybrid=(10_000, 100_000),
    hybrid_queries=300,
    peers=25_000,
    peer_queries=200,
)
QUICK = Sizes(
    publish=20_000,
    rebuild=20_000,
    recall_memories=10_000,
    recall_queries=200,
    catchup=5_000,
    embed=300,
    searchable=30,
    hybrid=(10_000,),
    hybrid_queries=100,
    peers=2_000,
    peer_queries=50,
)


# -- progress ---------------------------------------------------------------------------------


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Progress:
    """Prints `label: done/total (rate/s)` on stderr at most every `every` seconds."""

    def __init__(self, label: str, total: int, every: float = 2.0) -> None:
        self.label = label
        self.total = total
        self.every = every
        self.done = 0
        self._start = time.perf_counter()
        self._last = self._start

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._last = now
            self._print(now)

    def finish(self) -> float:
        now = time.perf_counter()
        self._print(now)
        return now - self._start

    def _print(self, now: float) -> None:
        rate = self.done / max(now - self._start, 1e-9)
        say(f"  {self.label}: {self.done:,}/{self.total:,} ({rate:,.0f}/s)")


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    say(f"{name} ...")
    started = time.perf_counter()
    yield
    say(f"{name}: {time.perf_counter() - started:.1f}s")


# -- a real nats-server -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def nats_server() -> AsyncIterator[tuple[NatsServer, Bus, Path]]:
    """A nats-server with a file-backed JetStream store in a fresh temporary directory,
    a connected Bus, and a scratch directory for SQLite files."""
    tmp = Path(tempfile.mkdtemp(prefix="hivebrain-bench-"))
    server = NatsServer(ServerConfig(store_dir=tmp / "nats", port=free_port()))
    await server.start()
    try:
        bus = await connect(server.url, name="hivebrain-bench")
        try:
            scratch = tmp / "scratch"
            scratch.mkdir()
            yield server, bus, scratch
        finally:
            await bus.close()
    finally:
        await server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def fresh_streams(bus: Bus) -> None:
    """Delete EVENTS and HIVE if present and create them as a single node does."""
    for name in (HIVE_STREAM, EVENTS_STREAM):
        with contextlib.suppress(Exception):
            await bus.js.delete_stream(name)
    await bus.ensure_streams(NODE)


# -- a deterministic homelab corpus -----------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SERVICES = _words(
    "jellyfin plex nextcloud homeassistant grafana prometheus loki traefik caddy nginx pihole "
    "adguard wireguard tailscale unifi proxmox truenas zfs k3s kubernetes docker podman portainer "
    "ollama llama mistral qwen whisper frigate mosquitto zigbee2mqtt nodered influxdb postgres "
    "redis minio syncthing restic borg vaultwarden gitea forgejo drone woodpecker authentik "
    "keycloak immich paperless photoprism sonarr radarr lidarr prowlarr qbittorrent sabnzbd "
    "uptime kuma netdata telegraf smokeping opnsense pfsense openwrt mikrotik esphome tasmota "
    "octoprint klipper mainsail nats jetstream sqlite hnswlib embeddings lora"
)
_HARDWARE = _words(
    "raspberry pi pi4 pi5 nuc laptop desktop server rack switch router nas ssd nvme hdd sata "
    "usb gpu rtx 3090 4090 jetson orin coral tpu ups battery fan heatsink psu ram dimm ecc "
    "cpu arm64 amd64 x86 poe antenna ethernet fiber sfp thunderbolt hdmi camera sensor relay "
    "gpio dht22 bme280 ds18b20 thermostat bulb plug doorbell"
)
_NOUNS = _words(
    "backup snapshot restore certificate dns dhcp vlan subnet firewall port proxy tunnel mount "
    "volume container image pod namespace cluster node agent model prompt context token memory "
    "queue stream consumer sequence cron job timer service unit config yaml toml secret key "
    "password login user group permission log alert dashboard metric query index schema table "
    "migration upgrade update kernel driver firmware bios boot partition filesystem disk pool "
    "dataset scrub replication mirror cache latency bandwidth throughput temperature humidity "
    "power voltage uptime outage reboot crash error warning timeout retry leak load storage "
    "network wifi bluetooth mesh vpn gateway hostname address route peer link script playbook "
    "ansible terraform inventory variable template release version tag branch commit build "
    "pipeline runner artifact registry mirror webhook notification email calendar recipe garden "
    "plant kitchen bedroom garage office basement attic weather forecast sunrise schedule"
)
_VERBS = _words(
    "restarted crashed failed upgraded migrated configured rebuilt restored installed removed "
    "moved renamed fixed broke tuned limited increased reduced enabled disabled pinned patched "
    "exposed blocked mounted formatted replaced tested benchmarked monitored scheduled rotated "
    "expired renewed flashed rebooted cleaned pruned compacted indexed cached synced paused"
)
_ADJECTIVES = _words(
    "slow fast flaky stable noisy quiet hot cold full empty stale fresh broken healthy degraded "
    "default custom local remote internal external primary secondary old new nightly weekly "
    "daily manual automatic encrypted compressed readonly dedicated shared"
)
_FUNCTION = _words(
    "the a an on in at to from with after before because when while and but so then for of "
    "by via under over into again still now also only"
)
TAGS = _words(
    "homelab network storage backup docker k8s smarthome media llm gpu power security monitoring "
    "iot automation hardware sensors dns vpn todo incident fix howto idea garden kitchen"
)

_SYLLABLES = _words(
    "ka ri to mo na se lu vi pe da go zu fe ni ra bo ti ke ma so du li ne pa ko ve xi ja re hu"
)


def _pseudo_words(rng: random.Random, count: int) -> list[str]:
    """Made-up project and host names, so the vocabulary reaches a few thousand words."""
    out: dict[str, None] = {}
    while len(out) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        out[word] = None
    return list(out)


class Corpus:
    """Seeded generator of memory texts (60-200 characters) and tags.

    Content words follow a Zipf-like distribution over about 3,000 words, so some terms are
    common (as `docker` or `backup` are in a homelab) and most are rare.
    """

    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        # Real homelab words take the frequent ranks, made-up names the long tail.
        words = list(dict.fromkeys(_SERVICES + _HARDWARE + _NOUNS + _VERBS + _ADJECTIVES))
        random.Random(seed + 2).shuffle(words)
        words += _pseudo_words(random.Random(seed + 1), 3000 - len(words))
        self.vocabulary: list[str] = words
        weights = [1.0 / (rank + 10) for rank in range(len(words))]
        self._cumulative = list(itertools.accumulate(weights))
        self._hosts = [
            f"{h}-{n:02d}" for h in ("pi", "nuc", "nas", "gpu", "sw") for n in range(1, 13)
        ]

    def word(self) -> str:
        x = self.rng.random() * self._cumulative[-1]
        return self.vocabulary[bisect.bisect_left(self._cumulative, x)]

    def text(self) -> str:
        rng = self.rng
        target = rng.randint(60, 200)
        parts: list[str] = []
        length = 0
        while length < target:
            roll = rng.random()
            if roll < 0.62:
                token = self.word()
            elif roll < 0.9:
                token = rng.choice(_FUNCTION)
            elif roll < 0.95:
                token = rng.choice(self._hosts)
            elif roll < 0.98:
                token = str(rng.choice((22, 53, 80, 443, 1883, 3000, 4222, 8080, 8123, 9090)))
            else:
                token = f"192.168.{rng.randint(1, 40)}.{rng.randint(2, 254)}"
            parts.append(token)
            length += len(token) + 1
        text = " ".join(parts)
        if len(text) > 200:
            text = text[:200].rsplit(" ", 1)[0]
        return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "!", "?", ""))

    def tags(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.rng.sample(TAGS, self.rng.choice((0, 1, 1, 2, 2, 3))))))

    def query(self) -> str:
        """1-3 content words drawn with the corpus's own word frequencies."""
        return " ".join(self.word() for _ in range(self.rng.choice((1, 2, 2, 3))))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
