"""The real `trailseal` command in subprocesses: every command, its output and its exit codes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import msgspec
import orjson
import pytest

from conftest import event_lines, run_cli
from trailseal.events import parse_event
from trailseal.ledger import Ledger

COMMANDS = [
    [],
    ["init"],
    ["append"],
    ["get"],
    ["export"],
    ["checkpoint"],
    ["pubkey"],
    ["prove"],
    ["prove", "inclusion"],
    ["prove", "consistency"],
    ["verify"],
    ["verify-export"],
    ["erase"],
    ["search"],
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    run_cli("init", "--origin", "cli.example/log", data=data, check=True)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(event_lines(120)) + b"\n")
    run_cli("append", events, data=data, check=True)
    return data


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "trailseal")
def test_help_everywhere(command: list[str]) -> None:
    result = run_cli(*command, "--help", check=True)
    assert b"Usage:" in result.stdout


def test_init_prints_verifier_key_and_protects_the_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run_cli("init", "--origin", "cli.example/log", data=data, check=True)
    vkey = result.stdout.decode().strip()
    assert vkey.startswith("cli.example/log+")
    assert (data / "signing.key").stat().st_mode & 0o777 == 0o600
    assert run_cli("pubkey", data=data, check=True).stdout.decode().strip() == vkey
    again = run_cli("init", data=data)
    assert again.returncode == 1
    assert b"already exists" in again.stderr


def test_append_prints_counts_and_is_idempotent(log: Path, tmp_path: Path) -> None:
    result = run_cli("append", tmp_path / "events.jsonl", data=log, check=True)
    assert json.loads(result.stdout) == {
        "appended": 0,
        "first_index": None,
        "size": 120,
        "duplicates": 120,
    }
    more = b"\n".join(event_lines(5, seed=99))
    result = run_cli("append", "-", data=log, stdin=more, check=True)
    assert json.loads(result.stdout) == {"appended": 5, "first_index": 120, "size": 125}


def test_bad_lines_refuse_the_whole_file(log: Path) -> None:
    good = event_lines(3, seed=5)
    lines = [good[0], b"{not json", good[1], b'{"id": "x"}', b"\xff\xfe", good[2]]
    result = run_cli("append", "-", data=log, stdin=b"\n".join(lines))
    assert result.returncode == 1
    message = result.stderr.decode()
    assert "3 bad lines; nothing was appended" in message
    for line in ("line 2:", "line 4:", "line 5:"):
        assert line in message
    assert "$.time: required field is missing" in message
    size = json.loads(run_cli("verify", "--json", data=log, check=True).stdout)["size"]
    assert size == 120


def test_skip_invalid_appends_the_good_lines(log: Path) -> None:
    good = event_lines(2, seed=6)
    result = run_cli(
        "append", "-", "--skip-invalid", data=log, stdin=b"\n".join([good[0], b"[]", good[1]])
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["appended"] == 2
    assert report["skipped"][0]["line"] == 2
    assert b"skipped line 2" in result.stderr


def test_huge_line_is_refused_without_reading_it_whole(log: Path) -> None:
    huge = b'{"id":"' + b"x" * 5_000_000 + b'"}'
    result = run_cli("append", "-", data=log, stdin=huge + b"\n" + event_lines(1, seed=8)[0])
    assert result.returncode == 1
    assert b"line 1: $: line is 5000009 bytes; the limit is 65536 bytes" in result.stderr
    bigger = run_cli("append", "-", "--max-event-bytes", "100", data=log, stdin=b"{}")
    assert bigger.returncode == 2  # below the smallest accepted limit: a usage error


def test_duplicate_ids_in_one_file(log: Path) -> None:
    line = event_lines(1, seed=11)[0]
    changed = orjson.loads(line)
    changed["action"] = "record.delete"
    result = run_cli("append", "-", data=log, stdin=b"\n".join([line, line, orjson.dumps(changed)]))
    assert result.returncode == 1
    assert b"line 3: $.id" in result.stderr
    assert b"(line 1)" in result.stderr
    ok = run_cli("append", "-", data=log, stdin=b"\n".join([line, line]), check=True)
    assert json.loads(ok.stdout)["appended"] == 1


def test_get_export_checkpoint_prove(log: Path, tmp_path: Path) -> None:
    entry = json.loads(run_cli("get", "7", "--json", data=log, check=True).stdout)
    assert entry["entry"]["index"] == 7
    assert len(entry["leaf_hash"]) == len(entry["chain_hash"]) == 64
    table = run_cli("get", "7", "--table", data=log, check=True).stdout.decode()
    assert "leaf_hash" in table
    missing = run_cli("get", "999", data=log)
    assert missing.returncode == 1
    # the two reads of entry 7 are entries 120 and 121 (the miss is not a read)
    assert b"no entry 999; the log has 122 entries" in missing.stderr

    run_cli(
        "export", "--from", "10", "--to", "20", "-o", tmp_path / "part.jsonl", data=log, check=True
    )
    rows = [json.loads(line) for line in (tmp_path / "part.jsonl").read_text().splitlines()]
    assert [row["entry"]["index"] for row in rows] == list(range(10, 20))
    assert set(rows[0]) == {"entry", "detail", "salt"}

    note = run_cli("checkpoint", data=log, check=True).stdout.decode()
    assert note.startswith("cli.example/log\n123\n")  # and the export's audit.export

    proof = json.loads(
        run_cli("prove", "inclusion", "7", "--size", "100", data=log, check=True).stdout
    )
    assert set(proof) == {"index", "size", "leaf_hash", "proof", "root"}
    assert proof["leaf_hash"] == entry["leaf_hash"]
    consistency = json.loads(
        run_cli("prove", "consistency", "50", "120", data=log, check=True).stdout
    )
    assert set(consistency) == {"old_size", "new_size", "proof", "old_root", "new_root"}
    bad = run_cli("prove", "inclusion", "500", data=log)
    assert bad.returncode == 1  # a missing entry, as for get and the API's 404: no damage
    assert b"no entry 500" in bad.stderr
    beyond = run_cli("prove", "inclusion", "7", "--size", "5000", data=log)
    assert beyond.returncode == 3
    assert b"no inclusion proof for index 7 at size 5000" in beyond.stderr


def test_verify_export_offline(log: Path, tmp_path: Path) -> None:
    run_cli("export", "-o", tmp_path / "all.jsonl", data=log, check=True)
    (tmp_path / "cp").write_bytes(run_cli("checkpoint", data=log, check=True).stdout)
    vkey = run_cli("pubkey", data=log, check=True).stdout.decode().strip()
    ok = run_cli(
        "verify-export", tmp_path / "all.jsonl", "--checkpoint", tmp_path / "cp", "--vkey", vkey
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["size"] == 121  # the 120 events and the export's own record
    text = (tmp_path / "all.jsonl").read_text().replace('"record.read"', '"record.edit"', 1)
    (tmp_path / "edited.jsonl").write_text(text)
    bad = run_cli(
        "verify-export", tmp_path / "edited.jsonl", "--checkpoint", tmp_path / "cp", "--vkey", vkey
    )
    assert bad.returncode == 3
    assert b"root-mismatch" in bad.stderr
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    (tmp_path / "short.jsonl").write_text("\n".join(lines[:100]) + "\n")
    short = run_cli(
        "verify-export", tmp_path / "short.jsonl", "--checkpoint", tmp_path / "cp", "--vkey", vkey
    )
    assert short.returncode == 3
    assert b"truncated" in short.stderr
    other = run_cli(
        "verify-export",
        tmp_path / "all.jsonl",
        "--checkpoint",
        tmp_path / "cp",
        "--vkey",
        "someone+00000000+AQ" + "A" * 42 + "=",
    )
    assert other.returncode in (1, 3)


def test_erase_and_search(log: Path) -> None:
    rows = json.loads(
        run_cli("search", "--action", "record.update", "--json", data=log, check=True).stdout
    )
    with_detail = next(r for r in rows if "detail_commitment" in r["entry"]["event"])
    index = with_detail["index"]
    result = run_cli(
        "erase", str(index), "--reason", "GDPR art. 17 request 42", data=log, check=True
    )
    # 120 events, then the search's own audit.read: the erasure is recorded after them
    assert json.loads(result.stdout) == {"erased": index, "record_index": 121}
    report = json.loads(run_cli("verify", "--json", data=log, check=True).stdout)
    assert report["detail_erased"] == [index]
    actor = with_detail["entry"]["event"]["actor"]["id"]
    found = json.loads(
        run_cli("search", "--actor", actor, "--jsonl", data=log, check=True).stdout.splitlines()[0]
    )
    assert found["entry"]["event"]["actor"]["id"] == actor
    empty = run_cli("search", "--actor", "nobody-at-all", "--json", data=log, check=True)
    assert json.loads(empty.stdout) == []
    bad_time = run_cli("search", "--since", "last tuesday", data=log)
    assert bad_time.returncode == 1
    assert b"--since" in bad_time.stderr
    no_reason = run_cli("erase", str(index), data=log)
    assert no_reason.returncode == 2


def test_missing_and_unusable_data_directory(tmp_path: Path) -> None:
    result = run_cli("verify", data=tmp_path / "nowhere")
    assert result.returncode == 1
    assert b"trailseal init" in result.stderr
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    result = run_cli("init", data=blocked / "sub")
    assert result.returncode == 1
    assert b"cannot create data directory" in result.stderr


def test_data_directory_from_environment(tmp_path: Path) -> None:
    env = {"TRAILSEAL_DATA": str(tmp_path / "envdata")}
    run_cli("init", env=env, check=True)
    assert (tmp_path / "envdata" / "log.db").exists()


def test_loose_key_permissions_refuse_appends(log: Path) -> None:
    (log / "signing.key").chmod(0o644)
    result = run_cli("append", "-", data=log, stdin=event_lines(1, seed=3)[0])
    assert result.returncode == 1
    assert b"chmod 600" in result.stderr
    (log / "signing.key").chmod(0o600)
    assert run_cli("verify", data=log).returncode == 0


def test_bad_config_file_is_named(log: Path) -> None:
    (log / "config.toml").write_text('origin = "x"\nmax_events = 3\n')
    result = run_cli("verify", data=log)
    assert result.returncode == 1
    assert b"unknown setting(s) max_events" in result.stderr


def test_store_that_is_not_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    (data / "log.db").unlink()
    (data / "log.db").mkdir()
    result = run_cli("verify", data=data)
    assert result.returncode == 1
    assert b"no log at" in result.stderr
    assert b"Traceback" not in result.stderr


def test_events_from_stdin_with_invalid_utf8_and_nul_bytes(log: Path) -> None:
    result = run_cli("append", "-", data=log, stdin=b'{"id":"\x00\xff"}\n\x00\x00\n')
    assert result.returncode == 1
    assert b"line 1:" in result.stderr
    assert b"line 2:" in result.stderr
    assert b"Traceback" not in result.stderr


def test_tables_show_names_as_text(tmp_path: Path) -> None:
    """Issue 10, point 14: terminal escapes in an actor id (from an entry written before
    names refused them) were printed raw by search --table; Rich markup was read too."""
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    with Ledger.open(data) as ledger:  # an old entry: written before names were checked
        old = parse_event(
            b'{"id": "e-1", "time": "2026-03-01T14:05:09Z", "actor": {"id": "u-[bold]x"}, '
            b'"action": "record.read"}'
        )
        ledger.append(
            [
                msgspec.structs.replace(
                    old, actor=msgspec.structs.replace(old.actor, id="u-\x1b[2Jroot")
                )
            ]
        )
    table = run_cli("search", "--table", data=data, check=True).stdout.decode()
    assert "\x1b" not in table
    assert "\\x1b[2Jroot" in table


def test_verify_export_refuses_a_detail_nulled_without_an_erasure(
    log: Path, tmp_path: Path
) -> None:
    """Issue 10, point 14: verify-export accepted an export whose detail was set to null
    without any erasure record; an erasure the log recorded still passes."""
    rows = json.loads(run_cli("search", "--action", "record.update", "--json", data=log).stdout)
    erased, kept = [r["index"] for r in rows if "detail_commitment" in r["entry"]["event"]][:2]
    run_cli("erase", str(erased), "--reason", "GDPR art. 17", data=log, check=True)
    run_cli("export", "-o", tmp_path / "all.jsonl", data=log, check=True)
    (tmp_path / "cp").write_bytes(run_cli("checkpoint", data=log, check=True).stdout)
    vkey = run_cli("pubkey", data=log, check=True).stdout.decode().strip()
    ok = run_cli(
        "verify-export", tmp_path / "all.jsonl", "--checkpoint", tmp_path / "cp", "--vkey", vkey
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["detail_erased"] == [erased]
    lines = (tmp_path / "all.jsonl").read_bytes().splitlines()
    row = orjson.loads(lines[kept])
    row["detail"], row["salt"] = None, None
    lines[kept] = orjson.dumps(row)
    (tmp_path / "nulled.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    bad = run_cli(
        "verify-export", tmp_path / "nulled.jsonl", "--checkpoint", tmp_path / "cp", "--vkey", vkey
    )
    assert bad.returncode == 3
    assert b"missing-detail" in bad.stderr
    assert f"at index {kept}".encode() in bad.stderr


def test_proof_sizes_beyond_any_log_are_usage_errors(log: Path) -> None:
    """Issue 10, point 14: `prove inclusion --size 1e20` (or its digits) said
    'verification FAILED'."""
    for size in ("1e20", str(10**20)):
        result = run_cli("prove", "inclusion", "1", "--size", size, data=log)
        assert result.returncode == 2, result.stderr


def test_init_origins_with_control_or_non_ascii_characters(tmp_path: Path) -> None:
    """Issue 10, point 14: an --origin with a control character left an unreadable data
    directory; a non-ASCII one crashed and left an empty key file."""
    bad = run_cli("init", "--origin", "bad\x01origin", data=tmp_path / "bad")
    assert bad.returncode == 1
    assert b"control characters" in bad.stderr
    assert not any((tmp_path / "bad").glob("*"))  # nothing was written
    good = tmp_path / "good"
    made = run_cli("init", "--origin", "hôpital.example/log", data=good)
    assert made.returncode == 0, made.stderr
    assert b"Traceback" not in made.stderr
    run_cli("append", "-", data=good, stdin=b"\n".join(event_lines(3)), check=True)
    note = run_cli("checkpoint", data=good, check=True).stdout.decode()
    assert note.startswith("hôpital.example/log\n")
    run_cli("verify", data=good, check=True)


def _sig_line(name: str, blob: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(blob).decode()}\n"


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (_sig_line("other.example", b""), b"too short"),  # empty signature, another signer
        (_sig_line("other.example", b"\x01\x02\x03\x04"), b"too short"),  # key id only
        ("\u2014 other.example \n", b"too short"),  # no blob at all
        (_sig_line("bad+name", b"\x01" * 68), b"key name"),
        (_sig_line("", b"\x01" * 68), b"key name"),
        ("".join(_sig_line(f"w{n}.example", b"\x01" * 68) for n in range(100)), b"signatures"),
        (_sig_line("w.example", b"\x01" * 68).replace("w.example", "w\x07.example"), b"control"),
    ],
)
def test_verify_against_refuses_notes_the_signed_note_spec_refuses(
    log: Path, tmp_path: Path, extra: str, why: bytes
) -> None:
    """Issue 10, point 14: `verify --against` accepted signed notes that the signed-note
    spec and its Go reference implementation reject."""
    note = run_cli("checkpoint", data=log, check=True).stdout.decode()
    good = tmp_path / "good.note"
    good.write_text(note)
    assert run_cli("verify", "--against", good, data=log).returncode == 0
    forged = tmp_path / "forged.note"
    forged.write_text(note + extra)
    refused = run_cli("verify", "--against", forged, data=log)
    assert refused.returncode != 0
    assert why in refused.stderr
    assert b"Traceback" not in refused.stderr
