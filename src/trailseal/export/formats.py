"""What an exported entry looks like to each destination: pure functions, no I/O.

Every format carries the entry's log index, its leaf hash and the log's origin, each in
the place the format keeps for fields of its own, so an analyst holding a record in the
SIEM can prove it against the log (``trailseal prove inclusion INDEX``) or catch one
changed on the way (the leaf hash is SHA-256 of the entry's bytes, which the record's
fields came from).

- :func:`hec_event`: a Splunk HTTP Event Collector event (``time``, ``host``,
  ``source``, ``sourcetype``, ``index``, ``event``, and ``fields`` for the proof).
- :func:`ecs_document`: an Elastic Common Schema document for the ``_bulk`` API.
- :func:`ocsf_event`: an OCSF event of the class the action calls for.
- :func:`cef_message`: an ArcSight CEF line, escaped as CEF says.
- :func:`syslog_message`: RFC 5424 with the entry as structured JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from trailseal.detect.sinks import FACILITY_LOG_AUDIT, sd_value

SD_ID = "trailseal@32473"  # an enterprise-number SD-ID, as the alert sinks use
VENDOR = "trailseal"


@dataclass(frozen=True)
class Exported:
    """One entry as the exporter sends it: the event, where it sits in the log, and
    (only when the destination asks for details) its detail."""

    origin: str
    index: int
    leaf_hash: str  # hex
    received_at: str
    submitter: str | None
    event: dict[str, Any]
    detail: Any = None
    tenant: str | None = None  # the entry's tenant, by the one tenant rule (access.tenants)

    @property
    def proof(self) -> dict[str, Any]:
        """The fields every format carries, so the record can be proved against the log."""
        return {"index": self.index, "leaf_hash": self.leaf_hash, "origin": self.origin}

    @property
    def id(self) -> str:
        """A document id unique across logs: the origin and the index."""
        return f"{self.origin}:{self.index}"

    def seconds(self) -> float:
        """The event's time as seconds since the epoch."""
        return datetime.fromisoformat(str(self.event["time"])).timestamp()

    def whole(self) -> dict[str, Any]:
        """The entry as one JSON object: the event, the proof, and the detail if sent."""
        found: dict[str, Any] = {
            "event": self.event,
            "trailseal": {**self.proof, "received_at": self.received_at},
        }
        if self.submitter:
            found["trailseal"]["submitter"] = self.submitter
        if self.detail is not None:
            found["detail"] = self.detail
        return found


# -- Splunk HTTP Event Collector -----------------------------------------------------------


def hec_event(
    item: Exported, *, host: str, source: str, sourcetype: str, index: str | None
) -> dict[str, Any]:
    """One HEC event: ``time`` in epoch seconds, the entry as ``event``, and the proof
    as indexed ``fields`` (``trailseal.index``, ``trailseal.leaf_hash``,
    ``trailseal.origin``) as well as inside the event."""
    found: dict[str, Any] = {
        "time": round(item.seconds(), 6),
        "host": host,
        "source": source,
        "sourcetype": sourcetype,
        "event": item.whole(),
        "fields": {f"trailseal.{key}": str(value) for key, value in item.proof.items()},
    }
    if index:
        found["index"] = index
    return found


# -- Elastic Common Schema -----------------------------------------------------------------

_ECS_OUTCOME = {"success": "success", "failure": "failure", "denied": "failure"}


def ecs_document(item: Exported) -> dict[str, Any]:
    """The entry in Elastic Common Schema field names (``@timestamp``, ``event.*``,
    ``user.*``, ``source.*``, ``user_agent.original``), with trailseal's own under
    ``trailseal.*`` (the proof, the resource, the tenant)."""
    event = item.event
    outcome = event.get("outcome") or {}
    doc: dict[str, Any] = {
        "@timestamp": event["time"],
        "ecs": {"version": "8.11.0"},
        "event": {
            "id": event["id"],
            "action": event["action"],
            "outcome": _ECS_OUTCOME.get(str(outcome.get("result")), "unknown"),
            "ingested": item.received_at,
            "kind": "event",
            "module": VENDOR,
            "dataset": f"{VENDOR}.audit",
        },
        "user": _ecs_user(event.get("actor") or {}),
        "trailseal": {**item.proof, "received_at": item.received_at},
    }
    if outcome.get("reason"):
        doc["event"]["reason"] = outcome["reason"]
    doc.update(_ecs_source(event.get("source") or {}))
    doc.update(_ecs_request(event.get("request") or {}))
    _ecs_ours(item, doc)
    return doc


def _ecs_user(actor: dict[str, Any]) -> dict[str, Any]:
    user: dict[str, Any] = {"id": actor["id"]}
    for ecs, ours in (("name", "name"), ("roles", "roles"), ("domain", "tenant")):
        if actor.get(ours) is not None:
            user[ecs] = actor[ours]
    return user


def _ecs_source(source: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if source.get("ip"):
        found["source"] = {"ip": source["ip"]}
        geo = source.get("geo") or {}
        names = (("country_iso_code", "country"), ("region_name", "region"), ("city_name", "city"))
        located = {ecs: geo[ours] for ecs, ours in names if geo.get(ours)}
        if located:
            found["source"]["geo"] = located
    if source.get("user_agent"):
        found["user_agent"] = {"original": source["user_agent"]}
    if source.get("host"):
        found["host"] = {"name": source["host"]}
    if source.get("service"):
        found["service"] = {"name": source["service"]}
    return found


def _ecs_request(request: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    asked = {
        k: request[o] for k, o in (("id", "request_id"), ("method", "method")) if request.get(o)
    }
    if asked:
        found["http"] = {"request": asked}
    if request.get("path"):
        found["url"] = {"path": request["path"]}
    return found


def _ecs_ours(item: Exported, doc: dict[str, Any]) -> None:
    """The tenant as ``organization.id``, labels as ``labels``, and what ECS has no
    place for under ``trailseal.*``."""
    event = item.event
    resource = event.get("resource")
    if item.tenant:
        doc["organization"] = {"id": item.tenant}
    if resource:
        doc["trailseal"]["resource"] = resource
    context = event.get("context") or {}
    if context.get("labels"):
        doc["labels"] = {str(k): str(v) for k, v in context["labels"].items()}
    if context.get("ticket"):
        doc["trailseal"]["ticket"] = context["ticket"]
    if item.submitter:
        doc["trailseal"]["submitter"] = item.submitter
    if item.detail is not None:
        doc["trailseal"]["detail"] = item.detail


# -- OCSF ----------------------------------------------------------------------------------

OCSF_VERSION = "1.4.0"  # the first with an actor on Entity Management
API_ACTIVITY, ACCOUNT_CHANGE, AUTHENTICATION, ENTITY_MANAGEMENT = 6003, 3001, 3002, 3004
_OCSF_CATEGORY = {API_ACTIVITY: 6, ACCOUNT_CHANGE: 3, AUTHENTICATION: 3, ENTITY_MANAGEMENT: 3}
_OCSF_NAMES = {
    API_ACTIVITY: "API Activity",
    ACCOUNT_CHANGE: "Account Change",
    AUTHENTICATION: "Authentication",
    ENTITY_MANAGEMENT: "Entity Management",
}
# activity ids per class, by the verb an action ends with
_ACTIVITIES = {
    API_ACTIVITY: {"create": 1, "read": 2, "update": 3, "delete": 4},
    ACCOUNT_CHANGE: {
        "create": 1,
        "enable": 2,
        "password_change": 3,
        "password_reset": 4,
        "disable": 5,
        "delete": 6,
        "attach_policy": 7,
        "detach_policy": 8,
        "lock": 9,
        "mfa_enable": 10,
        "mfa_disable": 11,
        "unlock": 12,
    },
    AUTHENTICATION: {"login": 1, "logon": 1, "logout": 2, "logoff": 2, "ticket": 3},
    ENTITY_MANAGEMENT: {"create": 1, "read": 2, "update": 3, "delete": 4, "move": 5},
}
_ACCOUNT_WORDS = ("principal", "account", "user", "role", "permission", "group", "mfa")
_ENTITY_WORDS = ("config", "document", "record", "setting", "policy", "workspace", "rule")


def ocsf_class(action: str) -> int:
    """The OCSF class an action calls for: Authentication for ``auth.*`` (and log-ins),
    Account Change for principals, roles and permissions, Entity Management for
    configuration, documents and records, else API Activity."""
    head, _, _ = action.partition(".")
    low = action.lower()
    if head in ("auth", "authentication") or re.search(r"(^|\.)(login|logon|logout)", low):
        return AUTHENTICATION
    if head in _ACCOUNT_WORDS or any(f".{w}" in f".{low}" for w in ("role", "permission")):
        return ACCOUNT_CHANGE
    if head in _ENTITY_WORDS:
        return ENTITY_MANAGEMENT
    return API_ACTIVITY


def _activity(class_uid: int, action: str) -> int:
    verb = action.rsplit(".", 1)[-1].lower()
    table = _ACTIVITIES[class_uid]
    for word, number in table.items():
        if verb == word or verb.startswith(word) or verb.endswith(word):
            return number
    return 99  # Other


_OCSF_STATUS = {"success": 1, "failure": 2, "denied": 2}


def ocsf_event(item: Exported) -> dict[str, Any]:
    """The entry as an OCSF event: the class and activity the action calls for, the
    actor, the source endpoint, the status, and trailseal's proof under ``unmapped``."""
    event = item.event
    class_uid = ocsf_class(event["action"])
    activity = _activity(class_uid, event["action"])
    outcome = event.get("outcome") or {}
    actor = event.get("actor") or {}
    user: dict[str, Any] = {"uid": actor["id"]}
    if actor.get("name"):
        user["name"] = actor["name"]
    found: dict[str, Any] = {
        "category_uid": _OCSF_CATEGORY[class_uid],
        "class_uid": class_uid,
        "class_name": _OCSF_NAMES[class_uid],
        "activity_id": activity,
        "type_uid": class_uid * 100 + activity,
        "severity_id": 1,  # Informational: an audit record, not a finding
        "time": int(item.seconds() * 1000),
        "status_id": _OCSF_STATUS.get(str(outcome.get("result")), 0),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": event["id"],
            "product": {"name": VENDOR, "vendor_name": VENDOR},
            "log_name": item.origin,
            "original_time": event["time"],
            "logged_time": int(datetime.fromisoformat(item.received_at).timestamp() * 1000),
        },
        "actor": {"user": user},
        "message": event["action"],
        "unmapped": {"trailseal": {**item.proof, "event": event}},
    }
    if outcome.get("reason"):
        found["status_detail"] = outcome["reason"]
    found.update(_ocsf_class_parts(class_uid, item, user))
    if item.detail is not None:
        found["unmapped"]["trailseal"]["detail"] = item.detail
    return found


def _ocsf_class_parts(class_uid: int, item: Exported, user: dict[str, Any]) -> dict[str, Any]:
    """What each class requires or names beyond the base event: the source endpoint, the
    API operation, the user and service of a log-in, the account changed, the entity."""
    event = item.event
    source = event.get("source") or {}
    resource = event.get("resource") or {}
    found: dict[str, Any] = {}
    endpoint = {k: v for k, v in (("ip", source.get("ip")), ("hostname", source.get("host"))) if v}
    if source.get("service"):
        endpoint["svc_name"] = source["service"]
    if endpoint or class_uid == API_ACTIVITY:  # API Activity requires one
        found["src_endpoint"] = endpoint or {"name": "unknown"}
    if class_uid == API_ACTIVITY:
        found["api"] = {"operation": event["action"]}
        if source.get("service"):
            found["api"]["service"] = {"name": source["service"]}
    elif class_uid == AUTHENTICATION:
        found["user"] = dict(user)
        # the service authenticated to (Authentication requires it or a destination)
        found["service"] = {"name": source.get("service") or item.origin}
    elif class_uid == ACCOUNT_CHANGE:
        found["user"] = {"uid": str(resource.get("id") or user["uid"])}
    else:
        named = (("uid", resource.get("id")), ("type", resource.get("type")))
        found["entity"] = {k: str(v) for k, v in named if v} or {"name": event["action"]}
    return found


# -- CEF and syslog ------------------------------------------------------------------------

_SYSLOG_SEVERITY = {"success": 6, "failure": 4, "denied": 4}
_CEF_SEVERITY = {"success": 3, "failure": 6, "denied": 7}


def cef_header(value: object) -> str:
    """A CEF header field: backslash and pipe escaped, newlines out."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"[\r\n]+", " ", text)


def cef_value(value: object) -> str:
    """A CEF extension value: backslash and equals escaped, newlines as ``\\n``/``\\r``."""
    text = str(value).replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def cef_message(item: Exported, version: str) -> str:
    """``CEF:0|trailseal|trailseal|VERSION|ACTION|ACTION|SEVERITY|extensions``, with the
    proof in custom string fields (``cs1`` index, ``cs2`` leaf hash, ``cs3`` origin)."""
    event = item.event
    result = str((event.get("outcome") or {}).get("result"))
    actor = event.get("actor") or {}
    source = event.get("source") or {}
    resource = event.get("resource") or {}
    pairs: list[tuple[str, object]] = [
        ("rt", int(item.seconds() * 1000)),
        ("externalId", event["id"]),
        ("act", event["action"]),
        ("suser", actor["id"]),
        ("outcome", result),
        ("cs1Label", "trailseal.index"),
        ("cs1", item.index),
        ("cs2Label", "trailseal.leaf_hash"),
        ("cs2", item.leaf_hash),
        ("cs3Label", "trailseal.origin"),
        ("cs3", item.origin),
    ]
    if source.get("ip"):
        pairs.append(("src", source["ip"]))
    if source.get("host"):
        pairs.append(("shost", source["host"]))
    if source.get("user_agent"):
        pairs.append(("requestClientApplication", source["user_agent"]))
    if resource.get("id") is not None:
        pairs.append(("cs4Label", "resource"))
        pairs.append(("cs4", f"{resource.get('type', '')}/{resource['id']}"))
    if item.tenant:
        pairs.append(("cs5Label", "tenant"))
        pairs.append(("cs5", item.tenant))
    reason = (event.get("outcome") or {}).get("reason")
    if reason:
        pairs.append(("reason", reason))
    header = "|".join(
        cef_header(part) for part in (VENDOR, VENDOR, version, event["action"], event["action"])
    )
    extensions = " ".join(f"{key}={cef_value(value)}" for key, value in pairs)
    return f"CEF:0|{header}|{_CEF_SEVERITY.get(result, 5)}|{extensions}"


def syslog_message(
    item: Exported, *, host: str, app: str = VENDOR, cef: str | None = None
) -> bytes:
    """RFC 5424: ``<PRI>1 TIMESTAMP HOST APP - MSGID [trailseal@32473 index= leaf_hash=
    origin=] MSG``: the entry as JSON (UTF-8, with the BOM), or a CEF line."""
    result = str((item.event.get("outcome") or {}).get("result"))
    pri = FACILITY_LOG_AUDIT * 8 + _SYSLOG_SEVERITY.get(result, 5)
    stamp = datetime.fromisoformat(str(item.event["time"])).astimezone(UTC)
    when = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    msgid = re.sub(r"[^!-~]", "_", str(item.event["action"]))[:32] or "-"
    origin = sd_value(item.origin)
    structured = f'[{SD_ID} index="{item.index}" leaf_hash="{item.leaf_hash}" origin="{origin}"]'
    header = f"<{pri}>1 {when} {host[:255] or '-'} {app[:48]} - {msgid} {structured} "
    if cef is not None:
        return header.encode() + cef.encode()
    return header.encode() + b"\xef\xbb\xbf" + orjson.dumps(item.whole())
