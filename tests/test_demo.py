"""The demo hospital: `trailseal demo` end to end, and the month its traffic simulates.

The end-to-end test runs the real command in a subprocess: a real trailseal
service, the EHR on a real uvicorn server, the real client and outbox. It
checks what reached the log through each capture path.
"""

from __future__ import annotations

import ipaddress
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from conftest import run_cli
from trailseal.ledger import Ledger, SearchFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from ehr.hospital import TIMEZONE, UNITS, patients, staff
from ehr.traffic import Month

US = [ipaddress.ip_network(n) for n in ("198.51.100.0/24", "192.0.2.0/24")]


def _events(root: Path, **where: object) -> list[dict]:
    """Matching events, each with its detail."""
    with Ledger.open(root / "log") as ledger:
        found = ledger.search(SearchFilter(**where, limit=100_000))  # type: ignore[arg-type]
    return [view.entry["event"] | {"detail": view.detail} for view in found]


def test_the_demo_tells_where_to_look_and_the_log_verifies(demo_run: tuple[Path, str]) -> None:
    root, out = demo_run
    assert "every hash, signature and checkpoint verifies" in out
    assert f"trailseal verify --data {root / 'log'}" in out
    for incident in ("outside-unit", "many-records", "escalation-then-export", "after-hours"):
        assert incident in out
    assert run_cli("verify", data=root / "log").returncode == 0


EXPECTED_ALERTS = {
    ("access_outside_unit", "n-3B-2"),
    ("many_records_one_shift", "p-4A-2"),
    ("bulk_export", "a-2"),
    ("role_change_then_bulk_export", "a-2"),
    ("off_shift_login_new_country", "n-ICU-2"),
}


def test_the_month_raises_exactly_the_planted_incidents(demo_run: tuple[Path, str]) -> None:
    """Each incident raises its alert (the export of 500 records also raises bulk_export,
    as any bulk export does); the month's benign traffic raises none: no false positives."""
    root, out = demo_run
    listed = orjson.loads(run_cli("alerts", "list", "--json", data=root / "log", check=True).stdout)
    raised = {(a["rule"], a["group"].split(",")[0].removeprefix("actor.id=")) for a in listed}
    assert raised == EXPECTED_ALERTS
    assert len(listed) == len(EXPECTED_ALERTS)  # none twice
    assert "The built-in detection rules raised 5 alerts" in out
    with Ledger.open(root / "log") as ledger:
        planted = {i.actor: i for i in Month(staff(), patients()).incidents}
        for alert in listed:  # the evidence is the incident's own entries
            actor = alert["group"].split(",")[0].removeprefix("actor.id=")
            for index in alert["evidence"]:
                assert ledger.get(index).entry["event"]["actor"]["id"] == actor
                moment = ledger.get(index).entry["event"]["time"]
                assert planted[actor].start.strftime("%Y-%m-%d") <= moment[:10]
    assert len((root / "log" / "alerts.jsonl").read_text().splitlines()) == 5


def test_reads_carry_route_actor_from_the_token_and_proxy_address(
    demo_run: tuple[Path, str],
) -> None:
    root, _ = demo_run
    reads = _events(root, action="patient.read")
    assert len(reads) > 100
    read = reads[0]
    assert read["request"]["path"] == "/patients/{patient_id}"  # the template, not the path
    assert read["actor"]["roles"]  # the token was checked inside the handler
    assert read["actor"]["session_id"]
    assert read["resource"]["unit"] in UNITS
    assert any(ipaddress.ip_address(read["source"]["ip"]) in net for net in US)  # X-Forwarded-For
    assert read["time"].startswith("2026-10")  # the simulated month's clock


def test_row_changes_links_and_role_changes_reach_the_log(demo_run: tuple[Path, str]) -> None:
    root, _ = demo_run
    notes = [e for e in _events(root, action="record.create") if e["resource"]["type"] == "notes"]
    assert notes
    assert notes[0]["detail"]["after"]["text"] == "[dropped]"  # sensitive column
    assert notes[0]["context"]["labels"]["capture"] == "unit-of-work"
    links = _events(root, resource_type="staff_roles")
    assert {e["action"] for e in links} == {"record.create", "record.delete"}  # granted, revoked
    grants = _events(root, action="iam.role.assign")
    assert any(
        g["detail"]["after"]["roles"] == ["admin", "records-export"] and g["actor"]["id"] == "a-2"
        for g in grants
    )
    exports = _events(root, action="export.create", actor="a-2")
    assert [e["resource"]["count"] for e in exports] == [500]


# -- the month, without running it ---------------------------------------------------


@pytest.fixture(scope="module")
def month() -> Month:
    return Month(staff(), patients())


def test_benign_traffic_keeps_the_hospital_s_rules(month: Month) -> None:
    """The rules detection relies on; only the planted incidents break them."""
    people = {p.id: p for p in staff()}
    unit_of = {c.id: c.unit for c in patients()}
    local = ZoneInfo(TIMEZONE)
    planted = {(i.actor, i.start.date()) for i in month.incidents}
    seen: dict[tuple[str, object], set[str]] = defaultdict(set)
    for step in month:
        person = people[step.actor]
        if (step.actor, step.when.date()) in planted:
            continue
        if step.verb == "read":
            assert unit_of[step.args["patient"]] == person.unit, step
            seen[(step.actor, step.when.astimezone(local).date())].add(step.args["patient"])
        if step.verb == "export":
            assert step.args["limit"] <= 20, step
        if step.verb == "grant":
            assert step.args["role"] == "charge-nurse", step
        if step.verb == "login":
            assert any(ipaddress.ip_address(step.ip) in net for net in US), step
            start = step.when.astimezone(local)
            shift = start.replace(hour=int(person.shift_start[:2]), minute=0)
            assert abs(start - shift) <= timedelta(minutes=30), step
    assert max(len(charts) for charts in seen.values()) <= 30


def test_each_incident_is_planted_once(month: Month) -> None:
    names = [i.name for i in month.incidents]
    assert names == [
        "outside-unit",
        "many-records",
        "escalation-then-export",
        "after-hours-new-country",
    ]
    steps = list(month)
    assert len(steps) > 5000  # a month of thousands of staff actions
    many = [s for s in steps if s.actor == "p-4A-2" and s.verb == "read"]
    assert (
        max(sum(1 for s in many if s.when.date() == d) for d in {s.when.date() for s in many}) == 80
    )
    assert Month(staff(), patients()).steps == steps  # the same seed, the same month


def test_the_demo_month_in_the_reports(demo_run: tuple[Path, str], tmp_path: Path) -> None:
    """The planted incidents, as the monthly HIPAA report and the timeline show them, and
    the bundle the demo tells how to make verifies offline."""
    root, out = demo_run
    log = root / "log"
    assert "trailseal report hipaa-access --period 2026-10" in out
    assert "trailseal verify-bundle october.zip" in out
    bundle = tmp_path / "october.zip"
    made = run_cli(
        "report",
        "hipaa-access",
        "--period",
        "2026-10",
        "--tz",
        "America/Chicago",
        "--bundle",
        bundle,
        "--format",
        "json",
        data=log,
    )
    assert made.returncode == 0, made.stderr
    report = orjson.loads(made.stdout)
    sections = {s["key"]: s["rows"] for s in report["sections"]}
    outside = sections["outside_unit"]
    assert {row["person"] for row in outside} == {"n-3B-2"}
    assert len({row["record"] for row in outside}) == 6  # six ICU patients' records
    assert {row["record_unit"] for row in outside} == {"ICU"}
    records = {row["record"] for row in sections["by_patient"]}
    assert "patient" not in records  # a list of patients is no one patient's access
    assert "(lists and searches: no single record)" in records
    (bulk,) = [row for row in sections["exports"] if row["person"] == "a-2"]
    assert bulk["records"] == 500
    assert {row["person"] for row in sections["after_hours"]} == {"n-ICU-2"}
    rules = {row["rule"] for row in sections["alerts"]}
    assert rules == {rule for rule, _ in EXPECTED_ALERTS}
    assert report["summary"]["PHI accesses"] == sum(
        1
        for e in _events(root, since="2026-10-01", until="2026-11-01")
        if (e.get("resource") or {}).get("type") in ("patient", "patients", "note", "notes")
    )
    vkey = run_cli("pubkey", data=log, check=True).stdout.decode().strip()
    assert run_cli("verify-bundle", bundle, "--vkey", vkey).returncode == 0
    timeline = run_cli(
        "report",
        "actor-timeline",
        "a-2",
        "--from",
        "2026-10-21",
        "--to",
        "2026-10-21",
        data=log,
        check=True,
    )
    sequence = orjson.loads(timeline.stdout)["sections"][0]["rows"]
    actions = [row["action"] for row in sequence]
    grant, export = actions.index("iam.role.assign"), actions.index("export.create")
    assert grant < export  # the escalation reads before the export
    assert "★" in sequence[grant]["mark"]
    assert "⇪" in sequence[export]["mark"]
    # One patient the 3B nurse opened: her access is in the patient's history.
    record = next(row["record"] for row in outside)
    history = run_cli("report", "record-history", record, data=log, check=True)
    people = {row["person"] for row in orjson.loads(history.stdout)["sections"][0]["rows"]}
    assert "n-3B-2" in people
    # The month's role changes against a ticket file that approves none of them.
    tickets = tmp_path / "tickets.csv"
    tickets.write_text("id,status,approver,approved_at\nCHG-1,approved,cmo,2026-10-01\n")
    changes = run_cli(
        "report",
        "change-management",
        "--period",
        "2026-10",
        "--changes",
        "action:iam.*",
        "--tickets",
        tickets,
        data=log,
        check=True,
    )
    summary = orjson.loads(changes.stdout)["summary"]
    roles = _events(root, action="iam.*", since="2026-10-01", until="2026-11-01")
    assert summary["changes"] == len(roles) > 0
    assert summary["no ticket"] == len(roles)  # the demo's EHR records no tickets
    # No documents in a hospital's EHR: an empty trail, said plainly.
    trail = run_cli("report", "document-trail", "document/SOP-1", data=log, check=True)
    assert "No entry in this log names the document" in trail.stderr.decode()
    procedure = run_cli("report", "procedures", data=log, check=True)
    sections = {s["key"]: s["rows"] for s in orjson.loads(procedure.stdout)["sections"]}
    assert {row["name"] for row in sections["sinks"]} == {"file"}
    assert any(row["rule"] == "access_outside_unit" for row in sections["detection"])
