"""`trailseal import cloudtrail`: real delivery files, every record kept whole, each once.

The Stratus Red Team detonation logs (real CloudTrail records, anonymised) are read from
the shared corpus, never copied here; the test skips, saying so, where it is absent.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import Backend
from cloudtrail_files import compact, envelope, record, shared
from conftest import run_cli
from trailseal.app import App, Caller
from trailseal.errors import EventError
from trailseal.events import event_from_mapping
from trailseal.ingest.cloudtrail import Tenancy, event_time, to_event
from trailseal.ingest.records import RecordFileError, decompress, records

STRATUS = shared() / "corpus" / "cloudtrail-stratus"


def _stratus() -> Path:
    if not STRATUS.is_dir():
        pytest.skip(f"the Stratus Red Team CloudTrail samples are not at {STRATUS}")
    return STRATUS


def _import(data: Path, *sources: Path | str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    result = run_cli("import", "cloudtrail", *sources, *extra, data=data)
    assert result.returncode in (0, 1), result.stderr.decode()
    found: dict[str, Any] = json.loads(result.stdout)
    assert (result.returncode == 1) == bool(
        found["refused"] or found.get("digests", {}).get("findings")
    )
    return found


def _exported(data: Path) -> dict[str, dict[str, Any]]:
    """Every exported line of an imported event, by event id (the log's own entries, such
    as the record of the export itself, left out)."""
    out = run_cli("export", data=data, check=True).stdout
    lines = [orjson.loads(line) for line in out.splitlines()]
    return {
        line["entry"]["event"]["id"]: line
        for line in lines
        if line["entry"]["event"]["action"].startswith("aws.")
    }


# -- the public samples -------------------------------------------------------------------


def test_stratus_samples_import_whole_and_once(tmp_path: Path) -> None:
    corpus = _stratus()
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    originals = {
        r["eventID"]: r for f in sorted(corpus.glob("*.json")) for r in json.loads(f.read_bytes())
    }

    found = _import(data, corpus)  # the folder, recursively (LICENSE and NOTICE are not logs)
    assert found["files"] == 13
    assert (found["records"], found["imported"], found["refused"]) == (18, 18, 0)

    exported = _exported(data)
    assert set(exported) == set(originals)
    for event_id, original in originals.items():
        line = exported[event_id]
        text = line["detail"]["cloudtrail"]
        # Every field, byte for byte: the record as delivered, whitespace between tokens out.
        assert text.encode() == compact(original)
        assert json.loads(text) == original
        event = line["entry"]["event"]
        assert event["time"] == original["eventTime"]
        source = original["eventSource"].removesuffix(".amazonaws.com")
        assert event["action"] == f"aws.{source}.{original['eventName']}"
        assert event["actor"]["id"] == original["userIdentity"]["arn"]
        address = original["sourceIPAddress"]
        # Anonymised addresses with leading zeros are not addresses: kept as the host.
        assert event["source"].get("ip", event["source"].get("host")) == address
        if original.get("errorCode"):
            assert event["outcome"]["result"] == "failure"
            assert original["errorCode"] in event["outcome"]["reason"]
        else:
            assert event["outcome"] == {"result": "success"}

    again = _import(data, corpus)
    assert (again["imported"], again["duplicates"]) == (0, 18)
    run_cli("verify", data=data, check=True)


def test_leading_zero_addresses_are_hosts_not_ips() -> None:
    corpus = _stratus()
    seen = 0
    for file in corpus.glob("*.json"):
        for found in json.loads(file.read_bytes()):
            event = to_event(found, compact(found), Tenancy())
            address = found["sourceIPAddress"]
            if any(part.startswith("0") and len(part) > 1 for part in address.split(".")):
                assert event["source"] == {"host": address, "user_agent": found["userAgent"]}
                seen += 1
    assert seen > 0  # the quirk is really in the samples


# -- what delivery files hold ------------------------------------------------------------


def _awkward() -> tuple[bytes, list[bytes]]:
    """A delivery file whose records hold what the event schema refuses, written by hand
    so that each record's delivered text is known to the byte."""
    texts = [
        # a fraction, an integer past 2**53, a number in exponent form, escapes kept as sent
        (
            b'{"eventVersion":"1.08","eventID":"e-float","eventTime":"2026-11-30T10:00:00.123456789Z",'
            b'"eventSource":"s3.amazonaws.com","eventName":"GetObject","userIdentity":{"type":'
            b'"AWSService","invokedBy":"athena.amazonaws.com"},"sourceIPAddress":"AWS Internal",'
            b'"additionalEventData":{"bytesTransferredOut":1.50,"big":123456789012345678901234567890,'
            b'"exp":1e3,"quote":"a\\"b\\u00e9\\/"},"requestParameters":{"bucketName":"b"}}'
        ),
        # a non-ISO time with an offset, a service as the source
        (
            b'{"eventID":"e-offset","eventTime":"2026-11-30 12:00:00+02:00","eventSource":'
            b'"iam.amazonaws.com","eventName":"CreateRole","userIdentity":{"type":"AssumedRole",'
            b'"arn":"arn:aws:sts::1:assumed-role/deploy/ci"},"sourceIPAddress":"cloudformation.'
            b'amazonaws.com","errorCode":"AccessDenied","errorMessage":"not allowed"}'
        ),
        # an IPv6 address, a console login that failed
        (
            b'{"eventID":"e-v6","eventTime":"2026-11-30T10:05:00Z","eventSource":"signin.amazonaws'
            b'.com","eventName":"ConsoleLogin","userIdentity":{"type":"Root","accountId":"1"},'
            b'"sourceIPAddress":"2001:db8::7","responseElements":{"ConsoleLogin":"Failure"}}'
        ),
    ]
    return b'{"Records":[' + b",".join(texts) + b"]}", texts


def test_integers_past_64_bits_keep_their_value() -> None:
    """orjson reads an integer past 64 bits as a float (found by the property test below
    with -9223372036854775809); such a record is read exactly."""
    for number in (-(2**63) - 1, 2**64, -(10**30)):
        text = b'[{"n":' + str(number).encode() + b"}]"
        assert [r.value for r in records(text, "f")] == [{"n": number}]


def test_records_keep_their_delivered_text_exactly() -> None:
    whole, texts = _awkward()
    found = list(records(gzip.compress(whole), "f.json.gz"))
    assert [r.text for r in found] == texts
    assert found[0].value["additionalEventData"]["big"] == 123456789012345678901234567890
    pretty = json.dumps(json.loads(whole), indent=3).encode()  # the same records, indented
    assert [r.text for r in records(pretty, "p.json")] != []


def test_awkward_records_import_without_loss(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    whole, texts = _awkward()
    folder = tmp_path / "trail" / "nested"
    folder.mkdir(parents=True)
    (folder / "a.json.gz").write_bytes(gzip.compress(whole))
    found = _import(data, tmp_path / "trail")
    assert (found["records"], found["imported"], found["refused"]) == (3, 3, 0)
    exported = _exported(data)
    for text in texts:
        event_id = json.loads(text)["eventID"]
        assert exported[event_id]["detail"]["cloudtrail"].encode() == text
    floats = exported["e-float"]["entry"]["event"]
    assert floats["time"] == "2026-11-30T10:00:00.123456Z"
    assert floats["source"] == {"host": "AWS Internal"}
    assert floats["actor"] == {"id": "athena.amazonaws.com", "type": "service"}
    offset = exported["e-offset"]["entry"]["event"]
    assert offset["time"] == "2026-11-30T10:00:00Z"
    assert offset["source"] == {"service": "cloudformation.amazonaws.com"}
    assert offset["outcome"] == {"result": "denied", "reason": "AccessDenied: not allowed"}
    v6 = exported["e-v6"]["entry"]["event"]
    assert v6["source"] == {"ip": "2001:db8::7"}
    assert v6["actor"] == {"id": "Root:1", "type": "user"}
    assert v6["outcome"]["result"] == "failure"


def test_large_records_are_kept_whole(tmp_path: Path) -> None:
    """A record far past the append limit (64 KiB by default) is imported whole: the
    source's record is not ours to cut."""
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    big = record("PutBucketPolicy", "s3.amazonaws.com", requestParameters={"policy": "x" * 300_000})
    (tmp_path / "big.json").write_bytes(envelope([big]))
    found = _import(data, tmp_path / "big.json")
    assert found["imported"] == 1
    assert _exported(data)[big["eventID"]]["detail"]["cloudtrail"].encode() == compact(big)


def test_shapes_order_and_duplicates_across_files(tmp_path: Path) -> None:
    """Envelopes (gzip and plain), bare arrays and JSON Lines; records out of order and
    repeated across files: each imported once, the log in arrival order."""
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    made = [record(f"Describe{n}", eventTime=f"2026-11-30T10:{59 - n:02d}:00Z") for n in range(30)]
    trail = tmp_path / "trail"
    trail.mkdir()
    (trail / "1.json.gz").write_bytes(gzip.compress(envelope(made[:10])))
    (trail / "2.json").write_bytes(json.dumps(made[5:20], indent=2).encode())  # 5 repeated
    (trail / "3.jsonl").write_bytes(b"\n".join(compact(r) for r in made[15:30]) + b"\n")
    (trail / "notes.txt").write_text("not a log file: a folder read skips it")
    found = _import(data, trail)
    assert found["files"] == 3
    assert (found["records"], found["imported"], found["duplicates"]) == (40, 30, 10)
    assert set(_exported(data)) == {r["eventID"] for r in made}
    assert _import(data, trail)["imported"] == 0


def test_bad_files_and_records_are_named_and_lose_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    good = [record("ListUsers", "iam.amazonaws.com") for _ in range(3)]
    no_time = record("ListRoles", "iam.amazonaws.com")
    del no_time["eventTime"]
    clash = dict(good[0], eventName="DeleteUser")  # an id reused with other content
    trail = tmp_path / "trail"
    trail.mkdir()
    (trail / "a.json").write_bytes(envelope([*good, no_time]))
    (trail / "b.json").write_bytes(b'{"Records": [1, ' + compact(clash) + b"]}")
    (trail / "c.json").write_bytes(b"{not json")
    (trail / "d.json.gz").write_bytes(gzip.compress(envelope(good))[:-12])  # truncated
    found = _import(data, trail)
    reasons = {r["where"]: r["reason"] for r in found["refusals"]}
    assert found["imported"] == 3
    assert "eventTime" in reasons[f"{trail / 'a.json'}#4"]
    assert "JSON object, not int" in reasons[f"{trail / 'b.json'}#1"]
    assert "other content" in reasons[f"{trail / 'b.json'}#2"]
    assert "not JSON" in reasons[str(trail / "c.json")]
    assert "gzip" in reasons[str(trail / "d.json.gz")]
    assert set(_exported(data)) == {r["eventID"] for r in good}
    missing = run_cli("import", "cloudtrail", tmp_path / "nowhere", data=data)
    assert missing.returncode == 1
    assert b"no such file or folder" in missing.stderr
    run_cli("verify", data=data, check=True)


def test_decompression_is_bounded() -> None:
    bomb = gzip.compress(b" " * 5_000_000)
    with pytest.raises(RecordFileError, match="more than 1000000 bytes"):
        decompress(bomb, "bomb.json.gz", limit=1_000_000)


def test_tenancy_from_the_account_or_named(tmp_path: Path) -> None:
    made = record("ListUsers", "iam.amazonaws.com")
    assert to_event(made, compact(made), Tenancy(from_account=True))["resource"] == {
        "tenant": "111122223333"
    }
    assert to_event(made, compact(made), Tenancy("acme"))["actor"]["tenant"] == "acme"
    with App.init(tmp_path / "d") as app:
        writer = app.principals.create(Caller.host(), "w", "writer", tenant="other")[0]
        (tmp_path / "r.json").write_bytes(envelope([made]))
        summary = app.imports.cloudtrail(
            Caller(writer, None, "t"), [str(tmp_path / "r.json")], tenancy=Tenancy("acme")
        )
        assert summary.imported == 0
        assert "tenant 'other' may only write" in summary.refused[0].reason


# -- properties ----------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(_values, max_size=6),
    st.sampled_from(["envelope", "array", "lines"]),
    st.sampled_from([None, 1, 4]),
    st.booleans(),
    st.booleans(),
)
def test_every_record_comes_back_with_its_text(
    values: list[Any], shape: str, indent: int | None, ascii_only: bool, zipped: bool
) -> None:
    """Whatever the records hold (fractions, huge integers, escapes) and however the file
    is laid out, each record comes back in order with its value and its exact text."""
    if shape == "lines":  # one object a line (a lone array on one line reads as an array)
        values = [{"n": n, "v": v} for n, v in enumerate(values)]
        body = b"\n".join(json.dumps(v, ensure_ascii=ascii_only).encode() for v in values)
    else:
        whole = {"Records": values} if shape == "envelope" else values
        body = json.dumps(whole, indent=indent, ensure_ascii=ascii_only).encode()
    found = list(records(gzip.compress(body) if zipped else body, "f"))
    expected = [
        json.dumps(v, separators=(",", ":"), ensure_ascii=ascii_only).encode() for v in values
    ]
    assert [r.text for r in found] == expected
    assert [r.where for r in found] == [f"f#{n}" for n in range(1, len(values) + 1)]
    assert [
        orjson.dumps(r.value, option=orjson.OPT_SORT_KEYS) for r in found if _small(r.value)
    ] == [orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in values if _small(v)]


def _small(value: Any) -> bool:
    """Whether orjson can write the value (no integer past 64 bits), to compare values."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "eventID",
                "eventTime",
                "eventSource",
                "eventName",
                "userIdentity",
                "sourceIPAddress",
                "userAgent",
                "errorCode",
                "errorMessage",
                "resources",
                "requestID",
                "readOnly",
                "recipientAccountId",
                "awsRegion",
                "responseElements",
            ]
        ),
        _values,
        max_size=10,
    )
)
def test_any_record_is_an_event_or_a_named_refusal(found: dict[str, Any]) -> None:
    found.setdefault("eventTime", "2026-11-30T10:00:00Z")
    text = compact(found)
    refused: EventError | None = None
    try:
        raw = to_event(found, text, Tenancy(from_account=True))
    except EventError as exc:
        refused = exc
    if refused is not None:
        assert refused.field == "eventTime"  # the only field a record cannot do without
        return
    event = event_from_mapping(raw)  # and what was made is a valid event
    assert event.detail == {"cloudtrail": text.decode()}
    assert event.action.startswith("aws.")


@given(st.datetimes(timezones=st.timezones()))
@settings(max_examples=100, deadline=None)
def test_event_time_is_the_same_moment_in_utc(moment: Any) -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    text = event_time(moment.isoformat())
    back = datetime.fromisoformat(text)
    assert back == moment.astimezone(UTC).replace(microsecond=back.microsecond)


def test_both_backends_import_each_record_once(backend: Backend, tmp_path: Path) -> None:
    """The same import on the SQLite file and on a PostgreSQL schema: every record once,
    a re-run finds each stored, and the log verifies."""
    data = tmp_path / "data"
    store = backend.store(data)
    run_cli("init", *(("--store", store) if store else ()), data=data, check=True)
    made = [record(f"Describe{n}") for n in range(50)]
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(envelope(made[:30])))
    (tmp_path / "b.json").write_bytes(envelope(made[20:]))
    found = _import(data, tmp_path / "a.json.gz", tmp_path / "b.json")
    assert (found["records"], found["imported"], found["duplicates"]) == (60, 50, 10)
    assert _import(data, tmp_path / "b.json")["duplicates"] == 30
    exported = _exported(data)
    assert {k: v["detail"]["cloudtrail"].encode() for k, v in exported.items()} == {
        r["eventID"]: compact(r) for r in made
    }
    run_cli("verify", data=data, check=True)
