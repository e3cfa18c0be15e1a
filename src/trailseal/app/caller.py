"""Who is asking: a principal, and where the request came from."""

from __future__ import annotations

from dataclasses import dataclass

from trailseal.access import ALL_TENANTS, Principal


@dataclass(frozen=True)
class Caller:
    """The principal an operation acts for, with what the log records about the request.

    ``service`` names the door in the log's own entries (``source.service``).
    """

    principal: Principal
    source_ip: str | None = None
    service: str = "trailseal"

    @classmethod
    def host(cls, user: str | None = None) -> Caller:
        """The command line on the host: ``host:<os user>``, every right, recorded."""
        return cls(Principal.host(user), None, "trailseal-cli")

    @property
    def id(self) -> str:
        return self.principal.id

    @property
    def sees_all(self) -> bool:
        """Whether the caller is bound to no tenant (``*``)."""
        return self.principal.tenant == ALL_TENANTS

    def sees(self, tenant: str | None) -> bool:
        return self.principal.sees(tenant)
