"""Managing principals: create, list, rotate, revoke; and authenticating a token."""

from __future__ import annotations

from dataclasses import dataclass

from trailseal.access import ALL_TENANTS, Permission, Principal, PrincipalStore, Role
from trailseal.app.caller import Caller
from trailseal.app.recorder import Recorder
from trailseal.errors import AuthenticationError, NotFoundError, PermissionDeniedError


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

    def sign_in(self, token: str | None, source_ip: str, service: str) -> Principal:
        """Authenticate a token for a session (the dashboard's sign-in); recorded as
        ``audit.signin``, a failure as any failed authentication is."""
        principal = self.authenticate(token, source_ip)
        self.recorder.record(
            "audit.signin",
            Caller(principal, source_ip, service),
            resource={"type": "session"},
            reason="signed in",
        )
        return principal

    def sign_out(self, caller: Caller) -> None:
        self.recorder.record(
            "audit.signout", caller, resource={"type": "session"}, reason="signed out"
        )

    def active(self, principal_id: str, token_hint: str | None = None) -> Principal:
        """The principal of a session, while it is not revoked (and, with ``token_hint``,
        while its token is the one the session began with)."""
        try:
            found = self.store.get(principal_id)
        except NotFoundError:
            raise AuthenticationError(f"no principal {principal_id}") from None
        if found.revoked_at is not None:
            raise AuthenticationError(f"principal {principal_id} is revoked")
        if token_hint is not None and found.token_hint != token_hint:
            raise AuthenticationError(f"the token of principal {principal_id} was rotated")
        return found

    def list(self, caller: Caller) -> list[Principal]:
        """The principals the caller manages: an admin bound to a tenant sees only that
        tenant's."""
        self.recorder.authorize(caller, Permission.MANAGE_PRINCIPALS)
        return [found for found in self.store.list() if caller.sees(found.tenant)]

    def _managed(self, caller: Caller, principal_id: str) -> Principal:
        """The principal, if the caller manages it; another tenant's is refused (and the
        refusal recorded) as if it did not exist."""
        found = self.store.get(principal_id)
        if not caller.sees(found.tenant):
            self.recorder.refused(
                caller,
                f"a principal of tenant {caller.principal.tenant!r} manages only that "
                "tenant's principals",
                resource={"type": "principal", "id": principal_id},
            )
            raise NotFoundError(f"no principal {principal_id}")
        return found

    def exist(self) -> bool:
        """Whether any principal exists yet (a hint at start-up, no names)."""
        return bool(self.store.list())

    def create(
        self, caller: Caller, name: str, role: Role | str, tenant: str = ALL_TENANTS
    ) -> tuple[Principal, str]:
        """A new principal and its token, which is shown once and never stored."""
        self.recorder.authorize(caller, Permission.MANAGE_PRINCIPALS)
        if not caller.sees(tenant):
            reason = (
                f"a principal of tenant {caller.principal.tenant!r} may create principals "
                f"of that tenant only, not of {tenant!r}"
            )
            self.recorder.refused(caller, reason, resource={"type": "principal"})
            raise PermissionDeniedError(reason)
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
        self._managed(caller, principal_id)
        rotated, token = self.store.rotate(principal_id)
        self.recorder.record(
            "principal.rotate", caller, resource={"type": "principal", "id": rotated.id}
        )
        return rotated, token

    def revoke(self, caller: Caller, principal_id: str) -> Principal:
        self.recorder.authorize(caller, Permission.MANAGE_PRINCIPALS)
        self._managed(caller, principal_id)
        revoked = self.store.revoke(principal_id)
        self.recorder.record(
            "principal.revoke", caller, resource={"type": "principal", "id": revoked.id}
        )
        return revoked
