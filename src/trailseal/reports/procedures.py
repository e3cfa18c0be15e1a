"""``procedures``: the written audit-logging procedure auditors ask for, generated from the
live configuration, so that it says what the system enforces and nothing else.

Every statement is read from the running deployment: the role table the application
layer enforces, the principals that hold each role, the tenants, the actions the log
has captured, the detection rules and sinks in force, the retention in force, and the
keys and places that keep checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trailseal.reports.common import begin
from trailseal.reports.model import Column, Producer, Report, Section, Source


@dataclass(frozen=True)
class Environment:
    """The live configuration a procedure is written from (filled by the application)."""

    origin: str
    store: str
    data_dir: str
    verifier_key: str
    key_fingerprint: str
    key_path: str
    last_signed_path: str
    checkpoints: int
    latest_checkpoint: str | None
    grants: Mapping[str, list[str]]  # permission -> roles
    principals: list[tuple[str, str, str, str]]  # name, role, tenant, state
    captured: list[tuple[str, int]]  # action namespace, entries
    rules: list[tuple[str, str, str]]  # rule id, severity, title
    sinks: list[tuple[str, str]]  # name, type
    context: list[tuple[str, str]]  # kind, file
    max_lag: str | None
    retention: list[str] = field(default_factory=list)
    schedules: list[tuple[str, str, str]] = field(default_factory=list)  # name, report, cron


_DUTIES = [
    (
        "auditor",
        (
            "Verify the log (trailseal verify at least daily, verify --since for each day's "
            "growth), keep checkpoints outside the deployment, produce and review the "
            "periodic reports."
        ),
    ),
    (
        "security",
        (
            "Triage every alert (acknowledge, resolve with a reason); keep the rules current; "
            "watch detection health (/healthz, detection_stopped and detection_lagging)."
        ),
    ),
    (
        "privacy",
        (
            "Erase details only under a documented legal basis; each erasure is an entry "
            "with its reason."
        ),
    ),
    (
        "admin",
        "Create, rotate and revoke principals; cannot read event contents or change entries.",
    ),
    ("writer", "Applications: append events only."),
]


def procedures(  # noqa: C901 - one section after another
    source: Source,
    params: Mapping[str, str],  # noqa: ARG001 - it takes none; every report has the signature
    who: Producer,
) -> Report:
    env = source.environment()
    report = begin("procedures", "Audit logging procedure", {}, source, who)
    purpose = Section("purpose", "1. Purpose and scope", [Column("text", "")])
    purpose.add(
        {
            "text": f"This procedure governs the audit log {env.origin}, kept in {env.store} "
            f"(data directory {env.data_dir}). Entries are append-only; every entry is "
            "hash-chained and committed to by a signed Merkle checkpoint, so any change, removal "
            "or reordering is detected by anyone holding the public key."
        }
    )
    roles = Section(
        "roles",
        "2. Roles and what each may do (the role table the application enforces)",
        [Column("permission", "Permission"), Column("roles", "Roles")],
    )
    for permission, granted in env.grants.items():
        roles.add({"permission": permission, "roles": ", ".join(granted)})
    holders = Section(
        "principals",
        "3. Who holds each role",
        [
            Column("name", "Principal"),
            Column("role", "Role"),
            Column("tenant", "Tenant"),
            Column("state", "State"),
        ],
        empty="no principals: only the local command line (role host) uses this log",
    )
    for name, role, tenant, state in env.principals:
        holders.add({"name": name, "role": role, "tenant": tenant, "state": state})
    tenants = sorted({tenant for _, _, tenant, _ in env.principals if tenant != "*"})
    captured = Section(
        "captured",
        "4. What is captured (actions recorded in the log, by namespace)",
        [Column("namespace", "Namespace"), Column("entries", "Entries")],
        note="Every event records who (actor), what (action, resource), when (time, and when "
        "received), where (source) and the outcome; before/after state is kept as an erasable "
        "detail. Every read of the log is itself an entry (audit.read).",
    )
    for namespace, count in env.captured:
        captured.add({"namespace": namespace, "entries": count})
    detection = Section(
        "detection",
        "5. Detection rules in force",
        [Column("rule", "Rule"), Column("severity", "Severity"), Column("title", "Title")],
        empty="no detection configuration: no rules run",
    )
    for rule, severity, title in env.rules:
        detection.add({"rule": rule, "severity": severity, "title": title})
    sinks = Section(
        "sinks",
        "6. Where alerts go",
        [Column("name", "Sink"), Column("type", "Type")],
        empty="alerts are stored and written into the log only (no sink configured)",
        note=f"Detection may lag at most {env.max_lag} before it alerts." if env.max_lag else None,
    )
    for name, kind in env.sinks:
        sinks.add({"name": name, "type": kind})
    retention = Section(
        "retention",
        "7. Retention",
        [Column("text", "")],
    )
    for line in env.retention or [
        (
            "No retention policy is configured: every entry is kept indefinitely. Details "
            "(before/after) may be erased by the privacy role with a recorded reason; the "
            "entry and its hashes remain."
        )
    ]:
        retention.add({"text": line})
    integrity = Section(
        "integrity",
        "8. Checkpoint keys and where checkpoints are kept",
        [Column("field", ""), Column("value", "")],
    )
    for name, value in (
        ("verifier key", env.verifier_key),
        ("key fingerprint (SHA-256)", env.key_fingerprint),
        ("signing key file", env.key_path),
        ("last signed checkpoint kept beside the key", env.last_signed_path),
        ("checkpoints signed so far", f"{env.checkpoints:,}"),
        ("latest checkpoint", env.latest_checkpoint or "none yet"),
        ("kept in", f"the store ({env.store}); served at /v1/checkpoint to clients and witnesses"),
    ):
        integrity.add({"field": name, "value": value})
    duties = Section(
        "duties",
        "9. Review duties",
        [Column("role", "Role"), Column("duty", "Duty")],
    )
    for role, duty in _DUTIES:
        duties.add({"role": role, "duty": duty})
    if env.schedules:
        for name, kind, cron in env.schedules:
            duties.add({"role": "schedule", "duty": f"{name}: {kind} on {cron!r}"})
    report.sections = [
        purpose,
        roles,
        holders,
        captured,
        detection,
        sinks,
        retention,
        integrity,
        duties,
    ]
    report.summary = [
        ("principals", len(env.principals)),
        ("tenants", ", ".join(tenants) or "one (no tenant-bound principals)"),
        ("rules in force", len(env.rules)),
        ("sinks", len(env.sinks)),
        ("checkpoints", env.checkpoints),
    ]
    return report
