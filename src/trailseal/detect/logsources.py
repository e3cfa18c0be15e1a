"""Log sources other systems' rules name, and how their fields map onto entries.

SigmaHQ publishes rules for AWS CloudTrail in CloudTrail's own field names
(``eventName``, ``userIdentity.type``, ``requestParameters.…``) under
``logsource: {product: aws, service: cloudtrail}``. The CloudTrail importer keeps each
record whole in ``detail.cloudtrail`` (:mod:`trailseal.ingest.cloudtrail`), so a
pySigma processing pipeline, applied to such rules only, reads every field there
(``eventName`` becomes ``detail.cloudtrail.eventName``) and adds one condition: the
entry is an imported AWS event (``action`` starts with ``aws.``), so a rule made only
of negations cannot match the organisation's own events. The rules run as published.
"""

from __future__ import annotations

from sigma.processing.conditions import LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    AddFieldnamePrefixTransformation,
)
from sigma.rule import SigmaRule

CLOUDTRAIL_FIELDS = "detail.cloudtrail."
CLOUDTRAIL_GATE = "imported_from_cloudtrail"  # the added selection's name, shown in "why"


def _cloudtrail() -> list[RuleProcessingCondition]:
    return [LogsourceCondition(product="aws", service="cloudtrail")]


def pipeline() -> ProcessingPipeline:
    """The processing every loaded rule goes through (one per load: pySigma's items
    keep state)."""
    return ProcessingPipeline(
        name="trailseal log sources",
        priority=10,
        items=[
            ProcessingItem(
                AddFieldnamePrefixTransformation(CLOUDTRAIL_FIELDS),
                rule_conditions=_cloudtrail(),
                identifier="cloudtrail_fields",
            ),
            ProcessingItem(
                AddConditionTransformation({"action|startswith": "aws."}, name=CLOUDTRAIL_GATE),
                rule_conditions=_cloudtrail(),
                identifier="cloudtrail_gate",
            ),
        ],
    )


def apply(rule: SigmaRule) -> SigmaRule:
    """``rule`` with its log source's mapping applied (unchanged for trailseal's own)."""
    pipeline().apply(rule)
    return rule
