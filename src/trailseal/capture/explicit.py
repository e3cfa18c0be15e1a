"""The explicit API: what no middleware can see.

``trail.record(...)`` for any event; ``@trail.reads(...)`` and
``with trail.reading(...)`` for reads; IAM helpers for role, permission and
API-key changes with before and after state; document helpers for
transitions, e-signatures and downloads, each carrying the document version's
SHA-256 (21 CFR Part 11). The actor defaults to whoever the current request's
middleware or handler named.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import orjson

from trailseal.capture import context
from trailseal.capture.request import Emitter
from trailseal.capture.values import Clock, json_safe, now, stamp
from trailseal.errors import EventError
from trailseal.events import event_from_mapping

P = ParamSpec("P")
R = TypeVar("R")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
MAX_EVENT_BYTES = 64 * 1024


def _sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise EventError(
            "$.resource.hash", "a document version's SHA-256 is 64 lowercase hex digits"
        )
    return value


class AuditTrail:
    """Records explicit events through an emitter (a Client, or MemoryEmitter in tests)."""

    def __init__(
        self,
        emitter: Emitter,
        *,
        service: str = "app",
        actor: Callable[[], dict[str, Any] | None] | None = None,
        clock: Clock = now,
    ) -> None:
        self.emitter = emitter
        self.service = service
        self.clock = clock
        self._default_actor = actor

    def _actor(self, actor: str | dict[str, Any] | None) -> dict[str, Any]:
        if isinstance(actor, str):
            return {"id": actor, "type": "user"}
        if actor is not None:
            return dict(actor)
        capture = context.current()
        found = (capture.actor if capture else None) or (
            self._default_actor() if self._default_actor else None
        )
        if found is None:
            raise EventError("$.actor", "no actor: pass actor=, or name it with set_actor()")
        return found

    def record(  # noqa: PLR0913 - the parts of an event, by name
        self,
        action: str,
        *,
        resource: dict[str, Any] | None = None,
        actor: str | dict[str, Any] | None = None,
        result: str = "success",
        reason: str | None = None,
        detail: Any = None,
        ticket: str | None = None,
    ) -> str:
        """Emit one event; returns its id. Bad values are refused here, naming the field."""
        from trailseal.client import new_event_id  # noqa: PLC0415 - avoids an import cycle

        event: dict[str, Any] = {
            "id": new_event_id(),
            "time": stamp(self.clock),
            "actor": self._actor(actor),
            "action": action,
            "outcome": {"result": result} | ({"reason": reason} if reason else {}),
            "source": {"service": self.service},
        }
        if resource:
            event["resource"] = json_safe(resource, "$.resource")
        if ticket:
            event["context"] = {"ticket": ticket}
        if detail is not None:
            event["detail"] = json_safe(detail)
        size = len(orjson.dumps(event))
        if size > MAX_EVENT_BYTES:
            raise EventError("$", f"event is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes")
        event_from_mapping(event)  # the same validation the log applies, before it leaves
        return self.emitter.emit(event)

    # -- reads -------------------------------------------------------------

    @contextmanager
    def reading(
        self, resource_type: str, resource_id: str, *, actor: str | dict[str, Any] | None = None
    ) -> Iterator[None]:
        """Record a read of one record when the block ends, failed if it raised."""
        try:
            yield
        except BaseException as exc:
            self.record(
                f"{resource_type}.read",
                resource={"type": resource_type, "id": resource_id},
                actor=actor,
                result="failure",
                reason=type(exc).__name__,
            )
            raise
        self.record(
            f"{resource_type}.read",
            resource={"type": resource_type, "id": resource_id},
            actor=actor,
        )

    def reads(self, resource_type: str, id_arg: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a function that reads the record named by its ``id_arg`` argument."""

        def decorate(function: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(function)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                resource_id = str(kwargs.get(id_arg, args[0] if args else ""))
                with self.reading(resource_type, resource_id):
                    return function(*args, **kwargs)

            return wrapper

        return decorate

    # -- identity and access ---------------------------------------------------

    def role_assigned(
        self, user_id: str, role: str, before: list[str], after: list[str], **extra: Any
    ) -> str:
        return self.record(
            "iam.role.assign",
            resource={"type": "user", "id": user_id},
            detail={"role": role, "before": {"roles": before}, "after": {"roles": after}},
            **extra,
        )

    def role_revoked(
        self, user_id: str, role: str, before: list[str], after: list[str], **extra: Any
    ) -> str:
        return self.record(
            "iam.role.revoke",
            resource={"type": "user", "id": user_id},
            detail={"role": role, "before": {"roles": before}, "after": {"roles": after}},
            **extra,
        )

    def permission_override(
        self, subject_id: str, permission: str, before: Any, after: Any, **extra: Any
    ) -> str:
        return self.record(
            "iam.permission.override",
            resource={"type": "user", "id": subject_id},
            detail={"permission": permission, "before": before, "after": after},
            **extra,
        )

    def apikey_created(
        self, key_fingerprint: str, owner_id: str, scopes: list[str], **extra: Any
    ) -> str:
        """``key_fingerprint`` identifies the key; never pass the key itself."""
        return self.record(
            "iam.apikey.create",
            resource={"type": "apikey", "id": key_fingerprint},
            detail={"owner": owner_id, "after": {"scopes": scopes}},
            **extra,
        )

    def apikey_revoked(self, key_fingerprint: str, owner_id: str, **extra: Any) -> str:
        return self.record(
            "iam.apikey.revoke",
            resource={"type": "apikey", "id": key_fingerprint},
            detail={"owner": owner_id},
            **extra,
        )

    # -- controlled documents (21 CFR Part 11) ----------------------------------

    def _document(self, document_id: str, version: str | int, sha256: str) -> dict[str, Any]:
        return {"type": "document", "id": document_id, "version": version, "hash": _sha256(sha256)}

    def document_transition(
        self,
        document_id: str,
        version: str | int,
        sha256: str,
        from_state: str,
        to_state: str,
        **extra: Any,
    ) -> str:
        return self.record(
            "document.transition",
            resource=self._document(document_id, version, sha256),
            detail={"before": {"state": from_state}, "after": {"state": to_state}},
            **extra,
        )

    def document_signed(  # noqa: PLR0913 - a signature's parts, by name
        self,
        document_id: str,
        version: str | int,
        sha256: str,
        *,
        signer: str,
        meaning: str,
        auth_method: str,
        **extra: Any,
    ) -> str:
        """An electronic signature: who, what it means (e.g. "approved") and how they proved it."""
        return self.record(
            "document.sign",
            resource=self._document(document_id, version, sha256),
            detail={"signer": signer, "meaning": meaning, "auth_method": auth_method},
            **extra,
        )

    def document_downloaded(
        self, document_id: str, version: str | int, sha256: str, *, destination: str, **extra: Any
    ) -> str:
        return self.record(
            "document.download",
            resource=self._document(document_id, version, sha256),
            detail={"destination": destination},
            **extra,
        )
