"""Access: principals, their tokens, roles and tenants, and decisions with reasons."""

from trailseal.access.principals import HOST_PREFIX, Principal, PrincipalStore
from trailseal.access.roles import GRANTS, TOKEN_ROLES, Decision, Permission, Role, decide
from trailseal.access.tenants import ALL_TENANTS, entry_tenant, event_tenant, tenant_of

__all__ = [
    "ALL_TENANTS",
    "GRANTS",
    "HOST_PREFIX",
    "TOKEN_ROLES",
    "Decision",
    "Permission",
    "Principal",
    "PrincipalStore",
    "Role",
    "decide",
    "entry_tenant",
    "event_tenant",
    "tenant_of",
]
