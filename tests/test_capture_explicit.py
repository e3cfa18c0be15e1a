"""The explicit API: records, reads, IAM and document helpers, and host-app values."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailseal.capture import AuditTrail, MemoryEmitter, json_safe
from trailseal.errors import EventError
from trailseal.events import event_from_mapping

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def trail() -> tuple[AuditTrail, MemoryEmitter]:
    emitter = MemoryEmitter()
    return AuditTrail(
        emitter, service="dms", actor=lambda: {"id": "eng-12", "type": "user"}
    ), emitter


def test_iam_helpers_carry_before_and_after(trail: tuple[AuditTrail, MemoryEmitter]) -> None:
    audit, emitter = trail
    audit.role_assigned("u-5521", "admin", ["member"], ["member", "admin"], ticket="SEC-881")
    audit.role_revoked("u-5521", "admin", ["member", "admin"], ["member"])
    audit.permission_override("u-9", "export", before=False, after=True)
    audit.apikey_created("tok-fp-3a7e", "svc-etl", ["read:patients"])
    audit.apikey_revoked("tok-fp-3a7e", "svc-etl")
    actions = [e["action"] for e in emitter.events]
    assert actions == [
        "iam.role.assign",
        "iam.role.revoke",
        "iam.permission.override",
        "iam.apikey.create",
        "iam.apikey.revoke",
    ]
    first = emitter.events[0]
    assert first["detail"] == {
        "role": "admin",
        "before": {"roles": ["member"]},
        "after": {"roles": ["member", "admin"]},
    }
    assert first["context"] == {"ticket": "SEC-881"}
    for event in emitter.events:
        event_from_mapping(event)


def test_document_helpers_carry_the_version_hash(trail: tuple[AuditTrail, MemoryEmitter]) -> None:
    audit, emitter = trail
    audit.document_transition("SPEC-204", 7, SHA, "review", "approved")
    audit.document_signed(
        "SPEC-204", 7, SHA, signer="J. Okafor", meaning="approved", auth_method="password+totp"
    )
    audit.document_downloaded("SPEC-204", 7, SHA, destination="laptop-42")
    for event in emitter.events:
        assert event["resource"] == {
            "type": "document",
            "id": "SPEC-204",
            "version": 7,
            "hash": SHA,
        }
    assert emitter.events[1]["detail"]["meaning"] == "approved"
    with pytest.raises(EventError, match="64 lowercase hex"):
        audit.document_signed("SPEC-204", 7, "not-a-hash", signer="x", meaning="x", auth_method="x")


def test_reads_by_decorator_and_context_manager(trail: tuple[AuditTrail, MemoryEmitter]) -> None:
    audit, emitter = trail

    @audit.reads("patient", id_arg="patient_id")
    def load(patient_id: str) -> str:
        if patient_id == "gone":
            raise KeyError(patient_id)
        return patient_id

    assert load("p-1") == "p-1"
    assert load(patient_id="p-2") == "p-2"
    with pytest.raises(KeyError):
        load("gone")
    with audit.reading("note", "n-7", actor="u-1042"):
        pass
    summary = [(e["action"], e["resource"]["id"], e["outcome"]["result"]) for e in emitter.events]
    assert summary == [
        ("patient.read", "p-1", "success"),
        ("patient.read", "p-2", "success"),
        ("patient.read", "gone", "failure"),
        ("note.read", "n-7", "success"),
    ]
    assert emitter.events[3]["actor"]["id"] == "u-1042"


def test_without_an_actor_the_record_is_refused_not_anonymous() -> None:
    audit = AuditTrail(MemoryEmitter())
    with pytest.raises(EventError, match="no actor"):
        audit.record("record.read", resource={"type": "patient", "id": "p-1"})


class Ward(enum.Enum):
    CARDIO = "3B"


def test_host_values_become_event_json(trail: tuple[AuditTrail, MemoryEmitter]) -> None:
    audit, emitter = trail
    audit.record(
        "record.update",
        resource={"type": "patient", "id": "p-1"},
        detail={
            "before": {
                "weight": 71.5,
                "balance": Decimal("10.10"),
                "photo": b"\x89PNG",
                "ward": Ward.CARDIO,
                "seen": datetime(2026, 3, 1, 14, 5, tzinfo=UTC),
                "born": date(1970, 1, 2),
                "ref": uuid.UUID(int=1),
                "tags": {"b", "a"},
                "big": 2**60,
            },
            "after": None,
        },
    )
    before = emitter.events[0]["detail"]["before"]
    assert before == {
        "weight": "71.5",
        "balance": "10.10",
        "photo": {"base64": "iVBORw=="},
        "ward": "3B",
        "seen": "2026-03-01T14:05:00.000000Z",
        "born": "1970-01-02",
        "ref": "00000000-0000-0000-0000-000000000001",
        "tags": ["a", "b"],
        "big": "1152921504606846976",
    }
    event_from_mapping(emitter.events[0])


@pytest.mark.parametrize(
    ("detail", "where", "words"),
    [
        ({"seen": datetime(2026, 3, 1)}, "$.detail.seen", "without a time zone"),  # noqa: DTZ001
        ({"handle": object()}, "$.detail.handle", "object has no JSON form"),
        ({"blob": "x" * 70_000}, "$", "the limit is 65536"),
    ],
)
def test_bad_host_values_are_refused_clearly(
    trail: tuple[AuditTrail, MemoryEmitter], detail: dict, where: str, words: str
) -> None:
    audit, emitter = trail
    with pytest.raises(EventError) as caught:
        audit.record("record.update", resource={"type": "patient", "id": "p-1"}, detail=detail)
    assert caught.value.field == where
    assert words in str(caught.value)
    assert emitter.events == []


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.just(UTC)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_like)
def test_json_safe_output_is_always_a_valid_detail(value: object) -> None:
    safe = json_safe({"v": value})
    event_from_mapping(
        {
            "id": "x",
            "time": "2026-03-01T14:05:09Z",
            "actor": {"id": "u"},
            "action": "a.b",
            "detail": safe,
        }
    )
