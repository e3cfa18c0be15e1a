"""Access: principals, their tokens, roles and tenants, and decisions with reasons."""

from trailseal.access.actions import LOG_SUBMITTER, RESERVED, reserved, trusted
from trailseal.access.principals import HOST_PREFIX, Principal, PrincipalStore
from trailseal.access.roles import GRANTS, TOKEN_ROLES, Decision, Permission, Role, decide
from trailseal.access.tenants import ALL_TENANTS, entry_tenant, event_tenant, tenant_of

__all__ = [
    "ALL_TENANTS",
    "GRANTS",
    "HOST_PREFIX",
    "LOG_SUBMITTER",
    "RESERVED",
    "TOKEN_ROLES",
    "Decision",
    "Permission",
    "Principal",
    "PrincipalStore",
    "Role",
    "decide",
    "entry_tenant",
    "event_tenant",
    "reserved",
    "tenant_of",
    "trusted",
]
