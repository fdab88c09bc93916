"""Agents, spaces, sessions, consolidation and chat-log import through the `hivebrain`
console script, against one `hivebrain up` for the module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nodeproc import Cli, NodeProcess, one_clean_error

from hivebrain.transport.server import free_port

UUID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("agents") / "home", free_port())


@pytest.fixture(scope="module")
def node(cli: Cli) -> Iterator[NodeProcess]:
    # Keyword recall is all these need; `consolidate` runs here by hand.
    process = NodeProcess(cli, "--embedder", "none", "--no-consolidate")
    process.start()
    yield process
    process.close()


def as_json(out: str) -> Any:
    return json.loads(out)


def remember(cli: Cli, text: str, *options: str) -> str:
    return str(as_json(cli.ok("--json", "remember", text, *options))["id"])


def listed(cli: Cli, *options: str) -> list[str]:
    return [row["id"] for row in as_json(cli.ok("--json", "memories", "list", *options))]


def recalled(cli: Cli, query: str, *options: str) -> list[str]:
    return [hit["id"] for hit in as_json(cli.ok("--json", "recall", query, "--keyword", *options))]


def test_agents_are_created_listed_and_unique(cli: Cli, node: NodeProcess) -> None:
    uuid = cli.ok("agent", "create", "scribe", "--description", "takes notes").strip()
    assert UUID.fullmatch(uuid), uuid
    again = cli.run("agent", "create", "scribe")
    assert again.code == 2 and "exists already" in one_clean_error(again)
    rows = as_json(cli.ok("--json", "agent", "list"))
    [scribe] = [r for r in rows if r["name"] == "scribe"]
    assert scribe["id"] == uuid and scribe["description"] == "takes notes"
    assert scribe["policy"] == {"max_age": 7 * 86400.0, "max_count": 200, "to": "long_term"}
    assert any(r["id"] == "default" for r in rows)
    assert "scribe" in cli.ok("agent", "list")
    bad = cli.run("agent", "create", "other", "--working-max-age", "soon")
    assert bad.code == 2 and "bad duration" in one_clean_error(bad)


def test_spaces_isolation_and_moves(cli: Cli, node: NodeProcess) -> None:
    uuid = cli.ok("agent", "create", "gardener").strip()
    mine = remember(cli, "the tomatoes need shade", "--agent", "gardener", "--space", "working")
    logs = remember(
        cli, "gardener diary: planted tomatoes", "--agent", uuid, "--space", "personal_logs"
    )
    shared = remember(cli, "tomatoes are shared knowledge", "--shared", "--agent", "gardener")
    default = remember(cli, "the default agent likes tomatoes too", "--space", "working")

    # Reads see their agent's memories and the shared ones, never another agent's.
    assert set(listed(cli)) >= {default, shared} and mine not in listed(cli)
    assert set(recalled(cli, "tomatoes")) == {default, shared}
    assert set(recalled(cli, "tomatoes", "--agent", "gardener")) == {mine, logs, shared}
    assert set(recalled(cli, "tomatoes", "--all-agents")) == {mine, logs, shared, default}
    assert listed(cli, "--agent", uuid, "--space", "working") == [mine]
    both = listed(cli, "--agent", "gardener", "--space", "working", "--space", "personal_logs")
    assert set(both) == {mine, logs}
    assert len(listed(cli, "--all-agents", "--limit", "1")) == 1
    unknown = cli.run("memories", "list", "--agent", "nobody")
    assert unknown.code == 3 and "no agent 'nobody'" in one_clean_error(unknown)
    nobody = cli.run("remember", "x", "--agent", "nobody")
    assert nobody.code == 3 and "no agent 'nobody'" in one_clean_error(nobody)

    out = cli.ok("move", mine, "long_term", "--reason", "settled")
    assert out.startswith(f"moved {mine} to long_term")
    assert listed(cli, "--agent", "gardener", "--space", "working") == []
    assert mine in listed(cli, "--agent", "gardener", "--space", "long_term")
    missing = cli.run("move", "0" * 32, "archive")
    assert missing.code == 3 and "no memory" in one_clean_error(missing)
    badspace = cli.run("move", mine, "attic")
    assert badspace.code == 2 and "Traceback" not in badspace.err

    cli.ok("edit", mine, "--text", "the tomatoes need afternoon shade", "--tag", "garden")
    assert listed(cli, "--agent", "gardener", "--tag", "garden") == [mine]
    cli.ok("forget", logs)
    assert logs not in listed(cli, "--agent", "gardener")
    assert logs in listed(cli, "--agent", "gardener", "--forgotten")


def test_consolidation_moves_old_and_surplus_working_memories_once(
    cli: Cli, node: NodeProcess
) -> None:
    cli.ok("agent", "create", "planner", "--working-max-count", "2", "--consolidate-to", "archive")
    ids = [
        remember(cli, f"plan step {i}", "--agent", "planner", "--space", "working")
        for i in range(4)
    ]
    dry = as_json(cli.ok("--json", "consolidate", "--agent", "planner", "--dry-run"))
    assert dry["moved"] == 0 and [m["id"] for m in dry["moves"]] == ids[:2]
    assert {m["to"] for m in dry["moves"]} == {"archive"}
    assert "more than 2 working memories" in dry["moves"][0]["reason"]
    assert set(listed(cli, "--agent", "planner", "--space", "working")) == set(ids)

    done = as_json(cli.ok("--json", "consolidate", "--agent", "planner"))
    assert done["moved"] == 2 and done["applied"] is True
    assert set(listed(cli, "--agent", "planner", "--space", "working")) == set(ids[2:])
    assert set(listed(cli, "--agent", "planner", "--space", "archive")) == set(ids[:2])
    assert cli.ok("consolidate", "--agent", "planner").strip() == "nothing to consolidate"

    # A run's options override the agent's policy: everything older than a millisecond.
    cli.ok("agent", "policy", "planner", "--consolidate-to", "long_term")
    out = as_json(cli.ok("--json", "consolidate", "--agent", "planner", "--max-age", "0.001s"))
    assert {m["id"] for m in out["moves"]} == set(ids[2:])
    assert {m["to"] for m in out["moves"]} == {"long_term"}
    assert "stored more than" in out["moves"][0]["reason"]
    assert listed(cli, "--agent", "planner", "--space", "working") == []


def chatlog(chat_id: str, *turns: tuple[str, str], agent: str | None = "Helper") -> str:
    messages: list[dict[str, Any]] = []
    for n, (question, answer) in enumerate(turns):
        messages.append(
            {
                "id": f"{chat_id}-u{n}",
                "role": "user",
                "content": question,
                "timestamp": f"2026-01-02T14:{n:02d}:00.000000",
                "agent": None,
                "thinking": None,
            }
        )
        messages.append(
            {
                "id": f"{chat_id}-a{n}",
                "role": "assistant",
                "content": answer,
                "timestamp": f"2026-01-02T14:{n:02d}:30.000000",
                "agent": agent,
                "thinking": "hmm",
            }
        )
    return json.dumps(
        {
            "id": chat_id,
            "title": turns[0][0][:20],
            "created_at": "2026-01-02T14:00:00",
            "updated_at": "2026-01-02T15:00:00",
            "messages": messages,
        }
    )


def test_import_chatlogs_twice_gives_one_copy_and_bad_files_are_skipped(
    cli: Cli, node: NodeProcess, tmp_path: Path
) -> None:
    logs = tmp_path / "chat"
    logs.mkdir()
    (logs / "a.json").write_text(
        chatlog(
            "chat-a",
            ("which python do we use?", "python3.11 everywhere"),
            ("and the risk limit?", "raise it to $100"),
        )
    )
    (logs / "b.json").write_text(chatlog("chat-b", ("hello pelican", "hello human"), agent=None))
    (logs / "broken.json").write_text('{"id": "x", "messages": [')
    (logs / "wrong.json").write_text(json.dumps({"id": "y", "messages": [{"role": "user"}]}))

    first = cli.run("--json", "import", "chatlogs", str(logs))
    assert first.code == 0, first.err
    summary = as_json(first.out)
    assert (summary["files"], summary["turns"], summary["interactions"]) == (2, 3, 3)
    assert summary["agents_created"] == 1
    assert sorted(first.err_lines) == [
        line for line in sorted(first.err_lines) if line.startswith("skipped ")
    ]
    assert len(first.err_lines) == 2
    assert any("broken.json: not JSON" in line for line in first.err_lines)
    assert any("wrong.json: not a chat log: messages.0.content" in line for line in first.err_lines)

    again = as_json(
        cli.ok("--json", "import", "chatlogs", str(logs / "a.json"), str(logs / "b.json"))
    )
    assert (again["turns"], again["unchanged"], again["events"]) == (0, 3, 0)

    history = as_json(cli.ok("--json", "session", "show", "chat-a"))
    assert [t["user_message"] for t in history] == [
        "which python do we use?",
        "and the risk limit?",
    ]
    assert [t["agent_name"] for t in history] == ["Helper", "Helper"]
    assert [t["lamport"] for t in history] == sorted(t["lamport"] for t in history)
    text = cli.ok("session", "show", "chat-a")
    assert "user: which python do we use?" in text and "assistant: python3.11 everywhere" in text
    assert [t["agent"] for t in as_json(cli.ok("--json", "session", "show", "chat-b"))] == [
        "default"
    ]
    assert recalled(cli, "pelican") and not recalled(cli, "risk limit")  # Helper's, isolated
    assert recalled(cli, "risk limit", "--agent", "Helper")
    helpers = [r for r in as_json(cli.ok("--json", "agent", "list")) if r["name"] == "Helper"]
    assert len(helpers) == 1 and helpers[0]["memories"] == {"long_term": 2}

    none = cli.run("import", "chatlogs", str(logs / "broken.json"), str(logs / "wrong.json"))
    assert none.code == 2 and "Traceback" not in none.err
    assert len(none.err_lines) == 3 and none.err_lines[-1].startswith("error: no chat log")
    missing = cli.run("import", "chatlogs", str(logs / "nope.json"))
    assert missing.code == 2 and "no such file" in one_clean_error(missing)


def test_session_turns_written_by_hand_show_in_order(cli: Cli, node: NodeProcess) -> None:
    for n in range(3):
        cli.ok(
            "remember", "--user", f"question {n}", "--response", f"answer {n}", "--session", "s-1"
        )
    cli.ok("remember", "a note in the session", "--session", "s-1")
    turns = as_json(cli.ok("--json", "session", "show", "s-1"))
    assert [t["user_message"] for t in turns] == ["question 0", "question 1", "question 2", None]
    assert turns[-1]["text"] == "a note in the session"
    assert cli.ok("session", "show", "s-unknown").strip() == "no turns in session s-unknown"
