"""Retention policies and the plan: the policy file's checks, calendar periods, and a plan
held against an independent computation entry by entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Server, run_cli
from trailseal.errors import ConfigError
from trailseal.events import parse_event
from trailseal.ledger import Ledger, SearchFilter
from trailseal.ledger.matching import entry_matches
from trailseal.retention.holds import Hold, hold_query
from trailseal.retention.plan import plan
from trailseal.retention.policy import Period, parse_config
from trailseal.testing import sample_events

POLICIES = """\
policies:
  - name: phi
    preset: hipaa
    match: "resource:patient"
  - name: cardholder
    preset: pci-dss
    match: "tenant:tenant-3"
  - name: approvals
    preset: part11
    total: 2 years
  - name: short
    total: 90 days
    hot: 30 days
    match: "action:auth.*"
  - name: rest
    total: 1 year
    hot: 3 months
    match: "-resource:patient"
"""


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("policies:\n  - {name: a, preset: gdpr}\n", "line 2: unknown preset 'gdpr'"),
        ("policies:\n  - {name: a, total: 0 days}\n", "line 2: a period must be longer than zero"),
        ("policies:\n  - {name: a, total: -3 days}\n", "line 2: '-3 days' is not a period"),
        ("policies:\n  - {name: a, total: 1 year, hot: 2 years}\n", "hot 2 years is longer"),
        ("policies:\n  - {name: a, preset: hipaa, total: 1 year}\n", "never shorter"),
        ("policies:\n  - {name: a, preset: pci-dss, hot: 1 month}\n", "shorter than pci-dss"),
        ("policies:\n  - {name: a, preset: part11}\n", "after document.retire"),
        (
            (
                "policies:\n  - {name: a, total: 1 year, match: 'tenant:x'}\n"
                "  - {name: b, total: 2 years, match: 'tenant:x'}\n"
            ),
            "line 3: policy 'b' matches exactly what 'a' (line 2)",
        ),
        ("policies:\n  - {name: a, total: 1 year, match: 'actor:'}\n", "line 2: match:"),
        ("policies:\n  - {name: a, total: 1 year, match: 'unit:ICU'}\n", "not unit:"),
        ("policies:\n  - {name: a, total: 1 year}\n  - {name: a, total: 2 years}\n", "second"),
        ("policies:\n  - {name: a, total: 1 year, keep: yes}\n", "unknown key 'keep'"),
        ("policies: [\n", "not YAML"),
        ("policies: []\ncold: ftp://archive/x\n", "line 2: 'cold' 'ftp://archive/x' is neither"),
        ("cold: 42\npolicies: []\n", "line 1: 'cold' is a folder or s3://"),
        ("policies: []\n\nschedule: every night\n", "line 3: 'schedule' is a cron expression"),
    ],
)
def test_a_bad_policy_file_names_the_line_and_the_problem(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert words in str(caught.value)


def test_periods_are_calendar_periods() -> None:
    moment = datetime(2028, 3, 31, 12, tzinfo=UTC)
    assert Period.parse("1 month", "x").before(moment) == datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert Period.parse("P6Y", "x").before(moment) == datetime(2022, 3, 31, 12, tzinfo=UTC)
    assert Period.parse("90 days", "x").after(moment) == moment + timedelta(days=90)
    assert Period.parse("2 weeks", "x") == Period(days=14)
    assert str(Period.parse("P1Y3M", "x")) == "1 year 3 months"


def _log(tmp_path: Path) -> tuple[Ledger, list[dict]]:
    """Sample events in 6 batches (each batch stamped with its own received time), and
    two documents retired in batch 3."""
    led = Ledger.init(tmp_path / "data", origin="test/retention")
    events = list(sample_events(300, seed=9))
    for n, event in enumerate(events[:2]):
        event.update(action="document.retire", resource={"type": "document", "id": f"d-{n}"})
    order = [events[2:50], events[:2] + events[50:100], events[100:150], events[150:300]]
    for batch in order:
        led.append([parse_event(orjson.dumps(e)) for e in batch])
    entries = [view.entry for view in led.search(SearchFilter(limit=10_000))]
    return led, entries


def _expected(
    config: object, entries: list[dict], at: datetime, holds: list[Hold]
) -> dict[str, tuple[int, int, int, int]]:
    """Per policy (governed, to cold, to purge, held), computed entry by entry."""
    ranked = config.ranked()  # type: ignore[attr-defined]
    received = {e["index"]: datetime.fromisoformat(e["received_at"]) for e in entries}
    retired = {
        e["event"]["resource"]["id"]: received[e["index"]]
        for e in entries
        if e["event"]["action"] == "document.retire"
    }
    found = {p.name: [0, 0, 0, 0] for p in ranked}
    for entry in entries:
        winner = next((p for p in ranked if p.match is None or entry_matches(p.match, entry)), None)
        if winner is None:
            continue
        counts, moment = found[winner.name], received[entry["index"]]
        held = any(entry_matches(h.node, entry) for h in holds)
        frozen = any(entry_matches(h.node, entry) for h in holds if h.stops_cold)
        counts[0] += 1
        if winner.per_document:
            doc = (entry["event"].get("resource") or {}).get("id")
            past = doc in retired and winner.total.after(retired[doc]) <= at
        else:
            past = moment < winner.total.before(at)
        if past and not held:
            counts[2] += 1
            continue
        counts[3] += past
        if not frozen and winner.hot is not None and moment < winner.hot.before(at):
            counts[1] += 1
    return {name: (a, b, c, d) for name, (a, b, c, d) in found.items()}


HOLDS = [
    Hold(
        "h-000000000001", "tenant:tenant-5", hold_query("tenant:tenant-5"), *(False, "", "", "", 0)
    ),
    Hold("h-000000000002", "actor:u-7*", hold_query("actor:u-7*"), *(True, "", "", "", 0)),
]


def test_the_plan_agrees_with_an_independent_computation(tmp_path: Path) -> None:
    """At moments chosen so that every period's cutoff falls between two batches, each
    policy's counts are what deciding each entry alone gives."""
    config = parse_config(POLICIES)
    led, entries = _log(tmp_path)
    with led:
        stamps = sorted({datetime.fromisoformat(e["received_at"]) for e in entries})
        assert len(stamps) == 4
        periods = {p.total for p in config.policies} | {p.hot for p in config.policies if p.hot}
        moments = [period.after(stamp) for stamp in stamps for period in periods]
        moments += [stamps[0] - timedelta(days=1), stamps[-1] + timedelta(days=3650)]
        for at in moments:
            for holds in ([], HOLDS):
                found = plan(led, config, at, holds)
                got = {p.policy.name: (p.governed, p.cold, p.purge, p.held) for p in found.policies}
                assert got == _expected(config, entries, at, holds), (at, holds)
            for item in found.policies:
                assert item.hot + item.cold + item.purge == item.governed
            assert found.unmatched + sum(p.governed for p in found.policies) == found.size


def test_the_cli_plans_and_refuses_a_bad_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    lines = b"\n".join(orjson.dumps(e) for e in sample_events(50))
    run_cli("append", "-", data=data, stdin=lines, check=True)
    (data / "retention.yaml").write_text(POLICIES)
    later = run_cli("retention", "plan", "--at", "2040-01-01", "--json", data=data, check=True)
    rows = orjson.loads(later.stdout)
    assert {r["policy"] for r in rows} == {"phi", "cardholder", "approvals", "short", "rest"}
    assert sum(r["to_purge"] for r in rows if r["policy"] != "approvals") > 0
    placed = run_cli("retention", "hold", "tenant:tenant-2", "--reason", "SEC-9", data=data)
    assert placed.returncode == 0, placed.stderr
    hold_id = orjson.loads(placed.stdout)["id"]
    listed = orjson.loads(run_cli("retention", "holds", "--json", data=data, check=True).stdout)
    assert [(h["id"], h["query"], h["reason"]) for h in listed] == [
        (hold_id, "tenant:tenant-2", "SEC-9")
    ]
    held = run_cli("retention", "plan", "--at", "2040-01-01", "--json", data=data, check=True)
    assert sum(r["held"] for r in orjson.loads(held.stdout)) > 0
    assert run_cli("retention", "release", hold_id, "--reason", "closed", data=data).returncode == 0
    assert run_cli("retention", "release", hold_id, "--reason", "again", data=data).returncode == 1
    assert run_cli("retention", "hold", "tenant:", "--reason", "x", data=data).returncode == 1
    (data / "retention.yaml").write_text("policies:\n  - {name: a, preset: gdpr}\n")
    refused = run_cli("retention", "plan", data=data)
    assert refused.returncode == 1
    assert b"retention.yaml line 2: unknown preset" in refused.stderr
    assert run_cli("retention", "plan", "--at", "someday", data=data).returncode == 2


def test_who_may_plan(tmp_path: Path) -> None:
    """Privacy, auditors and admins may see a plan (counts, no event); a writer may not,
    nor a principal bound to one tenant (a plan spans every tenant). Each is recorded."""
    from trailseal.app import App, Caller  # noqa: PLC0415
    from trailseal.errors import PermissionDeniedError  # noqa: PLC0415

    with App.init(tmp_path / "data", origin="test/who") as app:
        (tmp_path / "data" / "retention.yaml").write_text(POLICIES)
        for role in ("privacy", "auditor", "admin"):
            made, _ = app.principals.create(Caller.host(), f"p-{role}", role)
            assert app.retention.plan(Caller(made)).size > 0
        for role, tenant in (("writer", "*"), ("auditor", "tenant-3")):
            made, _ = app.principals.create(Caller.host(), f"q-{role}", role, tenant)
            with pytest.raises(PermissionDeniedError):
                app.retention.plan(Caller(made))
        recorded = [
            view.entry["event"]
            for view in app.ledger.search(SearchFilter(action="audit.*", limit=100))
        ]
    reads = [e for e in recorded if (e.get("resource") or {}).get("type") == "retention"]
    assert [e["action"] for e in reads] == ["audit.read"] * 3 + ["audit.denied"]  # the tenant
    role = [e for e in recorded if (e.get("context") or {}).get("labels", {}).get("permission")]
    assert [(e["action"], e["context"]["labels"]["permission"]) for e in role] == [
        ("audit.denied", "retention")  # the writer
    ]


def test_holds_are_placed_and_released_by_privacy_and_read_back_from_the_log(
    tmp_path: Path,
) -> None:
    from trailseal.app import App, Caller  # noqa: PLC0415
    from trailseal.errors import BatchError, PermissionDeniedError  # noqa: PLC0415

    with App.init(tmp_path / "data", origin="test/holds") as app:
        host = Caller.host()
        writer, _ = app.principals.create(host, "ehr", "writer")
        lines = [orjson.dumps(e) for e in sample_events(100)]
        app.entries.append(Caller(writer), lines)
        (tmp_path / "data" / "retention.yaml").write_text(POLICIES)
        privacy, _ = app.principals.create(host, "po", "privacy")
        auditor, _ = app.principals.create(host, "au", "auditor")
        with pytest.raises(PermissionDeniedError):
            app.retention.hold(Caller(auditor), "tenant:tenant-5", "litigation")
        with pytest.raises(ConfigError, match="at character"):
            app.retention.hold(Caller(privacy), "tenant:", "litigation")
        placed = app.retention.hold(Caller(privacy), "tenant:tenant-5", "matter 2026-114")
        far = datetime(2040, 1, 1, tzinfo=UTC)
        held = sum(p.held for p in app.retention.plan(host, far).policies)
        covered = [e for e in sample_events(100) if e["resource"]["tenant"] == "tenant-5"]
        # All but documents (kept by part11 until retired, so not yet past their period).
        assert held == sum(1 for e in covered if e["resource"]["type"] != "document") > 0
        assert [h.id for h in app.retention.holds(Caller(auditor))] == [placed.id]
        # A writer cannot forge a release: retention.* is the log's own namespace.
        forged = {
            "id": "x",
            "time": "2026-03-01T00:00:00Z",
            "actor": {"id": "w"},
            "action": "retention.release",
            "resource": {"type": "hold", "id": placed.id},
        }
        with pytest.raises(BatchError):
            app.entries.append(Caller(writer), [orjson.dumps(forged)])
        with pytest.raises(ConfigError, match="reason"):
            app.retention.release(Caller(privacy), placed.id, " ")
        app.retention.release(Caller(privacy), placed.id, "matter closed")
        assert app.retention.holds(host) == []
        assert sum(p.held for p in app.retention.plan(host, far).policies) == 0


def test_the_api_plans_and_holds(server: Server) -> None:
    (server.data / "retention.yaml").write_text(POLICIES)
    writer, privacy = server.principal("ehr", "writer"), server.principal("po", "privacy")
    auditor = server.principal("au", "auditor")
    with server.client(writer) as http:
        lines = b"\n".join(orjson.dumps(e) for e in sample_events(40))
        sent = http.post(
            "/v1/events", content=lines, headers={"content-type": "application/x-ndjson"}
        )
        assert sent.status_code in (200, 201), sent.text
        forged = {
            "id": "f-1",
            "time": "2026-03-01T00:00:00Z",
            "actor": {"id": "w"},
            "action": "retention.hold",
            "resource": {"type": "hold", "id": "h-000000000009"},
        }
        assert http.post("/v1/events", json=forged).status_code == 422
    with server.client(privacy) as http:
        placed = http.post(
            "/v1/retention/holds", json={"query": "tenant:tenant-2", "reason": "m-1"}
        )
        assert placed.status_code == 201, placed.text
        bad = http.post("/v1/retention/holds", json={"query": "tenant:", "reason": "m-1"})
        assert bad.status_code == 400
    with server.client(auditor) as http:
        assert (
            http.post("/v1/retention/holds", json={"query": "tenant:x", "reason": "r"}).status_code
            == 403
        )
        later = http.get("/v1/retention/plan", params={"at": "2040-01-01"})
        assert later.status_code == 200, later.text
        assert sum(p["held"] for p in later.json()["policies"]) > 0
        wrong = http.get("/v1/retention/plan", params={"at": "someday"})
        assert wrong.status_code == 400
        assert wrong.json()["errors"][0]["pointer"] == "/at"
        assert [h["id"] for h in http.get("/v1/retention/holds").json()["holds"]] == [
            placed.json()["id"]
        ]
    with server.client(privacy) as http:
        done = http.post(
            f"/v1/retention/holds/{placed.json()['id']}/release", json={"reason": "closed"}
        )
        assert done.status_code == 200, done.text
        again = http.post(
            f"/v1/retention/holds/{placed.json()['id']}/release", json={"reason": "x"}
        )
        assert again.status_code == 404


_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=10), st.integers()),
        "preset": st.sampled_from(["hipaa", "pci-dss", "soc2", "part11", "gdpr", ""]),
        "total": st.one_of(
            st.sampled_from(["6 years", "0 days", "P1Y", "x", "-1 month"]), st.integers()
        ),
        "hot": st.sampled_from(["3 months", "10 years", "P0D", "1 week"]),
        "match": st.one_of(
            st.sampled_from(["tenant:a", "actor:b", "resource:", "(", ""]), st.integers()
        ),
        "extra": st.booleans(),
    },
)


@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(_FIELDS, max_size=4).map(lambda p: yaml.safe_dump({"policies": p})),
    )
)
@settings(max_examples=300, deadline=None)
def test_any_policy_file_parses_or_is_refused_with_a_config_error(text: str) -> None:
    try:
        config = parse_config(text)
    except ConfigError as exc:
        message = str(exc)
        config = None
    if config is None:
        assert "retention.yaml" in message  # every refusal names the file (and the line)
        return
    for policy in config.policies:
        assert policy.hot is None or policy.per_document or policy.hot <= policy.total
