"""Managing principals: create, list, rotate, revoke; and authenticating a token."""

from __future__ import annotations

from dataclasses import dataclass

from trailseal.access import ALL_TENANTS, Permission, Principal, PrincipalStore, Role
from trailseal.app.caller import Caller
from trailseal.app.recorder import Recorder
from trailseal.errors import AuthenticationError


@dataclass
class Principals:
    """Who may call the service; every change is an entry in the log."""

    store: PrincipalStore
    recorder: Recorder

    def authenticate(self, token: str | None, source_ip: str) -> Principal:
        """The active principal holding ``token`` (None: no credentials were sent); a
        failure is recorded (a flood from one source is counted, not written line by line)."""
        found = self.store.authenticate(token.strip()) if token else None
        if found is None:
            why = "no bearer token" if token is None else "unknown, malformed or revoked token"
            self.recorder.authentication_failed(source_ip, why)
            raise AuthenticationError(f"{why}; send Authorization: Bearer tsk_...")
        return found

    def list(self, caller: Caller) -> list[Principal]:
        self.recorder.authorize(caller, Permission.MANAGE_PRINCIPALS)
        return self.store.list()

    def exist(self) -> bool:
        """Whether any principal exists yet (a hint at start-up, no names)."""
        return bool(self.store.list())

    def create(
        self, caller: Caller, name: str, role: Role | str, tenant: str = ALL_TENANTS
    ) -> tuple[Principal, str]:
        """A new principal and its token, which is shown once and never stored."""
        self.recorder.authorize(caller, Permission.MANAGE_PRINCIPALS)
        created, token = self.store.create(name, Role(role), tenant)
        self.recorder.record(
            "principal.create",
            caller,
            resource={"type": "principal", "id": created.id},
            labels={"role": str(created.role), "tenant": created.tenant},
        )
        return created, token

    def rotate(self, caller: Caller, principal_id: str) -> tuple[Principal, str]:
        """A new token; the old one stops working at once."""
        self.recorder.authorize(caller, Permission.MANAGE_PRINCIPALS)
        rotated, token = self.store.rotate(principal_id)
        self.recorder.record(
            "principal.rotate", caller, resource={"type": "principal", "id": rotated.id}
        )
        return rotated, token

    def revoke(self, caller: Caller, principal_id: str) -> Principal:
        self.recorder.authorize(caller, Permission.MANAGE_PRINCIPALS)
        revoked = self.store.revoke(principal_id)
        self.recorder.record(
            "principal.revoke", caller, resource={"type": "principal", "id": revoked.id}
        )
        return revoked
