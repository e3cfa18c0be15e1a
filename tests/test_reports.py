"""Reports on a purpose-built month with known answers (counts, exceptions and orderings
checked exactly), their four formats, and the doors (CLI in a subprocess, the API on a
real server). Evidence bundles have their own file, tests/test_bundles.py."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Server, run_cli
from trailseal.app import App, Caller
from trailseal.errors import ConfigError, NotFoundError, PermissionDeniedError
from trailseal.reports import verify_bundle
from trailseal.reports.tickets import parse_tickets

HOST = Caller.host()


def ev(n: int, time: str, actor_id: str, action: str, **parts: Any) -> dict[str, Any]:
    actor_part = {"id": actor_id, "type": "user"} | parts.pop("actor", {})
    return {
        "id": f"00000000-0000-7000-8000-{n:012d}",
        "time": time,
        "actor": actor_part,
        "action": action,
    } | parts


def patient(pid: str, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "patient", "id": pid} | ({"unit": unit} if unit else {}) | extra


def doc(version: int, digest: str) -> dict[str, Any]:
    return {"type": "document", "id": "SOP-12", "version": version, "hash": digest}


H1, H2 = "a" * 64, "b" * 64
E = {
    "normal": ev(0, "2026-10-05T14:00:00Z", "n-1", "patient.read", resource=patient("p-1", "ICU")),
    "outside": ev(1, "2026-10-05T15:00:00Z", "n-1", "patient.read", resource=patient("p-2", "3B")),
    "night": ev(2, "2026-10-06T08:00:00Z", "n-1", "patient.read", resource=patient("p-1", "ICU")),
    "leaver": ev(3, "2026-10-20T15:00:00Z", "n-2", "patient.read", resource=patient("p-3", "3B")),
    "locum": ev(
        4,
        "2026-10-07T02:00:00Z",
        "d-9",
        "patient.read",
        actor={"unit": "ER"},
        resource=patient("p-3", "3B"),
    ),
    "export": ev(
        5,
        "2026-10-08T16:00:00Z",
        "c-1",
        "record.export",
        actor={"unit": "HIM"},
        resource=patient("p-1", count=40),
    ),
    "list": ev(6, "2026-10-09T15:00:00Z", "n-1", "patient.list", resource=patient("p-1", count=25)),
    "update": ev(
        7,
        "2026-10-10T15:00:00Z",
        "n-1",
        "record.update",
        resource=patient("p-1", "ICU"),
        detail={"before": {"ward": "3B"}, "after": {"ward": "ICU"}},
    ),
    "november": ev(
        8, "2026-11-02T15:00:00Z", "n-1", "patient.read", resource=patient("p-1", "ICU")
    ),
    "grant": ev(
        9,
        "2026-10-21T19:10:00Z",
        "a-1",
        "iam.role.assign",
        actor={"unit": "IT"},
        resource={"type": "user", "id": "a-1"},
        detail={"before": {"roles": ["admin"]}, "after": {"roles": ["admin", "export"]}},
    ),
    "bulk": ev(
        10,
        "2026-10-21T19:20:00Z",
        "a-1",
        "record.export",
        actor={"unit": "IT"},
        resource=patient("*", count=500),
    ),
    "d-create": ev(
        20,
        "2026-10-02T10:00:00Z",
        "e-1",
        "document.create",
        resource=doc(1, H1),
        actor={"name": "E. Engineer"},
        detail={"after": {"title": "Sterilisation"}},
    ),
    "d-read": ev(21, "2026-10-03T10:00:00Z", "q-1", "document.read", resource=doc(1, H1)),
    "d-sign": ev(
        22,
        "2026-10-04T10:00:00Z",
        "q-1",
        "document.sign",
        resource=doc(1, H1),
        actor={"name": "Q. Lead", "auth_method": "sso+mfa"},
        detail={"after": {"meaning": "approval"}},
    ),
    "d-edit": ev(
        23,
        "2026-10-11T10:00:00Z",
        "e-1",
        "document.update",
        resource=doc(2, H2),
        detail={"before": {"step": 3}, "after": {"step": 4}},
    ),
    "d-move": ev(
        24,
        "2026-10-12T10:00:00Z",
        "e-1",
        "document.transition",
        resource=doc(2, H2),
        detail={"before": {"state": "draft"}, "after": {"state": "review"}},
    ),
    "d-down": ev(25, "2026-10-13T10:00:00Z", "e-2", "document.download", resource=doc(2, H2)),
}
SERVICE = {"type": "service", "id": "api"}
CHANGES = {
    "ok": ev(
        30,
        "2026-10-05T12:00:00Z",
        "ops-1",
        "deploy.release",
        resource=SERVICE,
        context={"ticket": "CHG-1"},
    ),
    "unapproved": ev(
        31,
        "2026-10-06T12:00:00Z",
        "ops-1",
        "deploy.release",
        resource=SERVICE,
        context={"ticket": "CHG-2"},
    ),
    "late": ev(
        32,
        "2026-10-07T12:00:00Z",
        "ops-2",
        "deploy.release",
        resource=SERVICE,
        context={"ticket": "CHG-3"},
    ),
    "self": ev(
        33,
        "2026-10-08T12:00:00Z",
        "ops-2",
        "deploy.release",
        resource=SERVICE,
        context={"ticket": "CHG-4"},
    ),
    "none": ev(34, "2026-10-09T12:00:00Z", "ops-1", "deploy.release", resource=SERVICE),
    "by-ref": ev(35, "2026-10-10T12:00:00Z", "ops-1", "deploy.release", resource=SERVICE),
    "elsewhere": ev(36, "2026-10-10T13:00:00Z", "ops-1", "config.change", resource=SERVICE),
}
# Jira's export columns, semicolon-delimited as a European locale writes them.
TICKETS = (
    "Issue key;Status;Custom field (Approver);Custom field (Approved);"
    "Custom field (Change reference)\n"
    "CHG-1;Approved;mgr-1;2026-10-04 09:00;\n"
    "CHG-2;In Progress;;;\n"
    "CHG-3;Done;mgr-1;2026-10-07T13:00:00Z;\n"
    "CHG-4;Approved;ops-2;2026-10-01T09:00:00Z;\n"
    f"CHG-5;Approved;mgr-2;2026-10-09T09:00:00Z;{CHANGES['by-ref']['id']}\n"
)
ROSTER = (
    "user_id,unit,shift_start,shift_end,timezone,end_date\n"
    "n-1,ICU,07:00,19:00,America/Chicago,\n"
    "n-2,3B,07:00,19:00,America/Chicago,2026-10-15\n"
)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, dict[str, int]]]:
    data = tmp_path_factory.mktemp("reports") / "data"
    with App.init(data, origin="test.example/reports") as app:
        (data / "roster.csv").write_text(ROSTER)
        (data / "detection.yaml").write_text("context: {roster: roster.csv}\n")
        events = {**E, **CHANGES}
        lines = [orjson.dumps(event) for event in events.values()]
        placed = app.entries.append(HOST, lines).placed
        at = {name: index for name, (_, index) in zip(events, placed, strict=True)}
        yield app, at


def _rows(report: Any, key: str) -> list[dict[str, Any]]:
    (section,) = [s for s in report.to_json()["sections"] if s["key"] == key]
    return section["rows"]


def test_record_history_in_time_order_with_lists_collapsed(month: tuple[App, dict]) -> None:
    app, at = month
    report = app.reports.produce(
        HOST, "record-history", {"resource": "patient/p-1"}, timezone="America/Chicago"
    )
    access = _rows(report, "access")
    expected = [at[n] for n in ("normal", "night", "export", "update", "november")]
    assert [row["index"] for row in access] == expected
    assert access[0] == {
        "date": "2026-10-05",
        "time": "09:00:00 -05:00",
        "person": "n-1",
        "action": "patient.read",
        "index": at["normal"],
    }
    assert access[-1]["time"] == "09:00:00 -06:00"  # November: CST, the offset is printed
    (listed,) = _rows(report, "list_views")
    assert (listed["person"], listed["count"], listed["entries"]) == ("n-1", 1, str(at["list"]))
    (update,) = [r for r in _rows(report, "history") if r["index"] == at["update"]]
    assert (update["before"], update["after"]) == ('{"ward":"3B"}', '{"ward":"ICU"}')
    assert update["time"] == "2026-10-10T15:00:00Z"  # the data keeps UTC
    shown = app.reports.produce(
        HOST, "record-history", {"resource": "patient/p-1", "lists": "shown", "to": "2026-10"}
    )
    assert [r["index"] for r in _rows(shown, "access")] == sorted(
        [at[n] for n in ("normal", "night", "export", "list", "update")]
    )
    assert set(report.cited) == set(expected) | {at["list"]}


def test_an_unknown_resource_is_an_empty_report_said_plainly(month: tuple[App, dict]) -> None:
    app, _ = month
    report = app.reports.produce(HOST, "record-history", {"resource": "patient/nobody"})
    assert _rows(report, "access") == []
    assert "No entry in this log touched patient/nobody" in report.notes[0]
    with pytest.raises(ConfigError, match="TYPE/ID"):
        app.reports.produce(HOST, "record-history", {"resource": "patient/"})
    with pytest.raises(NotFoundError, match="the reports are record-history"):
        app.reports.produce(HOST, "no-such-report", {})
    with pytest.raises(ConfigError, match="unknown time zone"):
        app.reports.produce(HOST, "procedures", {}, timezone="Mars/Olympus")


def test_hipaa_access_counts_and_lists_exactly(month: tuple[App, dict]) -> None:
    app, at = month
    report = app.reports.produce(
        HOST, "hipaa-access", {"period": "2026-10"}, timezone="America/Chicago"
    )
    summary = dict(report.summary)
    assert summary["PHI accesses"] == 9
    assert (summary["users"], summary["patient records"], summary["units"]) == (5, 4, 5)
    assert [r["index"] for r in _rows(report, "outside_unit")] == [at["outside"], at["locum"]]
    assert _rows(report, "outside_unit")[1]["user_unit"] == "ER"  # not in the roster
    assert [r["index"] for r in _rows(report, "after_hours")] == [at["night"], at["locum"]]
    assert [r["index"] for r in _rows(report, "after_end_date")] == [at["leaver"]]
    assert _rows(report, "after_end_date")[0]["end_date"] == "2026-10-15"
    exports = _rows(report, "exports")
    assert [(r["index"], r["records"]) for r in exports] == [
        (at["export"], 40),
        (at["bulk"], 500),
        (at["d-down"], 1),
    ]
    assert summary["records exported"] == 541
    assert _rows(report, "by_user")[0] == {"person": "n-1", "accesses": 5, "records": 2}
    units = {r["unit"]: r["accesses"] for r in _rows(report, "by_unit")}
    assert units == {"ICU": 5, "3B": 1, "ER": 1, "HIM": 1, "IT": 1}
    assert at["november"] not in report.cited
    quiet = app.reports.produce(HOST, "hipaa-access", {"period": "2025-01"})
    assert dict(quiet.summary)["PHI accesses"] == 0
    assert "No PHI access in 2025-01" in quiet.notes[-1]
    with pytest.raises(ConfigError, match="not a month"):
        app.reports.produce(HOST, "hipaa-access", {"period": "2026-13"})


def test_actor_timeline_reads_escalation_then_export_in_order(month: tuple[App, dict]) -> None:
    app, at = month
    report = app.reports.produce(
        HOST, "actor-timeline", {"actor": "a-1", "from": "2026-10-21", "to": "2026-10-21"}
    )
    sequence = _rows(report, "sequence")
    assert [(r["index"], r["mark"]) for r in sequence] == [(at["grant"], "★"), (at["bulk"], "⇪")]
    (change,) = _rows(report, "privilege_changes")
    assert change["before"] == '{"roles":["admin"]}'
    assert change["after"] == '{"roles":["admin","export"]}'
    empty = app.reports.produce(HOST, "actor-timeline", {"actor": "a-1", "to": "2026-10-01"})
    assert _rows(empty, "sequence") == []
    assert "No entry by or about 'a-1'" in empty.notes[0]


def test_document_trail_and_document_verify(month: tuple[App, dict]) -> None:
    app, at = month
    report = app.reports.produce(HOST, "document-trail", {"document": "document/SOP-12"})
    trail = _rows(report, "trail")
    assert [r["kind"] for r in trail] == [
        "edit",
        "view",
        "signature",
        "edit",
        "transition",
        "download",
    ]
    assert [r["sha256"] for r in trail] == [H1, H1, H1, H2, H2, H2]
    (signature,) = _rows(report, "signatures")
    assert signature == {
        "name": "Q. Lead",
        "user": "q-1",
        "time": "2026-10-04T10:00:00Z",
        "meaning": "approval",
        "auth": "sso+mfa",
        "version": "1",
        "sha256": H1,
        "index": at["d-sign"],
    }
    versions = {r["version"]: r for r in _rows(report, "versions")}
    assert versions["1"]["approved"].startswith("Q. Lead (q-1) at 2026-10-04")
    assert versions["2"]["approved"] == ""  # in review, not approved
    assert trail[4]["before"] == '{"state":"draft"}'
    assert trail[4]["after"] == '{"state":"review"}'
    approved = app.reports.check_document(HOST, "document/SOP-12", H1)
    assert approved.approved
    assert [v.number for v in approved.matches] == ["1"]
    assert app.reports.check_document(HOST, "document/SOP-12", H1, "2").matches == []
    draft = app.reports.check_document(HOST, "SOP-12", H2)
    assert draft.matches
    assert not draft.approved


def test_change_management_over_the_whole_population(month: tuple[App, dict]) -> None:
    app, at = month
    report = app.reports.produce(
        HOST,
        "change-management",
        {
            "period": "2026-10",
            "changes": "action:deploy.*",
            "tickets": TICKETS,
            "tickets_name": "jira.csv",
        },
    )
    summary = dict(report.summary)
    assert (summary["changes"], summary["with an approved ticket in time"]) == (6, 2)
    assert summary["share"] == "33.3%"
    problems = [(r["index"], r["problem"]) for r in _rows(report, "exceptions")]
    assert problems == [
        (at["unapproved"], "ticket not approved (In Progress)"),
        (at["late"], "approved after the change"),
        (at["self"], "approver made the change"),
        (at["none"], "no ticket"),
    ]
    linked = {r["index"]: r["ticket"] for r in _rows(report, "changes")}
    assert linked[at["by-ref"]] == "CHG-5"  # by the ticket's change reference
    assert at["elsewhere"] not in linked


BAD_TICKETS = [
    ("key,summary\nCHG-1,x\n", "no column for status"),
    ("id,status,approved_at\nCHG-1,Approved,last tuesday\n", "not a date and time"),
    ("", "the file is empty"),
    ('{"tickets": 5}', "expected a JSON array"),
    ("[{", "not JSON"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TICKETS)
def test_a_bad_ticket_file_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_tickets(text, "t.csv")


def test_ticket_files_in_each_shape() -> None:
    generic = parse_tickets(
        "id,status,approver,approved_at,change_ref\nC-1,approved,m,2026-10-01,\n"
    )
    assert generic["C-1"].approved
    assert generic["C-1"].approved_at == "2026-10-01T00:00:00.000000Z"
    servicenow = parse_tickets(
        "number\tstate\tapproval\tapproval_set\nCHG0001\tClosed\tapproved\t2026-10-01 10:00:00\n"
    )
    assert servicenow["CHG0001"].status == "approved"  # approval, not the state, decides
    as_json = parse_tickets('[{"key": "J-1", "status": "Done", "approvers": ["a", "b"]}]')
    assert as_json["J-1"].approver == "a, b"


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_ticket_text_parses_or_is_refused_plainly(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_tickets(text)


def test_procedures_say_what_the_configuration_enforces(month: tuple[App, dict]) -> None:
    app, _ = month
    app.principals.create(HOST, "st-marys-auditor", "auditor", "st-marys")
    report = app.reports.produce(HOST, "procedures", {})
    roles = {r["permission"]: r["roles"] for r in _rows(report, "roles")}
    assert roles["read"] == "auditor, host, security"
    assert roles["erase"] == "host, privacy"
    holders = _rows(report, "principals")
    assert {
        "name": "st-marys-auditor",
        "role": "auditor",
        "tenant": "st-marys",
        "state": "active",
    } in holders
    captured = {r["namespace"]: r["entries"] for r in _rows(report, "captured")}
    assert captured["deploy.*"] == 6
    assert captured["patient.*"] == 7
    rules = {r["rule"] for r in _rows(report, "detection")}
    assert "access_outside_unit" in rules  # the built-in pack is in force by default
    assert "kept indefinitely" in _rows(report, "retention")[0]["text"]


def test_every_format_renders_and_csv_neutralises_formulas(month: tuple[App, dict]) -> None:
    app, _ = month
    hostile = ev(
        90,
        "2026-10-15T12:00:00Z",
        "=cmd|' /C calc'!A0",
        "patient.read",
        resource=patient("p-1", "ICU"),
    )
    app.entries.append(HOST, [orjson.dumps(hostile)])
    report = app.reports.produce(
        HOST, "record-history", {"resource": "patient/p-1"}, timezone="Europe/Berlin"
    )
    html = app.reports.render(report, "html").decode()
    assert "<script" not in html
    assert "http://" not in html
    assert "https://" not in html
    assert "2026-10-05 16:00:00 +02:00" in html  # Berlin's offset, printed
    assert "=cmd|&#39; /C calc&#39;!A0" in html  # escaped, not markup
    rows = list(csv.reader(io.StringIO(app.reports.render(report, "csv").decode())))
    assert rows[0][:3] == ["section", "date", "time"]
    assert [c for row in rows for c in row if "calc" in c][:1] == ["'=cmd|' /C calc'!A0"]
    assert app.reports.render(report, "pdf").startswith(b"%PDF-")
    data = orjson.loads(app.reports.render(report, "json"))
    assert data["timezone"] == "Europe/Berlin"
    assert data["report"] == "record-history"


def test_producing_a_report_is_an_entry_and_needs_the_role(month: tuple[App, dict]) -> None:
    app, _ = month
    before = app.entries.size()
    app.reports.produce(HOST, "actor-timeline", {"actor": "n-1"})
    (record,) = app.entries.search(HOST, _filter(action="report.produce", after=before - 1))
    event = record.entry["event"]
    assert event["resource"]["id"] == "actor-timeline"
    assert event["context"]["labels"]["actor"] == "n-1"
    writer = Caller(app.principals.create(HOST, "ehr", "writer")[0])
    with pytest.raises(PermissionDeniedError, match="role writer may not"):
        app.reports.produce(writer, "procedures", {})


def test_a_tenant_sees_its_own_entries_in_every_report(tmp_path: Path) -> None:
    with App.init(tmp_path / "data", origin="test.example/tenants") as app:
        events = [
            ev(
                1,
                "2026-10-05T10:00:00Z",
                "u-1",
                "patient.read",
                resource=patient("p-1", tenant="acme"),
            ),
            ev(
                2,
                "2026-10-05T11:00:00Z",
                "u-1",
                "patient.read",
                resource=patient("p-1", tenant="globex"),
            ),
        ]
        app.entries.append(HOST, [orjson.dumps(e) for e in events])
        acme = Caller(app.principals.create(HOST, "acme", "auditor", "acme")[0])
        report = app.reports.produce(acme, "record-history", {"resource": "patient/p-1"})
        assert len(_rows(report, "access")) == 1
        hipaa = app.reports.produce(acme, "hipaa-access", {"period": "2026-10"})
        assert dict(hipaa.summary)["PHI accesses"] == 1


def _filter(action: str, after: int) -> Any:
    from trailseal.app import search_filter  # noqa: PLC0415

    return search_filter(action=action, after_index=after)


def test_report_commands_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    lines = b"\n".join(orjson.dumps(e) for e in E.values()) + b"\n"
    run_cli("append", "-", data=data, stdin=lines, check=True)
    html = tmp_path / "oct.html"
    done = run_cli(
        "report",
        "hipaa-access",
        "--period",
        "2026-10",
        "--format",
        "html",
        "-o",
        html,
        "--bundle",
        tmp_path / "oct.zip",
        "--tz",
        "America/Chicago",
        data=data,
    )
    assert done.returncode == 0, done.stderr
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert "PHI accesses: 9" in done.stderr.decode()
    vkey = run_cli("pubkey", data=data, check=True).stdout.decode().strip()
    checked = run_cli("verify-bundle", tmp_path / "oct.zip", "--vkey", vkey)
    assert checked.returncode == 0, checked.stderr
    assert orjson.loads(checked.stdout)["verified"] is True
    empty = run_cli("report", "record-history", "patient/none", data=data)
    assert empty.returncode == 0
    assert "No entry in this log touched" in empty.stderr.decode()
    bad = run_cli(
        "report",
        "change-management",
        "--period",
        "2026-10",
        "--changes",
        "action:(",
        "--tickets",
        html,
        data=data,
    )
    assert bad.returncode == 2
    assert "bad query" in bad.stderr.decode()
    missing = tmp_path / "t.csv"
    missing.write_text("key,summary\nCHG-1,x\n")
    refused = run_cli(
        "report",
        "change-management",
        "--period",
        "2026-10",
        "--changes",
        "action:deploy.*",
        "--tickets",
        missing,
        data=data,
    )
    assert refused.returncode == 1
    assert "no column for status" in refused.stderr.decode()
    assert "Traceback" not in refused.stderr.decode() + bad.stderr.decode()
    document = tmp_path / "sop.pdf"
    document.write_bytes(b"not the approved file")
    unknown = run_cli("document", "verify", document, "--doc", "document/SOP-12", data=data)
    assert unknown.returncode == 3
    assert "is no recorded version" in unknown.stderr.decode()


def test_reports_over_the_api(server: Server) -> None:
    writer = server.client(server.principal("w", "writer"))
    assert writer.post("/v1/events", json=list(E.values())).status_code == 201
    auditor = server.client(server.principal("a", "auditor"))
    answer = auditor.post("/v1/reports/record-history", json={"resource": "patient/p-1"})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["sections"][0]["rows"]) == 5
    html = auditor.post("/v1/reports/hipaa-access", json={"period": "2026-10", "format": "html"})
    assert html.headers["content-type"].startswith("text/html")
    bundle = auditor.post("/v1/reports/actor-timeline", json={"actor": "a-1", "format": "bundle"})
    assert bundle.headers["content-type"] == "application/zip"
    assert bundle.content[:2] == b"PK"
    unknown = auditor.post("/v1/reports/nope", json={})
    assert unknown.status_code == 422
    extra = auditor.post("/v1/reports/procedures", json={"colour": "red"})
    assert extra.status_code == 422
    bad = auditor.post(
        "/v1/reports/change-management",
        json={"period": "2026-10", "changes": "actr:x", "tickets": TICKETS},
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["pointer"] == "/changes"


SCHEDULES = """
folder: out
schedules:
  - name: monthly-hipaa
    report: hipaa-access
    cron: "0 6 1 * *"
    timezone: America/Chicago
    params: {period: previous-month}
    formats: [html, json]
    bundle: true
"""


def test_scheduled_reports_are_produced_once_written_and_announced(tmp_path: Path) -> None:
    from datetime import UTC, datetime  # noqa: PLC0415

    data = tmp_path / "data"
    with App.init(data, origin="test.example/schedules") as app:
        app.entries.append(HOST, [orjson.dumps(E[name]) for name in ("normal", "outside")])
        (data / "reports.yaml").write_text(SCHEDULES)
        (data / "detection.yaml").write_text(
            "sinks: [{name: file, type: jsonl, path: announced.jsonl}]\n"
        )
        first = app.reports.run_schedules(datetime(2026, 11, 1, 5, 0, tzinfo=UTC))
        assert first == []  # a new schedule starts now: nothing before it is produced
        due = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # 06:00 in Chicago, now CST
        (run,) = app.reports.run_schedules(due)
        assert run.failed_sinks == []
        names = sorted(Path(f).name for f in run.files)
        assert names == [f"20261101T1200Z-hipaa-access.{x}" for x in ("html", "json", "zip")]
        produced = orjson.loads((data / "out" / "monthly-hipaa" / names[1]).read_bytes())
        assert produced["parameters"]["period"] == "2026-10"
        assert produced["summary"]["PHI accesses"] == 2
        bundle = (data / "out" / "monthly-hipaa" / names[2]).read_bytes()
        assert verify_bundle(bundle, app.verifier).entries == len(produced["cited"])
        assert app.reports.run_schedules(datetime(2026, 11, 1, 12, 30, tzinfo=UTC)) == []
        (announced,) = [
            orjson.loads(x) for x in (data / "announced.jsonl").read_bytes().splitlines()
        ]
        assert announced["rule"] == "report.scheduled"
        assert announced["files"] == run.files
        (record,) = app.entries.search(HOST, _filter(action="report.produce", after=-1))
        assert record.entry["event"]["actor"]["id"] == "host:scheduler"
        assert record.entry["event"]["context"]["labels"]["schedule"] == "monthly-hipaa"
        (data / "reports.yaml").write_text(SCHEDULES.replace("hipaa-access", "hipaa"))
        with pytest.raises(ConfigError, match="no report 'hipaa'; the reports are"):
            app.reports.run_schedules(due)
        (data / "reports.yaml").write_text(SCHEDULES.replace("0 6 1 * *", "every month"))
        with pytest.raises(ConfigError, match="not a cron expression"):
            app.reports.run_schedules(due)


def test_a_damaged_schedule_state_is_refused_plainly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with App.init(data, origin="test.example/state") as app:
        (data / "reports.yaml").write_text(SCHEDULES)
        (data / "reports.state.json").write_text('{"monthly-hipaa": "last tuesday"}')
        with pytest.raises(ConfigError, match="which is no time"):
            app.reports.run_schedules()
