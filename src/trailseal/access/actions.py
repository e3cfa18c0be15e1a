"""The log's own namespaces: actions only the log writes, and when to believe one.

``audit.*`` (its reads, refusals, verifications), ``alert.*``, ``detail.*`` (erasures),
``principal.*``, ``report.*`` (reports produced), ``retention.*`` (legal holds) and
``trailseal.*`` are written by the log alone; a writer, and the command line's
``append``, are refused them. Every entry
names its submitter, so an entry in those namespaces is believed (by verification and
detection) only when the log itself submitted it. ``auth.*`` stays the applications' own.
"""

from __future__ import annotations

LOG_SUBMITTER = "trailseal"  # the log itself: its own records (reads, erasures, alerts)
RESERVED = ("audit", "alert", "detail", "principal", "report", "retention", "trailseal")


def reserved(action: str) -> bool:
    """Whether ``action`` is in one of the log's own namespaces."""
    return action.split(".", 1)[0] in RESERVED


def trusted(action: str, submitter: str | None) -> bool:
    """Whether an entry with this action and submitter may be believed as what it says.

    Entries written before entries named their submitter have none: the log's own
    records of that time are believed, except ``trailseal.*`` and ``retention.*``, which
    the log never wrote before entries named their submitter (an application could
    then append ``retention.*`` itself)."""
    if not reserved(action):
        return True
    if submitter is None:
        return not action.startswith(("trailseal.", "retention."))
    return submitter == LOG_SUBMITTER


def refusal(action: str) -> str:
    """Why a submitter other than the log may not append ``action``."""
    namespace = action.split(".", 1)[0]
    return (
        f"{action!r} is in {namespace}.*, one of the log's own namespaces "
        f"({', '.join(f'{n}.*' for n in RESERVED)}); only the log writes those"
    )
