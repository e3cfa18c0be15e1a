"""Access: principals, their tokens, roles and tenants, and decisions with reasons."""

from trailseal.access.principals import ALL_TENANTS, Principal, PrincipalStore
from trailseal.access.roles import GRANTS, Decision, Permission, Role, decide

__all__ = [
    "ALL_TENANTS",
    "GRANTS",
    "Decision",
    "Permission",
    "Principal",
    "PrincipalStore",
    "Role",
    "decide",
]
