"""The search language: parsing (with errors that point at the character), what each
qualifier means on purpose-built entries, the SQL narrowing against brute force on both
backends, and the doors (CLI in a subprocess, the HTTP API on a real server)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Server, event_lines, run_cli
from trailseal.errors import QueryError
from trailseal.events import parse_event
from trailseal.ledger import Ledger, SearchFilter
from trailseal.ledger.counting import tally
from trailseal.ledger.matching import entry_matches
from trailseal.query import Between, Exact, Match, Not, Or, Prefix, ResourceValue, parse

NOW = datetime(2026, 10, 15, 12, 30, tzinfo=UTC)


def _event(n: int, **parts: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"00000000-0000-7000-8000-{n:012d}",
        "time": parts.pop("time", f"2026-10-{n + 1:02d}T10:00:00Z"),
        "actor": {"id": f"u-{n % 3}", "type": "user"},
        "action": "record.read",
    }
    for name, value in parts.items():
        if isinstance(value, dict) and isinstance(event.get(name), dict):
            event[name] = {**event[name], **value}
        else:
            event[name] = value
    return event


# Eight entries, each with something the others lack; the queries below name them.
FIXTURE = [
    _event(0, resource={"type": "patient", "id": "p-1", "tenant": "acme", "unit": "ICU"}),
    _event(1, actor={"roles": ["nurse", "float"], "unit": "3B", "session_id": "s-1"}),
    _event(2, action="record.export", outcome={"result": "success", "status": 200}),
    _event(3, action="iam.role.assign", context={"ticket": "CHG-7"}, detail={"after": "x"}),
    _event(4, source={"ip": "10.1.2.3", "geo": {"country": "RO"}}, outcome={"result": "denied"}),
    _event(5, resource={"type": "patient", "id": "p-22"}, outcome={"status": 404}),
    _event(6, source={"ip": "fd00::1", "host": "Billing-Host"}, action="auth.login"),
    _event(7, actor={"tenant": "globex", "impersonator_id": "u-9"}, time="2026-10-15T12:00:00Z"),
]

KNOWN = [
    ("", list(range(8))),
    ("actor:u-1", [1, 4, 7]),
    ("actor:u-1,u-2", [1, 2, 4, 5, 7]),
    ("-actor:u-1", [0, 2, 3, 5, 6]),
    ("action:record.*", [0, 1, 2, 4, 5, 7]),
    ("NOT action:record.*", [3, 6]),
    ("resource:patient", [0, 5]),
    ("resource:patient/p-2*", [5]),
    ("resource:pat*", [0, 5]),
    ("role:nurse", [1]),
    ("session:s-1", [1]),
    ("unit:ICU", [0]),
    ("unit:3B", [1]),
    ("tenant:acme", [0]),
    ("tenant:globex OR tenant:acme", [0, 7]),
    ("outcome:denied", [4]),
    ("-outcome:success", [0, 1, 3, 4, 5, 6, 7]),
    ("status:>=400", [5]),
    ("status:200..299", [2]),
    ("ip:10.0.0.0/8", [4]),
    ("ip:10.1.2.3", [4]),
    ("country:RO", [4]),
    ("ticket:CHG-7", [3]),
    ("has:ticket", [3]),
    ("has:detail", [3]),
    ("no:resource", [1, 2, 3, 4, 6, 7]),
    ("has:impersonator", [7]),
    ("has:ip", [4, 6]),
    ("index:2..4", [2, 3, 4]),
    ("index:>5", [6, 7]),
    ("time:2026-10-03", [2]),
    ("time:2026-10-02..2026-10-04", [1, 2, 3]),
    ("time:>2026-10-06", [6, 7]),
    ("time:<=2026-10-01", [0]),
    ("time:2026-10", list(range(8))),
    ("time:>=now-1h", [7]),
    ("time:now/d..*", [7]),
    ("time:2026-10-15T12:00:00Z", [7]),
    ("billing", [6]),  # free text: source.host, case-insensitive
    ("(actor:u-0 OR actor:u-1) action:record.read", [0, 1, 4, 7]),
    ("actor:u-0 OR actor:u-1 action:record.read", [0, 1, 3, 4, 6, 7]),
    ("-(resource:patient OR has:ip)", [1, 2, 3, 7]),
    ('actor:"u-0"', [0, 3, 6]),
    ("actor:u-0 AND action:iam.*", [3]),
]


@pytest.fixture(scope="module")
def fixture_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with Ledger.init(tmp_path_factory.mktemp("search") / "data", origin="test/search") as led:
        led.append([parse_event(orjson.dumps(event)) for event in FIXTURE])
        yield led


@pytest.mark.parametrize(("text", "expected"), KNOWN)
def test_each_qualifier_means_what_the_docs_say(
    fixture_log: Ledger, text: str, expected: list[int]
) -> None:
    where = parse(text, now=NOW).root
    found = [view.index for view in fixture_log.search(SearchFilter(where=where, limit=100))]
    assert found == expected
    newest = fixture_log.search(SearchFilter(where=where, limit=100, newest_first=True))
    assert [view.index for view in newest] == expected[::-1]


def test_free_text_never_searches_the_detail(fixture_log: Ledger) -> None:
    assert fixture_log.search(SearchFilter(where=parse('"after"').root)) == []


def test_the_tree_is_typed() -> None:
    query = parse("actor:a,b* -resource:patient/p-1 (status:>=400 OR time:2026-10-05)")
    actor, negated, either = query.root.nodes  # type: ignore[union-attr]
    assert actor == Match("actor", (Exact("a"), Prefix("b")), 0)
    assert negated == Not(Match("resource", (ResourceValue(Exact("patient"), Exact("p-1")),), 12))
    assert isinstance(either, Or)
    status, day = either.nodes
    assert status.values == (Between(400, None),)  # type: ignore[union-attr]
    assert day.values == (  # type: ignore[union-attr]
        Between("2026-10-05T00:00:00.000000Z", "2026-10-06T00:00:00.000000Z"),
    )


BAD = [
    ("actr:x", 0, "unknown qualifier 'actr'; the qualifiers are actor, role"),
    ("actor:a (action:b", 8, "this '(' is never closed"),
    ("actor:a)", 7, "closes no '('"),
    ("actor:", 6, "needs a value"),
    ("OR actor:a", 0, "OR needs a term on each side"),
    ("actor:a OR", 10, "ends where a term was expected"),
    ('actor:"open', 6, "never closed"),
    ("status:4xx", 7, "not a whole number"),
    ("time:yesterday", 5, "is not a time"),
    ("time:2026-13", 5, "no month 13"),
    ("time:2026-10-01T10:00:00", 5, "no time zone"),
    ("ip:300.1.1.1", 3, "not an IP address"),
    ("outcome:ok", 8, "success, failure, denied"),
    ("has:colour", 4, "has: tests one of"),
    ("actor:a,,b", 8, "empty value"),
    ("actor:a*b", 7, "'*' may only end a value"),
    ("resource:/p-1", 9, "TYPE or TYPE/ID"),
    ("time:now-99999999w", 5, "out of range"),
    ("actor:a\x00", 7, "control character"),
]


@pytest.mark.parametrize(("text", "position", "message"), BAD)
def test_errors_point_at_the_offending_character(text: str, position: int, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse(text, now=NOW)
    assert raised.value.position == position
    assert message in str(raised.value)
    caret = raised.value.diagnostics().splitlines()[-1]
    assert caret.index("^") - 2 == position  # under the character, in the printed query


def test_a_query_too_long_or_too_deep_is_refused() -> None:
    with pytest.raises(QueryError, match="at most 4096"):
        parse("actor:a " * 600)
    with pytest.raises(QueryError, match="nested"):
        parse("(" * 40 + "actor:a" + ")" * 40)
    with pytest.raises(QueryError, match="more than 256 terms"):
        parse(" ".join(f"actor:a{n}" for n in range(300)))


@given(st.text(max_size=80))
@settings(max_examples=400, deadline=None)
def test_any_text_parses_or_gets_a_query_error(text: str) -> None:
    try:
        parse(text, now=NOW)
    except QueryError as error:
        position = error.position
    else:
        position = 0
    assert 0 <= position <= len(text)


# Queries assembled from the language's pieces, for the narrowing property below.
_TERMS = st.sampled_from(
    [
        "actor:u-1",
        "actor:u-2*",
        "action:record.*",
        "action:record.read,record.update",
        "resource:patient",
        "resource:document/d-1*",
        "outcome:success",
        "outcome:denied",
        "tenant:tenant-3",
        "time:>=2026-03-01T08:00:01Z",
        "time:<2026-03-01T08:00:02Z",
        "index:10..60",
        "index:>100",
        "role:nurse",
        "unit:ICU",
        "ip:10.0.0.0/9",
        "country:US",
        "has:ticket",
        "no:detail",
        "status:403",
        "api-3",
    ]
)


@st.composite
def _queries(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        term = draw(_TERMS)
        return f"-{term}" if draw(st.integers(0, 4)) == 0 else term
    left, right = draw(_queries(depth + 1)), draw(_queries(depth + 1))
    joined = draw(st.sampled_from([f"{left} {right}", f"{left} OR {right}", f"NOT ({left})"]))
    return f"({joined})" if draw(st.booleans()) else joined


@pytest.fixture(scope="module")
def sample_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Ledger, list]]]:
    """The same 400 sample events in a SQLite log and a PostgreSQL one."""
    from backends import PostgresBackend  # noqa: PLC0415 - only when PostgreSQL is up
    from conftest import need_postgres  # noqa: PLC0415

    need_postgres()
    lines = event_lines(400, seed=21)
    pg = PostgresBackend.fresh()
    try:
        logs = []
        for data, store in (
            (tmp_path_factory.mktemp("sqlite") / "data", None),
            (tmp_path_factory.mktemp("pg") / "data", pg.store(Path())),
        ):
            led = Ledger.init(data, origin="test/narrow", store=store)
            led.append([parse_event(line) for line in lines])
            entries = [view.entry for view in led.search(SearchFilter(limit=1000))]
            logs.append((led, entries))
        yield logs
        for led, _ in logs:
            led.close()
    finally:
        pg.cleanup()


@given(_queries())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_narrowing_by_the_index_never_loses_or_adds_a_match(
    sample_logs: list[tuple[Ledger, list]], text: str
) -> None:
    query = parse(text)
    for led, entries in sample_logs:
        expected = [e["index"] for e in entries if entry_matches(query.root, e)]
        found = led.search(SearchFilter(where=query.root, limit=1000))
        assert [view.index for view in found] == expected, text
        few = led.search(SearchFilter(where=query.root, limit=3, newest_first=True))
        assert [view.index for view in few] == expected[::-1][:3]


def test_the_cli_searches_counts_and_refuses_a_bad_query(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    lines = b"\n".join(orjson.dumps(event) for event in FIXTURE) + b"\n"
    run_cli("append", "-", data=data, stdin=lines, check=True)
    found = run_cli("search", "resource:patient -outcome:denied", "--jsonl", data=data, check=True)
    assert [orjson.loads(line)["index"] for line in found.stdout.splitlines()] == [0, 5]
    newest = run_cli(
        "search", "action:record.*", "--order", "newest", "--limit", "2", "--json", data=data
    )
    assert [row["index"] for row in orjson.loads(newest.stdout)] == [7, 5]
    shorthand = run_cli("search", "action:record.*", "--actor", "u-1", "--json", data=data)
    assert [row["index"] for row in orjson.loads(shorthand.stdout)] == [1, 4, 7]
    counts = run_cli("search", "action:record.*", "--count-by", "actor", "--json", data=data)
    assert orjson.loads(counts.stdout) == [
        {"value": "u-1", "count": 3},
        {"value": "u-2", "count": 2},
        {"value": "u-0", "count": 1},
    ]
    as_csv = run_cli("search", "action:record.*", "--count-by", "actor", "--csv", data=data)
    assert as_csv.stdout.decode().splitlines() == ["value,count", "u-1,3", "u-2,2", "u-0,1"]
    hostile = run_cli("search", "resource:patient", "--csv", data=data).stdout.decode()
    assert hostile.splitlines()[0] == "index,time,actor,action,resource,outcome"
    bad = run_cli("search", "actor:a (action:b", data=data)
    assert bad.returncode == 2
    err = bad.stderr.decode()
    assert "at character 9: this '(' is never closed" in err
    assert err.splitlines()[-1] == "          ^"
    assert "Traceback" not in err
    unknown = run_cli("search", "--count-by", "colour", data=data)
    assert unknown.returncode == 2
    assert "count by one of actor" in unknown.stderr.decode()


def test_the_api_takes_the_same_language(server: Server) -> None:
    writer = server.client(server.principal("w", "writer"))
    acme_writer = server.client(server.principal("acme-w", "writer", "acme"))
    auditor = server.client(server.principal("a", "auditor"))
    acme = server.client(server.principal("acme-a", "auditor", "acme"))
    posted = writer.post("/v1/events", json=FIXTURE).json()["entries"]
    extra = _event(8, resource={"type": "patient", "id": "p-3", "tenant": "acme"})
    posted += acme_writer.post("/v1/events", json=[extra]).json()["entries"]
    at = [row["index"] for row in posted]  # fixture number -> index in this log

    page = auditor.get("/v1/entries", params={"q": "resource:patient", "limit": 2}).json()
    assert [e["index"] for e in page["entries"]] == [at[0], at[5]]
    rest = auditor.get(
        "/v1/entries", params={"q": "resource:patient", "cursor": page["next_cursor"]}
    ).json()
    assert [e["index"] for e in rest["entries"]] == [at[8]]
    newest, seen = {"q": "action:record.*", "order": "newest", "limit": 2}, []
    while True:
        answer = auditor.get("/v1/entries", params=newest).json()
        seen += [e["index"] for e in answer["entries"]]
        if not answer["next_cursor"]:
            break
        newest["cursor"] = answer["next_cursor"]
    assert seen == [at[n] for n in (8, 7, 5, 4, 2, 1, 0)]
    wrong_order = {"q": "action:x", "cursor": page["next_cursor"], "order": "newest"}
    assert auditor.get("/v1/entries", params=wrong_order).status_code == 400
    counts = auditor.get("/v1/entries", params={"q": "resource:patient", "count_by": "tenant"})
    assert counts.json() == {
        "field": "tenant",
        "counts": [{"value": "acme", "count": 2}, {"value": None, "count": 1}],
        "total": 3,
    }
    bad = auditor.get("/v1/entries", params={"q": "actr:x"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    (error,) = bad.json()["errors"]
    assert (error["pointer"], error["position"]) == ("/q", 0)
    assert "the qualifiers are actor" in bad.json()["detail"]
    own = acme.get("/v1/entries", params={"q": "resource:patient"}).json()["entries"]
    assert [e["index"] for e in own] == [at[0], at[8]]  # its tenant only, whatever the query
    assert acme.get("/v1/entries", params={"q": "tenant:globex OR actor:u-1"}).status_code == 403


@given(_queries(), st.sampled_from(["actor", "action", "tenant", "outcome", "day", "hour", "role"]))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_counting_in_the_index_agrees_with_counting_entry_by_entry(
    sample_logs: list[tuple[Ledger, list]], text: str, field: str
) -> None:
    """A count the index can decide alone (every term reads indexed fields) is made in SQL;
    any other entry by entry. Both give what counting the matching entries naively does."""
    query = parse(text)
    for led, entries in sample_logs:
        expected = tally((e for e in entries if entry_matches(query.root, e)), field)
        assert led.count_by(SearchFilter(where=query.root), field) == expected, text
        pinned = [e for e in entries if e["index"] < 150 and entry_matches(query.root, e)]
        assert led.count_by(SearchFilter(where=query.root, below_index=150), field) == tally(
            pinned, field
        )


def test_counting_by_periods_over_months_agrees_with_counting_entries(tmp_path: Path) -> None:
    """Events spread over three months, counted by month, day and hour (SQLite counts a
    range a period; the rest of the query decided by the index or not)."""
    from trailseal.testing import sample_event  # noqa: PLC0415

    rng = random.Random(5)
    start = datetime(2026, 1, 30, 22, 0, tzinfo=UTC)
    events = [sample_event(rng, start + timedelta(hours=7 * n)) for n in range(300)]
    with Ledger.init(tmp_path / "data", origin="test/periods") as led:
        led.append([parse_event(orjson.dumps(e)) for e in events])
        entries = [view.entry for view in led.search(SearchFilter(limit=1000))]
        for text in ("", "action:record.*", "role:nurse", "time:2026-02"):
            node = parse(text).root if text else None
            for field in ("month", "day", "hour"):
                expected = tally(
                    (e for e in entries if node is None or entry_matches(node, e)), field
                )
                assert led.count_by(SearchFilter(where=node), field) == expected, (text, field)


def test_time_periods_cover_the_span() -> None:
    from trailseal.storage.base import time_periods  # noqa: PLC0415

    assert time_periods("2026-11", "2027-01") == [
        ("2026-11", "2026-12"),
        ("2026-12", "2027-01"),
        ("2027-01", "2027-02"),
    ]
    assert time_periods("2028-02-28", "2028-03-01")[1] == ("2028-02-29", "2028-03-01")
    assert time_periods("2026-03-08T23", "2026-03-09T00") == [
        ("2026-03-08T23", "2026-03-09T00"),
        ("2026-03-09T00", "2026-03-09T01"),
    ]


def test_actions_and_intake_agree_with_the_entries(sample_logs: list[tuple[Ledger, list]]) -> None:
    """The distinct actions (a loose index scan) and the entries received between moments
    (bisecting the log by received_at), on SQLite and PostgreSQL."""
    for led, entries in sample_logs:
        assert led.actions() == sorted({e["event"]["action"] for e in entries})
        received = sorted(e["received_at"] for e in entries)
        middle = received[len(received) // 2]
        bounds = ["2000-01-01T00:00:00.000000Z", middle, "2999-01-01T00:00:00.000000Z"]
        early = sum(1 for moment in received if moment < middle)
        assert led.received_counts(bounds) == [early, len(entries) - early]
        assert led.received_counts(
            ["2999-01-01T00:00:00.000000Z", "3000-01-01T00:00:00.000000Z"]
        ) == [0]


def test_intake_is_found_by_bisecting_batches(tmp_path: Path) -> None:
    lines = event_lines(90, seed=3)
    with Ledger.init(tmp_path / "data", origin="test/intake") as led:
        for start in range(0, 90, 30):
            led.append([parse_event(line) for line in lines[start : start + 30]])
        stamps = [led.get(i).entry["received_at"] for i in (0, 30, 60)]
        assert len(set(stamps)) == 3  # one stamp a batch
        bounds = ["2000-01-01T00:00:00.000000Z", *stamps, "2999-01-01T00:00:00.000000Z"]
        assert led.received_counts(bounds) == [0, 30, 30, 30]
