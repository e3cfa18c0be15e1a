"""AWS CloudTrail records as trailseal events.

Each record becomes one event. The record is kept whole, as the text AWS delivered,
in ``detail.cloudtrail``; the event's own fields are filled from it so that search,
reports and the engine read CloudTrail like any other source:

- ``id``: ``eventID`` (a record without a usable one gets ``cloudtrail:`` and the
  SHA-256 of its text, so a re-import still finds it);
- ``time``: ``eventTime`` in UTC (ISO 8601 with any offset, or the
  ``Jul 30, 2024 9:53:13 PM`` form some tools write);
- ``actor``: from ``userIdentity`` (the ARN, else the principal id, else the type
  and account, else the service that invoked the call);
- ``action``: ``aws.`` + the service of ``eventSource`` + ``.`` + ``eventName``,
  e.g. ``aws.iam.CreateUser``;
- ``outcome``: ``denied`` for access errors, ``failure`` for any other
  ``errorCode`` (or a failed console login), else ``success``;
- ``source``: ``ip`` when ``sourceIPAddress`` is a valid address, ``service`` when
  it is an AWS service (``ec2.amazonaws.com``), else ``host`` (``AWS Internal``, or
  an anonymised address such as ``075.050.255.67``);
- ``resource``: the first of ``resources`` (type and ARN), and the tenant when the
  import names one;
- ``context.labels``: ``cloudtrail.account``, ``cloudtrail.region``,
  ``cloudtrail.event_type`` and ``cloudtrail.read_only``.

Fields the event schema bounds (names of 256 characters, texts of 4096) are cut to
fit in the event; the record in the detail is never cut.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trailseal.errors import EventError
from trailseal.events.model import is_ip
from trailseal.ingest.names import clean, fit, part

ACTION_PREFIX = "aws."
DETAIL_KEY = "cloudtrail"
_DENIED = re.compile(r"AccessDenied|Unauthori[sz]ed|Forbidden|NotAuthorized", re.IGNORECASE)
_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_USERS = {
    "Root",
    "IAMUser",
    "AssumedRole",
    "FederatedUser",
    "SAMLUser",
    "WebIdentityUser",
    "IdentityCenterUser",
    "Unknown",
}
_SERVICES = {"AWSService", "AWSAccount"}


@dataclass(frozen=True)
class Tenancy:
    """Which tenant imported events belong to: one named, the record's account, or none."""

    name: str | None = None
    from_account: bool = False

    def of(self, record: dict[str, Any]) -> str | None:
        if self.name is not None:
            return self.name
        if self.from_account:
            account = record.get("recipientAccountId") or _dig(record, "userIdentity", "accountId")
            return fit(account)
        return None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    return fit(value, 4096)


def event_time(value: Any) -> str:
    """``eventTime`` as RFC 3339 UTC with a Z, or EventError naming what it holds."""
    if isinstance(value, str):
        text = _FRACTION.sub(r"\1", value.strip())
        try:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            try:
                moment = datetime.strptime(text, "%b %d, %Y %I:%M:%S %p")  # noqa: DTZ007 - UTC
            except ValueError:
                moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            try:
                text = moment.astimezone(UTC).isoformat(timespec="microseconds")
            except OverflowError:  # before year 1 or after 9999 once in UTC
                text = ""
            if text.endswith("+00:00"):
                return text.removesuffix("+00:00").removesuffix(".000000") + "Z"
    raise EventError(
        "eventTime", f"{str(value)[:60]!r} is not a date and time (ISO 8601, as AWS writes it)"
    )


def action(record: dict[str, Any]) -> str:
    """``aws.SERVICE.EVENTNAME``, each part in the characters an action allows."""
    source = str(record.get("eventSource") or "unknown").removesuffix(".amazonaws.com")
    parts = [*source.split("."), record.get("eventName") or "unknown"]
    return ACTION_PREFIX + ".".join(part(p, 40) for p in parts[-3:])  # at most 128 in all


def _actor(record: dict[str, Any], tenant: str | None) -> dict[str, Any]:
    identity = record.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    kind = identity.get("type")
    account = identity.get("accountId")
    ident = (
        fit(identity.get("arn"))
        or fit(identity.get("principalId"))
        or (fit(f"{kind}:{account}") if kind and account else None)
        or fit(identity.get("invokedBy"))
        or "aws:unknown"
    )
    actor: dict[str, Any] = {"id": ident}
    if kind in _USERS:
        actor["type"] = "user"
    elif kind in _SERVICES:
        actor["type"] = "service"
    name = fit(identity.get("userName")) or fit(
        _dig(identity, "sessionContext", "sessionIssuer", "userName")
    )
    if name:
        actor["name"] = name
    if key := fit(identity.get("accessKeyId")):
        actor["token_id"] = key
    if tenant:
        actor["tenant"] = tenant
    return actor


def _outcome(record: dict[str, Any]) -> dict[str, Any]:
    code = fit(record.get("errorCode"))
    message = _text(record.get("errorMessage"))
    console = _dig(record, "responseElements", "ConsoleLogin")
    if code is None and console != "Failure":
        return {"result": "success"}
    result = "denied" if code and _DENIED.search(code) else "failure"
    reason = ": ".join(part for part in (code, message) if part)
    return {"result": result, **({"reason": reason[:4096]} if reason else {})}


def _source(record: dict[str, Any]) -> dict[str, Any] | None:
    source: dict[str, Any] = {}
    address = fit(record.get("sourceIPAddress"))
    if address is not None:
        if is_ip(address):
            source["ip"] = address
        elif address.endswith(".amazonaws.com"):
            source["service"] = address
        else:
            source["host"] = address
    if agent := _text(record.get("userAgent")):
        source["user_agent"] = agent
    return source or None


def _resource(record: dict[str, Any], tenant: str | None) -> dict[str, Any] | None:
    resource: dict[str, Any] = {}
    found = record.get("resources")
    found = found if isinstance(found, list) else []
    first = found[0] if found else None
    if isinstance(first, dict):
        if kind := fit(first.get("type")):
            resource["type"] = kind
        if arn := fit(first.get("ARN")):
            resource["id"] = arn
        if len(found) > 1:
            resource["count"] = len(found)
    if tenant:
        resource["tenant"] = tenant
    return resource or None


def _labels(record: dict[str, Any]) -> dict[str, Any]:
    labels: dict[str, Any] = {}
    for label, key in (
        ("cloudtrail.account", "recipientAccountId"),
        ("cloudtrail.region", "awsRegion"),
        ("cloudtrail.event_type", "eventType"),
    ):
        if value := fit(record.get(key)):
            labels[label] = value
    read_only = record.get("readOnly")
    if isinstance(read_only, bool):
        labels["cloudtrail.read_only"] = read_only
    elif isinstance(read_only, str) and read_only.lower() in ("true", "false"):
        labels["cloudtrail.read_only"] = read_only.lower() == "true"
    return labels


def event_id(record: dict[str, Any], text: bytes) -> str:
    """``eventID``, or a name derived from the record's text when it has none usable."""
    found = record.get("eventID")
    if isinstance(found, str) and 0 < len(found) <= 256 and clean(found):
        return found
    return "cloudtrail:" + hashlib.sha256(text).hexdigest()


def to_event(record: Any, text: bytes, tenancy: Tenancy) -> dict[str, Any]:
    """The event for one CloudTrail record whose delivered text is ``text``; EventError
    (naming the record's field) for a record that cannot be one."""
    if not isinstance(record, dict):
        kind = "nothing readable" if record is None else type(record).__name__
        raise EventError("$", f"a CloudTrail record is a JSON object, not {kind}")
    tenant = tenancy.of(record)
    event: dict[str, Any] = {
        "id": event_id(record, text),
        "time": event_time(record.get("eventTime")),
        "actor": _actor(record, tenant),
        "action": action(record),
        "outcome": _outcome(record),
        "detail": {DETAIL_KEY: text.decode("utf-8", "surrogatepass")},
    }
    if source := _source(record):
        event["source"] = source
    if resource := _resource(record, tenant):
        event["resource"] = resource
    if request_id := fit(record.get("requestID")):
        event["request"] = {"request_id": request_id}
    if labels := _labels(record):
        event["context"] = {"labels": labels}
    return event
