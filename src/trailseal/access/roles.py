"""Roles and what each may do (separation of duties). Every decision carries a reason.

No role may modify or delete an entry: there is no such permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    WRITER = "writer"  # applications: append only
    AUDITOR = "auditor"  # read, search, export, prove, verify
    PRIVACY = "privacy"  # erase details, with a reason
    SECURITY = "security"  # read entries; rules and alerts (detection)
    ADMIN = "admin"  # principals and configuration; never entries
    # Whoever runs `trailseal` on the host holding the data directory and the key already
    # has every file; the role says so, and its reads are recorded like anyone's.
    HOST = "host"


class Permission(StrEnum):
    APPEND = "append"
    READ = "read"
    EXPORT = "export"
    PROVE = "prove"
    VERIFY = "verify"
    ERASE = "erase"
    CHECKPOINT = "checkpoint"
    MANAGE_PRINCIPALS = "manage-principals"
    READ_ALERTS = "read-alerts"
    MANAGE_ALERTS = "manage-alerts"
    REPORT = "report"
    RETENTION = "retention"  # see what retention would do (counts, no event contents)
    HOLD = "hold"  # place and release legal holds
    PURGE = "purge"  # run retention: seal into the cold tier and purge


_GRANTED: dict[Permission, frozenset[Role]] = {
    Permission.APPEND: frozenset({Role.WRITER}),
    Permission.READ: frozenset({Role.AUDITOR, Role.SECURITY}),
    Permission.EXPORT: frozenset({Role.AUDITOR}),
    Permission.PROVE: frozenset({Role.AUDITOR}),
    Permission.VERIFY: frozenset({Role.AUDITOR}),
    Permission.ERASE: frozenset({Role.PRIVACY}),
    # A checkpoint holds a size and a root, no event data: every principal may fetch it.
    Permission.CHECKPOINT: frozenset(Role),
    Permission.MANAGE_PRINCIPALS: frozenset({Role.ADMIN}),
    Permission.READ_ALERTS: frozenset({Role.SECURITY, Role.AUDITOR}),
    Permission.MANAGE_ALERTS: frozenset({Role.SECURITY}),  # acknowledge and resolve
    # Reports read entries (and bundle them with proofs): those who may read.
    Permission.REPORT: frozenset({Role.AUDITOR, Role.SECURITY}),
    # A retention plan counts entries per policy and shows no event: those who answer for
    # keeping records (privacy, auditors) and who configure the policies (admins).
    Permission.RETENTION: frozenset({Role.PRIVACY, Role.AUDITOR, Role.ADMIN}),
    Permission.HOLD: frozenset({Role.PRIVACY}),
    # Running retention removes events for good (with a signed receipt): the privacy
    # officer, who answers for deleting on time, and the host (`serve`'s schedule).
    Permission.PURGE: frozenset({Role.PRIVACY}),
}
# The role table: the one place that says who may do what.
GRANTS: dict[Permission, frozenset[Role]] = {
    permission: roles | {Role.HOST} for permission, roles in _GRANTED.items()
}
# Roles a principal with a token may hold; `host` is only ever the local command line.
TOKEN_ROLES = tuple(role for role in Role if role is not Role.HOST)


@dataclass(frozen=True)
class Decision:
    """An access decision and why; the reason is what the log records."""

    allowed: bool
    reason: str


def decide(role: Role, permission: Permission) -> Decision:
    allowed_roles = GRANTS[permission]
    if role in allowed_roles:
        return Decision(allowed=True, reason=f"role {role} may {permission}")
    names = ", ".join(sorted(allowed_roles))
    return Decision(allowed=False, reason=f"role {role} may not {permission}; only {names} may")
