"""Leaf-node spike probe: hub + leaf1 + leaf2 nats-servers on 127.0.0.1, measured.

    .venv/bin/python spikes/leaf/probe.py [basic] [addsource] [partition] [--n 10000] [--down 20]

Every server is started by this script on free 127.0.0.1 ports with store dirs in a temporary
directory, and killed at the end (also on error). Results are printed and written as JSON to
<tmpdir>/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nats  # noqa: E402
from nats.js.errors import APIError  # noqa: E402

from harness import (  # noqa: E402
    HOST,
    Server,
    Topology,
    connect,
    events_config,
    hub_hive_config,
    leaf_hive_config,
    wait_until,
)

RESULTS: dict[str, object] = {}


def say(key: str, value: object) -> None:
    RESULTS[key] = value
    print(f"{key}: {value}", flush=True)


async def admin_conns(t: Topology) -> dict[str, nats.NATS]:
    return {n: await connect(t.url(n, "admin")) for n in t.servers}


async def setup_streams(t: Topology, ncs: dict[str, nats.NATS], hub_leaves: list[str] | None = None) -> None:
    await wait_until(lambda: leaves_connected(t, t.leaves), 10)
    for n, nc in ncs.items():
        await nc.jetstream().add_stream(events_config(n))
    await ncs["hub"].jetstream().add_stream(hub_hive_config(t.leaves if hub_leaves is None else hub_leaves))
    for leaf in t.leaves:
        await ncs[leaf].jetstream().add_stream(leaf_hive_config(leaf))


async def leaves_connected(t: Topology, names: list[str]) -> bool:
    z = await t.leafz()
    got = {leaf.get("name") for leaf in z.get("leafs", [])}
    return set(names) <= got


async def count(nc: nats.NATS, stream: str) -> int:
    si = await asyncio.wait_for(nc.jetstream(timeout=2).stream_info(stream), 3)
    return si.state.messages


async def publish_n(nc: nats.NATS, node: str, n: int, tag: str, headers: dict | None = None) -> float:
    """n events on hive.<node>.mem.<i> with Nats-Msg-Id = <node>-<tag>-<i>; returns seconds."""
    js = nc.jetstream(timeout=10)
    t0 = time.monotonic()
    futs = []
    for i in range(n):
        h = {"Nats-Msg-Id": f"{node}-{tag}-{i}", "Hive-Type": "memory.stored", **(headers or {})}
        futs.append(await js.publish_async(f"hive.{node}.memory.{tag}{i}", b"x" * 64, headers=h))
    await asyncio.wait_for(asyncio.gather(*futs), 60)
    return time.monotonic() - t0


async def read_all(nc: nats.NATS, stream: str, expected: int, timeout: float = 30) -> list:
    """Every message of `stream` through an ordered push consumer (nats-py)."""
    js = nc.jetstream()
    got: list = []
    done = asyncio.Event()

    async def cb(m) -> None:
        got.append(m)
        if len(got) >= expected:
            done.set()

    sub = await js.subscribe("", stream=stream, ordered_consumer=True, cb=cb)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
    await sub.unsubscribe()
    return got


# =========================================================================== 1. basic
async def probe_basic(root: Path) -> None:
    t = Topology(root / "basic", leaves=["leaf1", "leaf2", "leaf3"], unbound={"leaf3"})
    await t.start()
    try:
        ncs = await admin_conns(t)
        await setup_streams(t, ncs, hub_leaves=["leaf1", "leaf2"])
        for n in ["hub", "leaf1", "leaf2"]:
            await publish_n(ncs[n], n, 3, "basic", headers={"Hive-Custom": f"from-{n}"})
        ok = await wait_until(lambda: all_counts(ncs, ["hub", "leaf1", "leaf2"], "HIVE", 9), 15)
        say("basic.converged_s(9 events, strict perms)", round(ok, 3) if ok is not None else "NO")

        # ---- headers and subject kept in HIVE
        msgs = await read_all(ncs["hub"], "HIVE", 9, 5)
        leaf_msg = next(m for m in msgs if m.subject.startswith("hive.leaf1."))
        say("headers.hub_HIVE.leaf1_msg.subject", leaf_msg.subject)
        say("headers.hub_HIVE.leaf1_msg.headers", dict(leaf_msg.headers or {}))
        mmsgs = await read_all(ncs["leaf2"], "HIVE", 9, 5)
        mm = next(m for m in mmsgs if m.subject.startswith("hive.leaf1."))
        say("headers.leaf2_HIVE_mirror.leaf1_msg.headers", dict(mm.headers or {}))
        seqs = {n: [m.metadata.sequence.stream for m in await read_all(ncs[n], "HIVE", 9, 5)] for n in ["hub", "leaf1"]}
        ids = {n: [m.headers.get("Nats-Msg-Id") for m in await read_all(ncs[n], "HIVE", 9, 5)] for n in ["hub", "leaf2"]}
        say("headers.same_seq_and_order_hub_vs_mirror", ids["hub"] == ids["leaf2"] and seqs["hub"] == seqs["leaf1"])

        # ---- node user restricted to hive.leaf1.> publishing hive.leaf2.x on its own server
        errs: list[str] = []
        node = await connect(t.url("leaf1"), errs)
        js = node.jetstream(timeout=2)
        t0 = time.monotonic()
        try:
            await js.publish("hive.leaf2.memory.x", b"forged")
            res = "ACKED (not refused!)"
        except Exception as e:  # noqa: BLE001
            res = f"{type(e).__module__}.{type(e).__name__} after {time.monotonic() - t0:.2f}s"
        await asyncio.sleep(0.3)
        say("perm.node_leaf1_publish_hive.leaf2.x.js_publish", res)
        say("perm.node_leaf1_publish_hive.leaf2.x.error_cb", errs[:2])
        say("perm.node_leaf1_connection_still_connected", node.is_connected)
        t0 = time.monotonic()
        try:
            await node.publish("hive.leaf2.memory.y", b"forged")
            await node.flush(2)
            await asyncio.sleep(0.3)
            say("perm.core_publish_forbidden", f"publish() returned without raising; error_cb now {errs[-1:]}")
        except Exception as e:  # noqa: BLE001
            say("perm.core_publish_forbidden", f"{type(e).__name__}: {e}")
        # what the node user can do on its own server
        ack = await js.publish("hive.leaf1.memory.ok", b"ok", headers={"Nats-Msg-Id": "leaf1-ok"})
        say("perm.node_user_own_publish_ack", f"stream={ack.stream} seq={ack.seq}")
        si = await js.stream_info("HIVE")
        say("perm.node_user_stream_info_HIVE", si.state.messages)
        got = await read_all(node, "HIVE", 9, 5)
        say("perm.node_user_ordered_consumer_on_HIVE_mirror", len(got))
        psub = await js.pull_subscribe("hive.leaf1.>", durable="p1", stream="EVENTS")
        batch = await psub.fetch(2, timeout=3)
        for m in batch:
            await m.ack_sync(timeout=2)
        say("perm.node_user_pull_fetch_ack", len(batch))
        try:
            await asyncio.wait_for(node.jetstream(domain="hub", timeout=2).stream_info("HIVE"), 4)
            say("perm.leaf_node_user_domain_hub_stream_info", "allowed")
        except Exception as e:  # noqa: BLE001
            say("perm.leaf_node_user_domain_hub_stream_info", f"refused: {type(e).__name__}")
        await node.close()

        # ---- hub node user: domain-qualified context on its own server
        hubnode = await connect(t.url("hub"))
        si = await hubnode.jetstream(domain="hub").stream_info("HIVE")
        say("gotcha.hub_client_jetstream(domain='hub')_on_hub", si.state.messages)
        await hubnode.close()

        # ---- a leaf owner (admin on its own server) trying to reach others through the link
        a1 = ncs["leaf1"]
        before = await count(ncs["hub"], "EVENTS")
        await a1.publish("hive.hub.memory.forged", b"forged", headers={"Nats-Msg-Id": "forged-1"})
        await a1.flush()
        await asyncio.sleep(1)
        say("perm.leaf1_owner_publish_hive.hub.x_reaches_hub_EVENTS", (await count(ncs["hub"], "EVENTS")) != before)
        for dom in ("leaf2", "hub"):
            try:
                await asyncio.wait_for(a1.jetstream(domain=dom, timeout=2).stream_info("EVENTS"), 4)
                say(f"perm.leaf1_owner_JS_API_of_{dom}", "REACHABLE")
            except Exception as e:  # noqa: BLE001
                say(f"perm.leaf1_owner_JS_API_of_{dom}", f"refused: {type(e).__name__}")
        viol = t.servers["hub"].grep("Permissions Violation")
        say("perm.hub_log_violations(sample)", [v.split(" - ", 2)[-1][:140] for v in viol[:4]])

        # ---- rogue leaf: widens its own EVENTS to hive.leaf2.> and forges; the hub's source filter
        cfg = events_config("leaf1")
        cfg.subjects = ["hive.leaf1.>", "hive.leaf2.>"]
        await a1.jetstream().update_stream(cfg)
        await a1.jetstream().publish("hive.leaf2.memory.forged", b"forged", headers={"Nats-Msg-Id": "forged-2"})
        await asyncio.sleep(1.5)
        hub_msgs = await read_all(ncs["hub"], "HIVE", 10, 3)
        say("perm.rogue_leaf_forged_subject_in_hub_HIVE(filtered source)",
            any(m.subject == "hive.leaf2.memory.forged" for m in hub_msgs))
        await a1.jetstream().update_stream(events_config("leaf1"))

        # ---- leaf3: remote with credentials but no `account: HIVE` (binds $G on the leaf)
        await ncs["hub"].jetstream().update_stream(hub_hive_config(["leaf1", "leaf2", "leaf3"]))
        await publish_n(ncs["leaf3"], "leaf3", 3, "basic")
        got3 = await wait_until(lambda: has_subject_prefix(ncs["hub"], "hive.leaf3."), 8)
        si = await ncs["hub"].jetstream().stream_info("HIVE")
        say("account.leaf3_unbound_remote_sourced_within_8s", got3 is not None)
        say("account.leaf3_unbound_remote_source_info", [s.as_dict() for s in si.sources if "leaf3" in str(si)][-1:])
        z = await t.leafz()
        say("account.hub_leafz", [(leaf.get("name"), leaf.get("account")) for leaf in z.get("leafs", [])])

        # ---- unauthenticated and wrong-password leaf remotes
        for label, cred in (("no_credentials", ""), ("wrong_password", "leaf1:nope@")):
            s = Server(f"rogue-{label}", root / f"rogue-{label}", rogue_conf(root / f"rogue-{label}", t.leaf_port, cred))
            await s.start()
            await asyncio.sleep(2.5)
            z = await t.leafz()
            names = [leaf.get("name") for leaf in z.get("leafs", [])]
            s.kill()
            say(f"auth.leaf_{label}_accepted", f"rogue-{label}" in names)
            say(f"auth.leaf_{label}_hub_log", [x.split(" - ", 2)[-1][:120] for x in t.servers["hub"].grep("authentication error")][-1:])

        # ---- nats-py gotchas on subject-less streams
        js = ncs["hub"].jetstream()
        for subj in ("hive.>", ">", ""):
            try:
                got = await read_all(ncs["hub"], "HIVE", 9, 3) if subj == "" else None
                if subj:
                    s = await js.subscribe(subj, stream="HIVE", ordered_consumer=True)
                    m = await s.next_msg(3)
                    await s.unsubscribe()
                    got = [m]
                say(f"gotcha.js.subscribe({subj!r}, stream='HIVE', ordered) on hub", f"ok ({len(got)} msg)")
            except Exception as e:  # noqa: BLE001
                say(f"gotcha.js.subscribe({subj!r}, stream='HIVE', ordered) on hub", f"{type(e).__name__}: {e}")
        try:
            s = await js.subscribe("hive.>", ordered_consumer=True)
            say("gotcha.js.subscribe('hive.>') without stream=", f"bound to {s._stream if hasattr(s, '_stream') else '?'}")
            await s.unsubscribe()
        except Exception as e:  # noqa: BLE001
            say("gotcha.js.subscribe('hive.>') without stream=", f"{type(e).__name__}: {e}")
        try:
            await ncs["leaf1"].jetstream().publish("hive.hub.memory.z", b"z", timeout=2)
            say("gotcha.js.publish_to_subject_only_in_a_mirror", "acked?!")
        except Exception as e:  # noqa: BLE001
            say("gotcha.js.publish_to_subject_only_in_a_mirror", f"{type(e).__name__}: {e}")
        try:
            cfg = leaf_hive_config("leaf1")
            cfg.description = "changed"
            await ncs["leaf1"].jetstream().update_stream(cfg)
            say("gotcha.update_mirror_stream_same_mirror", "ok")
        except APIError as e:
            say("gotcha.update_mirror_stream_same_mirror", f"APIError {e.err_code}: {e.description}")
        try:
            cfg = leaf_hive_config("leaf1")
            cfg.mirror.external.deliver = "$JS.M.leaf1x"
            await ncs["leaf1"].jetstream().update_stream(cfg)
            say("gotcha.update_mirror_stream_changed_mirror", "ok")
        except APIError as e:
            say("gotcha.update_mirror_stream_changed_mirror", f"APIError {e.err_code}: {e.description}")
        # which subjects crossed the leaf links that were refused
        for n in t.servers:
            v = t.servers[n].grep("Permissions Violation")
            RESULTS[f"log.{n}.violations"] = len(v)
        for nc in ncs.values():
            await nc.close()
    finally:
        await t.stop()


def rogue_conf(d: Path, leaf_port: int, cred: str) -> str:
    from harness import free_port

    return f"""server_name: {d.name}
listen: {HOST}:{free_port()}
jetstream {{ store_dir: "{d / 'js'}", domain: {d.name} }}
leafnodes {{ reconnect: "1s", remotes: [ {{ url: "nats-leaf://{cred}{HOST}:{leaf_port}" }} ] }}
"""


async def all_counts(ncs: dict[str, nats.NATS], nodes: list[str], stream: str, n: int) -> bool:
    for node in nodes:
        if await count(ncs[node], stream) != n:
            return False
    return True


async def has_subject_prefix(nc: nats.NATS, prefix: str) -> bool:
    si = await nc.jetstream().stream_info("HIVE", subjects_filter=prefix + ">")
    return bool(si.state.subjects)


# =========================================================================== 2. add a source live
async def probe_addsource(root: Path, n: int) -> None:
    t = Topology(root / "addsource")
    await t.start()
    try:
        ncs = await admin_conns(t)
        await setup_streams(t, ncs, hub_leaves=["leaf1"])
        await publish_n(ncs["leaf2"], "leaf2", n, "hist")
        await publish_n(ncs["leaf1"], "leaf1", 10, "a")
        await wait_until(lambda: all_counts(ncs, ["hub"], "HIVE", 10), 10)
        t0 = time.monotonic()
        await ncs["hub"].jetstream().update_stream(hub_hive_config(["leaf1", "leaf2"]))
        d_hub = await wait_until(lambda: all_counts(ncs, ["hub"], "HIVE", n + 10), 60)
        d_all = await wait_until(lambda: all_counts(ncs, ["leaf1", "leaf2"], "HIVE", n + 10), 60)
        say(f"addsource.update_stream_then_hub_has_{n}_history_s", round(d_hub, 2) if d_hub else "NO")
        say("addsource.then_leaf_mirrors_all_s(from update)", round(time.monotonic() - t0, 2) if d_all else "NO")
        for nc in ncs.values():
            await nc.close()
    finally:
        await t.stop()


# =========================================================================== 3. partitions
async def probe_partition(root: Path, kind: str, remedy: str, n: int, down: float, cap: float) -> dict:
    name = f"{kind}-{remedy}"
    t = Topology(root / name)
    await t.start()
    out: dict[str, object] = {}
    ncs: dict[str, nats.NATS] = {}
    try:
        ncs = await admin_conns(t)
        await setup_streams(t, ncs)
        for node in ncs:
            await publish_n(ncs[node], node, 100, "pre")
        await wait_until(lambda: all_counts(ncs, list(ncs), "HIVE", 300), 20)
        expected = 300 + 2 * n
        # ---- cut
        t_cut = time.monotonic()
        if kind == "hub":
            await t.servers["hub"].stop()
            out["write_leaf1_s"] = round(await publish_n(ncs["leaf1"], "leaf1", n, "part"), 2)
        elif kind == "leaf":
            await t.servers["leaf1"].stop()
            out["write_hub_s"] = round(await publish_n(ncs["hub"], "hub", n, "part"), 2)
        else:
            await t.proxies["leaf1"].close()
            out["write_leaf1_s"] = round(await publish_n(ncs["leaf1"], "leaf1", n, "part"), 2)
            out["write_hub_s"] = round(await publish_n(ncs["hub"], "hub", n, "part"), 2)
        await asyncio.sleep(max(0.0, down - (time.monotonic() - t_cut)))
        # ---- heal
        if kind == "hub":
            await t.servers["hub"].start()
        elif kind == "leaf":
            await t.servers["leaf1"].start()
        else:
            await t.proxies["leaf1"].open()
        t0 = time.monotonic()
        if kind in ("hub", "leaf"):
            author = "hub" if kind == "hub" else "leaf1"
            # the admin client reconnects on its own; wait until its JetStream answers again
            async def answers() -> bool:
                return await count(ncs[author], "EVENTS") >= 0

            await wait_until(answers, 15, 0.05)
            await publish_n(ncs[author], author, n, "after")
        link = await wait_until(lambda: leaves_connected(t, t.leaves), 15, 0.05)
        out["leaf_link_up_s"] = round(link, 2) if link is not None else None
        if remedy != "natural":
            await remedy_apply(ncs, t, remedy)
            out["remedy_applied_at_s"] = round(time.monotonic() - t0, 2)
        marks: dict[str, float | None] = {}

        async def watch(node: str) -> None:
            d = await wait_until(lambda: all_counts(ncs, [node], "HIVE", expected), cap - (time.monotonic() - t0), 0.1)
            marks[node] = None if d is None else round(time.monotonic() - t0, 2)

        await asyncio.gather(*(watch(x) for x in ["hub", "leaf1", "leaf2"]))
        out.update({f"caught_up_{k}_s": v for k, v in marks.items()})
        # ---- exactness
        final = {x: await count(ncs[x], "HIVE") for x in ncs}
        out["HIVE_counts(expected %d)" % expected] = final
        msgs = await read_all(ncs["hub"], "HIVE", final["hub"], 30)
        ids = [m.headers.get("Nats-Msg-Id") for m in msgs]
        out["hub_HIVE_read"] = len(ids)
        out["hub_HIVE_duplicate_ids"] = len(ids) - len(set(ids))
        si = await ncs["hub"].jetstream().stream_info("HIVE")
        out["hub_sources_after"] = [(s.name, s.lag, s.error) for s in si.sources or []]
        viol = sum(len(s.grep("Permissions Violation")) for s in t.servers.values())
        out["permission_violations_logged"] = viol
        return out
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    finally:
        for nc in ncs.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 3)
        await t.stop()
        print(f"partition {name}: {json.dumps(out)}", flush=True)


async def remedy_apply(ncs: dict[str, nats.NATS], t: Topology, remedy: str) -> None:
    """Candidates, applied once the leaf link is back up:
    nudge    update_stream(HIVE) with the identical config, on the hub and on each leaf mirror
    readd    hub: update_stream without every leaf source, then with them again (2 updates)
    desc     leaf mirrors: update_stream with a changed description (a real config change)
    kick     leaf mirrors: `desc` every 2 s until the mirror has caught up (background)
    recreate leaf mirrors: delete the HIVE stream and add it again (full re-copy)
    """
    hub = ncs["hub"].jetstream(timeout=5)
    parts = remedy.split("+")
    if "nudge" in parts:
        await hub.update_stream(hub_hive_config(t.leaves))
    if "readd" in parts:
        await hub.update_stream(hub_hive_config([]))
        await hub.update_stream(hub_hive_config(t.leaves))
    if "recreate" in parts:
        for leaf in t.leaves:
            lj = ncs[leaf].jetstream(timeout=5)
            await lj.delete_stream("HIVE")
            await lj.add_stream(leaf_hive_config(leaf))
    if "kick" in parts:
        for leaf in t.leaves:
            asyncio.get_running_loop().create_task(kick_loop(ncs, leaf))
    for leaf in t.leaves:
        cfg = leaf_hive_config(leaf)
        if "desc" in parts:
            cfg.description = f"nudge {time.time()}"
        elif "nudge" not in parts:
            continue
        try:
            await ncs[leaf].jetstream(timeout=5).update_stream(cfg)
        except Exception as e:  # noqa: BLE001
            print(f"remedy {remedy} on {leaf}: {type(e).__name__}: {e}", flush=True)


async def kick_loop(ncs: dict[str, nats.NATS], leaf: str, period: float = 2.0, limit: float = 60) -> None:
    hub = ncs["hub"].jetstream(timeout=3)
    lj = ncs[leaf].jetstream(timeout=3)
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        with contextlib.suppress(Exception):
            si, hi = await lj.stream_info("HIVE"), await hub.stream_info("HIVE")
            if si.state.last_seq >= hi.state.last_seq:
                return
            cfg = leaf_hive_config(leaf)
            cfg.description = f"kick {time.time()}"
            await lj.update_stream(cfg)
            print(f"kick {leaf} +{time.monotonic() - t0:.1f}s mirror={si.mirror}", flush=True)
        await asyncio.sleep(period)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="*", default=["basic", "addsource", "partition"])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--down", type=float, default=20.0)
    ap.add_argument("--cap", type=float, default=90.0)
    ap.add_argument("--kinds", default="hub,leaf,link")
    ap.add_argument("--remedies", default="natural,nudge,readd+desc,readd+recreate")
    ap.add_argument("--keep", action="store_true", help="keep the temporary store dirs and logs")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hive-leaf-probe-"))
    t0 = time.monotonic()
    try:
        if "basic" in a.what:
            await asyncio.wait_for(probe_basic(root), 90)
        if "addsource" in a.what:
            await asyncio.wait_for(probe_addsource(root, a.n), 90)
        if "partition" in a.what:
            jobs = [
                probe_partition(root, k, r, a.n, a.down, a.cap)
                for k in a.kinds.split(",")
                for r in a.remedies.split(",")
            ]
            res = await asyncio.wait_for(asyncio.gather(*jobs), a.cap + a.down + 90)
            for (k, r), v in zip([(k, r) for k in a.kinds.split(",") for r in a.remedies.split(",")], res):
                RESULTS[f"partition.{k}.{r}"] = v
    finally:
        RESULTS["total_runtime_s"] = round(time.monotonic() - t0, 1)
        (root / "results.json").write_text(json.dumps(RESULTS, indent=1, default=str))
        print(f"results: {root / 'results.json'} total {RESULTS['total_runtime_s']}s", flush=True)
        if not a.keep:
            keep = root / "results.json"
            data = keep.read_text()
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            keep.write_text(data)


if __name__ == "__main__":
    asyncio.run(main())
