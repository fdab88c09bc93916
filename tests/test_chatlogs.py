"""Chat-log parsing: turns from messages, malformed files, derived ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hivebrain.app.chatlogs import ChatLog, find_chatlogs, read_chatlog, turns
from hivebrain.errors import ConfigError
from hivebrain.events import derived_id
from hivebrain.events.envelope import TOKEN_RE, new_id


def log(*messages: dict[str, object]) -> ChatLog:
    return ChatLog.model_validate({"id": "c1", "messages": list(messages)})


def msg(
    role: str, content: str, agent: str | None = None, ts: str | None = None
) -> dict[str, object]:
    return {"role": role, "content": content, "agent": agent, "timestamp": ts}


def test_user_and_assistant_messages_pair_into_turns() -> None:
    found = turns(
        log(
            msg("assistant", "hello, I start", "Bot"),
            msg("user", "q1", ts="2026-01-02T14:09:02.206784"),
            msg("assistant", "a1", "Coder", "2026-01-02T14:09:04.206784"),
            msg("assistant", "a1 continued"),
            msg("system", "ignored"),
            msg("user", "   "),
            msg("user", "q2"),
            msg("user", "q3"),
            msg("assistant", "a3", "Coder"),
            msg("user", "left unanswered"),
        )
    )
    assert [(t.index, t.user_message, t.response, t.agent) for t in found] == [
        (0, None, "hello, I start", "Bot"),
        (1, "q1", "a1\n\na1 continued", "Coder"),
        (6, "q2", None, None),
        (7, "q3", "a3", "Coder"),
        (9, "left unanswered", None, None),
    ]
    q1 = found[1]
    assert q1.asked is not None and q1.answered is not None
    assert (q1.answered - q1.asked).total_seconds() == 2.0
    assert q1.asked.tzinfo is not None  # no zone given: read as UTC


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{", "not JSON"),
        ("[1, 2]", "not a chat log: expected a JSON object"),
        ('{"messages": []}', "not a chat log: id: Field required"),
        ('{"id": "x"}', "not a chat log: messages: Field required"),
        ('{"id": "x", "messages": [{"content": "hi"}]}', "not a chat log: messages.0.role"),
        ('{"id": "x", "messages": [{"role": "user", "content": 3}]}', "messages.0.content"),
    ],
)
def test_malformed_files_say_why_in_one_line(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    found = read_chatlog(path)
    assert isinstance(found, str) and reason in found and "\n" not in found


def test_bytes_that_are_not_utf8_are_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bin.json"
    path.write_bytes(b'{"id": "\xff"}')
    found = read_chatlog(path)
    assert isinstance(found, str) and found.startswith("not JSON")


def test_a_well_formed_file_reads_with_unknown_fields_ignored(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    data = {
        "id": "c9",
        "title": "t",
        "created_at": "2026-01-02T14:08:58.323667",
        "updated_at": "2026-01-02T15:30:06.545808",
        "messages": [{"id": "m", "role": "user", "content": "hi", "thinking": None}],
    }
    path.write_text(json.dumps(data))
    found = read_chatlog(path)
    assert isinstance(found, ChatLog) and found.id == "c9" and len(found.messages) == 1


def test_directories_are_searched_for_json_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.json").write_text("{}")
    (tmp_path / "a" / "notes.txt").write_text("")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "y.json").write_text("{}")
    (tmp_path / "z.JSON").write_text("{}")
    assert find_chatlogs([tmp_path]) == [tmp_path / "z.JSON", tmp_path / "a" / "x.json"]
    with pytest.raises(ConfigError, match="no such file"):
        find_chatlogs([tmp_path / "missing"])


def test_derived_ids_are_stable_valid_and_time_ordered() -> None:
    a = derived_id(1_767_362_942_206, "chatlog", "c1", "0")
    assert a == derived_id(1_767_362_942_206, "chatlog", "c1", "0")
    assert len(a) == 32 and TOKEN_RE.fullmatch(a) and len(new_id()) == 32
    assert a != derived_id(1_767_362_942_206, "chatlog", "c1", "1")
    assert derived_id(1, "ab", "c") != derived_id(1, "a", "bc")  # parts are not just joined
    assert derived_id(1000, "x") < derived_id(2000, "x") < new_id()  # the time prefix sorts
