"""The detection engine on real logs: each built-in rule with events that must and must not
raise it, restarts and crashes mid-stream, integrity and silence, alerts in the log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count, groupby
from pathlib import Path

import orjson
import pytest

from conftest import run_cli
from trailseal.access import LOG_SUBMITTER, reserved
from trailseal.detect.config import DetectionConfig, Silence
from trailseal.detect.engine import Engine
from trailseal.detect.rules import BUILTIN, load
from trailseal.detect.store import DetectionStore
from trailseal.events import event_from_mapping
from trailseal.ledger import Ledger, SearchFilter

ROSTER = """user_id,unit,shift_start,shift_end,timezone
n1,3B,07:00,19:00,UTC
n2,ICU,19:00,07:00,UTC
a1,IT,08:00,17:00,UTC
"""
GEO = "network,country\n198.51.100.0/24,US\n203.0.113.0/24,RO\n"
DAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
_ids = count()


def at(hours: float) -> str:
    return (DAY + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(who: str, action: str, hours: float, **parts: object) -> dict:
    return {
        "id": f"e-{next(_ids)}",
        "time": at(hours),
        "actor": {"id": who, **parts.pop("actor", {})},  # type: ignore[dict-item]
        "action": action,
        **parts,
    }


def read(actor: str, patient: str, unit: str | None, hours: float) -> dict:
    resource = {"type": "patient", "id": patient} | ({"unit": unit} if unit else {})
    return event(actor, "patient.read", hours, resource=resource)


def login(actor: str, hours: float, ip: str = "198.51.100.7") -> dict:
    return event(actor, "user.login", hours, outcome={"result": "success"}, source={"ip": ip})


@pytest.fixture
def log(tmp_path: Path) -> Iterator[tuple[Ledger, DetectionConfig, Path]]:
    (tmp_path / "roster.csv").write_text(ROSTER)
    (tmp_path / "geo.csv").write_text(GEO)
    config = DetectionConfig(
        roster=tmp_path / "roster.csv",
        geography=tmp_path / "geo.csv",
        silence=[Silence("ehr", 15 * 60)],
    )
    with Ledger.init(tmp_path / "data", origin="test.example/log") as ledger:
        yield ledger, config, tmp_path / "data" / "detection.db"


def append_as_written(ledger: Ledger, events: list[dict]) -> None:
    """Append fixtures as they reach a real log: the log's own namespaces (audit.*, …) as
    the log writes them, everything else as an application would, in order."""
    for own, group in groupby(events, key=lambda e: reserved(e["action"])):
        ledger.append([event_from_mapping(e) for e in group], LOG_SUBMITTER if own else None)


def run(log: tuple, events: list[dict], now: float | None = None) -> dict[str, list]:
    """Append the events, run the built-in pack over the log; alerts by rule."""
    ledger, config, db = log
    append_as_written(ledger, events)
    store = DetectionStore(db)
    engine = Engine(ledger, store, load([BUILTIN]), config)
    engine.run_once()
    if now is not None:
        engine.step(now=now)
    alerts: dict[str, list] = {}
    for alert in store.alerts():
        alerts.setdefault(alert.rule, []).append(alert)
    store.close()
    return alerts


POSITIVE = {
    "bulk_export": [event("c1", "export.create", 10, resource={"type": "export", "count": 500})],
    "access_outside_unit": [read("n1", "p-9", "ICU", 9)],
    "many_records_one_shift": [read("n1", f"p-{i}", "3B", 7 + i / 10) for i in range(51)],
    "off_shift_login_new_country": [login("n1", 7.1), login("n1", 26.6, ip="203.0.113.9")],
    "mass_deletion": [
        event("a1", "record.delete", 10 + i / 600, resource={"type": "notes", "id": str(i)})
        for i in range(50)
    ],
    "privileged_permission_change": [
        event(
            "a1",
            "iam.role.assign",
            9,
            resource={"type": "user", "id": "u7"},
            detail={"role": "admin"},
        ),
    ],
    "role_change_then_bulk_export": [
        event("a1", "iam.role.assign", 9, detail={"role": "records-export"}),
        event("a1", "export.create", 9.4, resource={"type": "export", "count": 300}),
    ],
    "audit_read_without_auditor": [
        event("svc", "audit.read", 9, actor={"roles": ["writer"]}, resource={"type": "entry"})
    ],
}

NEGATIVE = {
    "bulk_export": [event("c1", "export.create", 10, resource={"type": "export", "count": 20})],
    "access_outside_unit": [read("n1", "p-9", "3B", 9), read("n1", "p-8", None, 9.1)],
    "many_records_one_shift": [read("n1", f"p-{i % 30}", "3B", 7 + i / 10) for i in range(60)]
    + [read("n1", f"q-{i}", "3B", 7 + i * 0.6) for i in range(20)],
    "off_shift_login_new_country": [
        login("n1", 7.1),
        login("n1", 26.6),  # off shift, but from a country seen before
        login("n1", 31.0, ip="203.0.113.9"),  # a new country, but on shift
        login("n2", 3.0, ip="203.0.113.9"),  # the first login ever: nothing to compare with
    ],
    "mass_deletion": [
        event("a1", "record.delete", 10 + i / 40, resource={"type": "notes", "id": str(i)})
        for i in range(50)  # fifty, but over more than an hour
    ],
    "privileged_permission_change": [
        event("a1", "iam.role.assign", 9, detail={"role": "nurse"}),
        event(
            "a1",
            "iam.apikey.create",
            9,
            resource={"type": "apikey", "id": "k"},
            detail={"owner": "a1"},
        ),
    ],
    "role_change_then_bulk_export": [
        event("a1", "export.create", 8, resource={"type": "export", "count": 300}),
        event("a1", "iam.role.assign", 9, detail={"role": "nurse"}),
        event("a1", "export.create", 10.5, resource={"type": "export", "count": 300}),
        event("a2", "iam.role.assign", 12, detail={"role": "nurse"}),
        event("a3", "export.create", 12.2, resource={"type": "export", "count": 300}),
    ],
    "audit_read_without_auditor": [
        event("aud", "audit.read", 9, actor={"roles": ["auditor"]}),
        event("svc", "audit.started", 9, actor={"roles": ["writer"]}),
    ],
}


@pytest.mark.parametrize("rule", sorted(POSITIVE))
def test_each_rule_fires_on_its_positive_fixture(log: tuple, rule: str) -> None:
    alerts = run(log, POSITIVE[rule])
    assert len(alerts.get(rule, [])) == 1, alerts


@pytest.mark.parametrize("rule", sorted(NEGATIVE))
def test_each_rule_stays_quiet_on_its_negative_fixture(log: tuple, rule: str) -> None:
    alerts = run(log, NEGATIVE[rule])
    assert rule not in alerts, alerts


def test_more_privileged_changes(log: tuple) -> None:
    alerts = run(
        log,
        [
            event(
                "a1",
                "iam.apikey.create",
                9,
                resource={"type": "apikey", "id": "k"},
                detail={"owner": "u5"},
            ),
            event("a2", "iam.permission.override", 9, resource={"type": "user", "id": "u5"}),
        ],
    )
    assert sorted(a.group for a in alerts["privileged_permission_change"]) == [
        "actor.id=a1",
        "actor.id=a2",
    ]


def test_alerts_are_deduplicated_within_their_window(log: tuple) -> None:
    exports = [
        event("c1", "export.create", h, resource={"type": "export", "count": 500})
        for h in (9, 9.5, 12)
    ]
    (first, second) = run(log, exports)["bulk_export"]
    assert len(first.evidence) == 2  # 09:00 and 09:30 merged (dedup 1h)
    assert len(second.evidence) == 1  # 12:00 is a new alert


def test_alerts_are_entries_in_the_log(log: tuple) -> None:
    ledger = log[0]
    run(log, POSITIVE["bulk_export"])
    (raised,) = ledger.search(SearchFilter(action="alert.raised"))
    assert raised.detail["rule"] == "bulk_export"
    assert raised.detail["evidence"] == [0]
    ledger.verify()


def test_silence_of_a_source_raises_once(log: tuple) -> None:
    ledger = log[0]
    ledger.append([event_from_mapping(event("app", "patient.read", 9, source={"service": "ehr"}))])
    received = datetime.fromisoformat(ledger.get(0).entry["received_at"]).timestamp()
    assert "source_silent" not in run(log, [], now=received + 10 * 60)
    assert len(run(log, [], now=received + 20 * 60)["source_silent"]) == 1
    assert len(run(log, [], now=received + 40 * 60)["source_silent"]) == 1  # still one


def _tamper(ledger: Ledger, statement: str, params: tuple = ()) -> None:
    """Change the log behind its back, as someone with the database file could."""
    db = sqlite3.connect(ledger.settings.db_path)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute(statement, params)
    db.commit()
    db.close()


def test_a_tampered_entry_raises_an_integrity_alert(log: tuple) -> None:
    ledger, _, _ = log
    ledger.append([event_from_mapping(read("n1", f"p-{i}", "3B", 8)) for i in range(10)])
    _tamper(
        ledger,
        "UPDATE entries SET entry = "
        "CAST(replace(CAST(entry AS TEXT), 'p-4', 'p-X') AS BLOB) WHERE idx = 4",
    )
    (alert,) = run(log, [])["log_integrity_failure"]
    assert alert.severity == "critical"
    assert alert.evidence == [4]


# -- restarts ----------------------------------------------------------------------


def _scenario() -> list[dict]:
    """Every positive fixture, time-shifted into one stream with benign noise between."""
    stream: list[dict] = []
    for n, rule in enumerate(sorted(POSITIVE)):
        for e in POSITIVE[rule]:
            shifted = dict(
                e,
                id=f"{rule}-{e['id']}",
                time=at(48 * n + (datetime.fromisoformat(e["time"]) - DAY).total_seconds() / 3600),
            )
            stream.append(shifted)
        stream += [read("n1", f"p-{i % 5}", "3B", 48 * n + 8 + i / 100) for i in range(40)]
    return stream


def _alert_set(db: Path) -> list[tuple]:
    store = DetectionStore(db)
    found = sorted((a.rule, a.group, tuple(a.evidence)) for a in store.alerts())
    store.close()
    return found


def test_restarts_and_crashes_neither_lose_nor_repeat_alerts(tmp_path: Path, log: tuple) -> None:
    ledger, config, db = log
    append_as_written(ledger, _scenario())
    pack = load([BUILTIN])
    reference = tmp_path / "reference.db"
    Engine(ledger, DetectionStore(reference), pack, config).run_once()
    expected = _alert_set(reference)
    assert {rule for rule, _, _ in expected} == set(POSITIVE)  # and the export a sequence ends in

    crashed: set[int] = set()
    while True:  # a new engine (a restart) for every small batch, and a crash in some
        store = DetectionStore(db)
        engine = Engine(ledger, store, pack, config)
        if engine.cursor % 3 == 1 and engine.cursor not in crashed:
            original = store.put_state

            def crash(key: str, value: object, original=original) -> None:
                if key == "correlations":
                    raise RuntimeError("power cut")
                original(key, value)

            store.put_state = crash  # type: ignore[method-assign]
            before = engine.cursor
            with pytest.raises(RuntimeError, match="power cut"):
                engine.step(limit=37)
            assert engine.cursor == before  # what the engine holds rolled back with the batch
            crashed.add(before)
            store.close()
            continue
        done = engine.step(limit=37)
        store.close()
        if not done:
            break
    assert len(crashed) > 3
    assert _alert_set(db) == expected
    store = DetectionStore(db)
    mine = f"alert:{store.get_state('instance')}:"
    store.close()
    raised = ledger.search(SearchFilter(action="alert.raised", limit=100_000))
    ids = [e.entry["event"]["id"] for e in raised if e.entry["event"]["id"].startswith(mine)]
    assert len(ids) == len(expected)  # each alert written into the log once


# -- the CLI --------------------------------------------------------------------------


def test_watch_ack_and_resolve_from_the_command_line(log: tuple) -> None:
    ledger, _, _ = log
    ledger.append([event_from_mapping(e) for e in POSITIVE["bulk_export"]])
    data = ledger.settings.data_dir
    ledger.close()
    run_cli("watch", "--once", data=data, check=True)
    listed = orjson.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    (alert,) = listed
    assert {"id", "rule", "title", "severity", "group", "evidence", "status"} <= set(alert)
    assert (alert["rule"], alert["evidence"], alert["status"]) == ("bulk_export", [0], "open")
    run_cli("alerts", "ack", str(alert["id"]), "--note", "looking", data=data, check=True)
    run_cli(
        "alerts",
        "resolve",
        str(alert["id"]),
        "--reason",
        "approved by SEC-1",
        data=data,
        check=True,
    )
    again = orjson.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    assert again[0]["status"] == "resolved"
    assert again[0]["reason"] == "approved by SEC-1"
    with Ledger.open(data) as reopened:
        actions = [
            e.entry["event"]["action"] for e in reopened.search(SearchFilter(action="alert.*"))
        ]
    # every listing of the alerts is recorded too (alert.read), as the API's are
    changes = [action for action in actions if action != "alert.read"]
    assert changes == ["alert.raised", "alert.acknowledged", "alert.resolved"]
    assert actions.count("alert.read") == 2
    missing = run_cli("alerts", "resolve", "99", "--reason", "x", data=data)
    assert missing.returncode == 1
    assert b"no alert 99" in missing.stderr


def test_watch_from_an_index_back_tests_without_duplicating(log: tuple) -> None:
    ledger, _, _ = log
    ledger.append([event_from_mapping(e) for e in POSITIVE["bulk_export"]])
    data = ledger.settings.data_dir
    ledger.close()
    run_cli("watch", "--once", data=data, check=True)
    run_cli("watch", "--once", "--from", "0", data=data, check=True)
    listed = orjson.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    assert len(listed) == 1


def test_a_killed_watch_process_resumes_without_losing_or_repeating(log: tuple) -> None:
    """`trailseal watch` as a real process, SIGKILLed mid-stream while the log grows, then
    restarted: the alerts are those of one uninterrupted pass, each in the log once."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    from trailseal.testing import sample_events  # noqa: PLC0415

    ledger, config, db = log
    data = ledger.settings.data_dir
    (data / "detection.yaml").write_text(
        f"context: {{roster: {config.roster}, geography: {config.geography}}}\n"
    )
    filler = [e | {"action": "record.update"} for e in sample_events(30_000, seed=3)]
    stream = _scenario()
    append_as_written(ledger, stream[:100])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAILSEAL_")}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "trailseal", "watch", "--data", str(data)],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        for start in range(0, len(filler), 2_000):  # the log grows while it is watched
            ledger.append([event_from_mapping(e) for e in filler[start : start + 2_000]])
        append_as_written(ledger, stream[100:])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            cursor = DetectionStore(db).get_state("cursor", 0) if db.exists() else 0
            if cursor > 4_000:
                break
            time.sleep(0.01)
        os.kill(watcher.pid, signal.SIGKILL)
    finally:
        watcher.wait(timeout=10)
    killed_at = DetectionStore(db).get_state("cursor", 0)
    assert 0 < killed_at < ledger.size()  # it died with work left to do
    run_cli("watch", "--once", data=data, check=True)

    reference = data.parent / "reference.db"
    engine = Engine(  # the reference must not write to the log
        ledger, DetectionStore(reference), load([BUILTIN]), config, record_alerts=False
    )
    engine.run_once()
    assert _alert_set(db) == _alert_set(reference)
    instance = DetectionStore(db).get_state("instance")
    raised = [
        e.entry["event"]["id"]
        for e in ledger.search(SearchFilter(action="alert.raised", limit=100_000))
        if e.entry["event"]["id"].startswith(f"alert:{instance}:")
    ]
    assert len(raised) == len(set(raised)) == len(_alert_set(db))


def test_a_forged_checkpoint_raises_an_integrity_alert(log: tuple) -> None:
    ledger, _, _ = log
    assert "log_integrity_failure" not in run(log, [read("n1", "p-1", "3B", 8)])
    ledger.append([event_from_mapping(read("n1", "p-2", "3B", 8.1))])
    db = sqlite3.connect(ledger.settings.db_path)
    size, note = db.execute(
        "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
    ).fetchone()
    db.close()
    lines = note.split("\n")
    lines[2] = "A" * 43 + "="  # another root, under the same signature
    _tamper(ledger, "UPDATE checkpoints SET note = ? WHERE size = ?", ("\n".join(lines), size))
    (alert,) = run(log, [])["log_integrity_failure"]
    assert alert.severity == "critical"


def test_two_engines_on_one_data_directory_share_the_work(tmp_path: Path, log: tuple) -> None:
    """`trailseal watch` beside `serve --watch`: batches are taken once, by one of them."""
    ledger, config, db = log
    append_as_written(ledger, _scenario())
    pack = load([BUILTIN])
    reference = tmp_path / "reference.db"
    alone = Engine(ledger, DetectionStore(reference), pack, config, record_alerts=False)
    alone.run_once()
    first = Engine(ledger, DetectionStore(db), pack, config)
    second = Engine(ledger, DetectionStore(db), pack, config)
    for _ in range(40):
        first.step(limit=50)
        second.step(limit=50)
    assert _alert_set(db) == _alert_set(reference)
    cursor = DetectionStore(db).get_state("cursor")
    assert cursor == ledger.size()
    assert first.processed + second.processed == cursor  # every entry evaluated once


def test_a_writer_cannot_open_or_silence_the_logs_own_alerts(log: tuple) -> None:
    """Issue 10, point 5: a writer's trailseal.integrity.failed once opened the integrity
    alert, into which a real failure was then merged silently."""
    ledger, _, db = log
    forged = event("w", "trailseal.integrity.failed", 9)
    ledger.append([event_from_mapping(forged)], "pr-hostile")
    assert "log_integrity_failure" not in run(log, [])
    store = DetectionStore(db)
    assert store.alerts() == []
    store.close()


def test_correlations_never_join_two_tenants(log: tuple) -> None:
    """Issue 10, point 1: a role change in one tenant and a bulk export in another (the
    same actor id) made one alert; so did counts summed across tenants."""
    acme = {"tenant": "acme"}
    globex = {"tenant": "globex"}
    events = [
        event("a1", "iam.role.assign", 9, actor=acme, detail={"role": "records-export"}),
        event("a1", "export.create", 9.4, actor=globex, resource={"type": "export", "count": 300}),
    ]
    alerts = run(log, events)
    assert "role_change_then_bulk_export" not in alerts
    (export,) = alerts["bulk_export"]
    assert export.tenant == "globex"  # an alert belongs to its evidence's tenant


def test_the_same_group_in_two_tenants_is_two_alerts(log: tuple) -> None:
    events = [
        event(
            "a1", "export.create", 9, actor={"tenant": t}, resource={"type": "export", "count": 300}
        )
        for t in ("acme", "globex")
    ]
    alerts = run(log, events)
    assert sorted(a.tenant for a in alerts["bulk_export"]) == ["acme", "globex"]


def test_an_alert_change_the_log_cannot_record_changes_nothing(log: tuple, tmp_path: Path) -> None:
    """Issue 10, point 9: resolving with a bad --key (or a log that cannot append) left
    the alert resolved with no alert.resolved entry. The entry comes first."""
    ledger, _, _ = log
    ledger.append([event_from_mapping(e) for e in POSITIVE["bulk_export"]])
    data = ledger.settings.data_dir
    ledger.close()
    run_cli("watch", "--once", data=data, check=True)
    (alert,) = orjson.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    refused = run_cli(
        "alerts",
        "resolve",
        str(alert["id"]),
        "--reason",
        "x",
        "--key",
        tmp_path / "no.key",
        data=data,
    )
    assert refused.returncode == 1
    assert b"cannot be written" in refused.stderr
    assert b"Traceback" not in refused.stderr
    (again,) = orjson.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    assert again["status"] == "open"
    with Ledger.open(data) as reopened:
        assert reopened.search(SearchFilter(action="alert.resolved")) == []


def test_an_entry_rewritten_as_text_raises_the_integrity_alert(log: tuple) -> None:
    """Issue 10, point 13: the watcher crashed on an entry rewritten as TEXT."""
    ledger = log[0]
    ledger.append([event_from_mapping(read("n1", f"p-{i}", "3B", 8)) for i in range(5)])
    db = sqlite3.connect(ledger.settings.db_path)
    db.execute("DROP TRIGGER entries_vacate_only")
    db.execute("UPDATE entries SET entry = CAST(entry AS TEXT) WHERE idx = 2")
    db.commit()
    db.close()
    alerts = run(log, [])
    assert len(alerts["log_integrity_failure"]) == 1


def _export(n: int, actor: str) -> dict:
    return event(actor, "export.create", n, resource={"type": "export", "count": 900})


def _rows(db: Path, statement: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        found = conn.execute(statement, params).fetchall()
    conn.close()
    return found


def test_alert_state_edited_in_the_database_is_found_and_put_back_from_the_log(
    log: tuple,
) -> None:
    """Issue 10, point 6: deleting an alert row or marking it resolved in detection.db
    left no trace. Alert state is a projection of the log's alert.* entries:
    `alerts verify` names the difference and the engine restores it on start."""
    ledger, _, db = log
    ledger.append([event_from_mapping(_export(1, "c-1")), event_from_mapping(_export(2, "c-2"))])
    data = ledger.settings.data_dir
    ledger.close()
    run_cli("watch", "--once", data=data, check=True)
    assert run_cli("alerts", "verify", data=data).returncode == 0
    first, second = _rows(db, "SELECT id FROM alerts WHERE rule = 'bulk_export' ORDER BY id")
    _rows(db, "DELETE FROM alerts WHERE id = ?", first)
    _rows(db, "UPDATE alerts SET status = 'resolved', reason = 'x' WHERE id = ?", second)
    found = run_cli("alerts", "verify", data=data)
    assert found.returncode == 3
    assert f"alert {first[0]} is in the log but missing from the database".encode() in found.stderr
    assert f"alert {second[0]}: its status in the database is 'resolved'".encode() in found.stderr
    run_cli("watch", "--once", data=data, check=True)
    assert run_cli("alerts", "verify", data=data).returncode == 0
    listed = orjson.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    by_rule = {a["id"]: a for a in listed}
    assert by_rule[first[0]]["status"] == by_rule[second[0]]["status"] == "open"
    integrity = [a for a in listed if a["rule"] == "log_integrity_failure"]
    assert integrity, "the repair raised no integrity alert"


def test_an_alert_logged_but_not_marked_before_a_crash_is_not_written_again(
    log: tuple,
) -> None:
    """The engine appends its alert entries, then marks them written in its database; a
    kill between the two left an alert the log holds but the database calls unwritten,
    and the next start wrote it again under the same id with another time (refused as a
    conflicting resend). Seen once in a run of the SIGKILL test above."""
    ledger, _, db = log
    ledger.append([event_from_mapping(_export(1, "c-1"))])
    data = ledger.settings.data_dir
    ledger.close()
    run_cli("watch", "--once", data=data, check=True)
    _rows(db, "UPDATE alerts SET logged = 0")  # as if killed before mark_logged
    run_cli("watch", "--once", data=data, check=True)
    assert run_cli("alerts", "verify", data=data).returncode == 0
    with Ledger.open(data) as reopened:
        raised = reopened.search(SearchFilter(action="alert.raised", limit=100))
    ids = [view.entry["event"]["id"] for view in raised]
    assert len(ids) == len(set(ids)) > 0


def test_a_detection_position_moved_forward_is_found_and_the_skipped_entries_evaluated(
    log: tuple,
) -> None:
    """Issue 10, point 6: moving the detection cursor forward made later entries pass
    unwatched. Each batch evaluated is a progress entry, so a skip is a gap."""
    ledger, _, db = log
    ledger.append([event_from_mapping(_export(1, "c-1"))])
    data = ledger.settings.data_dir
    run_cli("watch", "--once", data=data, check=True)
    skipped = ledger.size()
    ledger.append([event_from_mapping(_export(2, "c-2"))])
    ledger.close()
    _rows(db, "UPDATE state SET value = ? WHERE key = 'cursor'", (orjson.dumps(skipped + 1),))
    found = run_cli("alerts", "verify", data=data)
    assert found.returncode == 3
    assert f"entries {skipped} to {skipped} were never evaluated".encode() in found.stderr
    run_cli("watch", "--once", data=data, check=True)
    listed = orjson.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    exports = [a for a in listed if a["rule"] == "bulk_export"]
    assert sorted(i for a in exports for i in a["evidence"]) == [0, skipped]
    assert run_cli("alerts", "verify", data=data).returncode == 0


def test_an_engine_behind_the_log_longer_than_max_lag_raises_one_alert(log: tuple) -> None:
    """Issue 10, point 8: lagging longer than the configured bound raises an alert."""
    ledger, config, db = log
    config.max_lag = 0
    ledger.append([event_from_mapping(read("n-1", f"p-{n}", "3B", n / 10)) for n in range(6)])
    engine = Engine(ledger, DetectionStore(db), load([BUILTIN]), config)
    while engine.step(limit=2):
        pass
    lagging = [a for a in engine.store.alerts() if a.rule == "detection_lagging"]
    assert len(lagging) == 1
    engine.store.close()


def test_a_position_moved_under_a_running_engine_is_found(log: tuple) -> None:
    """The same edit while the engine runs: it takes another engine's batches from the
    database, but only as far as the log's progress entries vouch for them."""
    ledger, config, db = log
    ledger.append([event_from_mapping(_export(1, "c-1"))])
    engine = Engine(ledger, DetectionStore(db), load([BUILTIN]), config)
    while engine.step():
        pass
    skipped = ledger.size()
    ledger.append([event_from_mapping(_export(2, "c-2"))])
    _rows(db, "UPDATE state SET value = ? WHERE key = 'cursor'", (orjson.dumps(skipped + 1),))
    assert engine.step() == 0  # it sees the move, and checks it against the log
    while engine.step():
        pass
    alerts = engine.store.alerts()
    exports = [a for a in alerts if a.rule == "bulk_export"]
    assert sorted(i for a in exports for i in a.evidence) == [0, skipped]
    assert any(a.rule == "log_integrity_failure" for a in alerts)
    engine.store.close()


def test_a_position_no_progress_entry_vouches_for_is_evaluated_not_a_crash(log: tuple) -> None:
    """Review of issue 10: state that says it records progress while the log holds no
    progress entry (an engine run without writing into the log) made the start-up check
    index an empty list."""
    ledger, config, db = log
    ledger.append([event_from_mapping(_export(1, "c-1"))])
    quiet = Engine(ledger, DetectionStore(db), load([BUILTIN]), config, record_alerts=False)
    quiet.run_once()
    quiet.store.close()
    engine = Engine(ledger, DetectionStore(db), load([BUILTIN]), config)
    problems = engine.reconcile()
    assert problems == [
        "entries 0 to 0 were never evaluated: the detection position moved past them"
    ]
    engine.store.close()


def test_an_alert_merged_with_earlier_evidence_moves_its_first_seen_back(log: tuple) -> None:
    """Evidence arriving out of order (09:30 logged before 09:00) merges into one alert
    whose first_seen is the earliest evidence's, not the first logged."""
    exports = [
        event("c2", "export.create", h, resource={"type": "export", "count": 500}) for h in (9.5, 9)
    ]
    (alert,) = run(log, exports)["bulk_export"]
    assert len(alert.evidence) == 2
    assert alert.first_seen < alert.last_seen
    assert "T09:00" in alert.first_seen
