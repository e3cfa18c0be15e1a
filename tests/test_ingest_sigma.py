"""SigmaHQ's CloudTrail rules, unmodified, over imported CloudTrail records.

The rules and the Stratus Red Team detonation records are read from the shared corpus
(never copied here). Which rule must fire on which record was worked out by hand from
each rule's detection, and is written beside each expectation; the background traffic
is benign activity made here, much of it the near miss of some rule (the same call
with the detail that rule's filter excludes), which must raise nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from cloudtrail_files import envelope, record, shared
from conftest import run_cli

CORPUS = shared() / "corpus"
RULES = CORPUS / "sigma-aws-cloudtrail"
STRATUS = CORPUS / "cloudtrail-stratus"

DISABLE_LOGGING = "4db60cc0-36fb-42b7-9b58-a5b53019fb74"
SNAPSHOT_EXFILTRATION = "abae8fec-57bd-4f87-aff6-6e3db989843d"
LOGIN_WITHOUT_MFA = "77caf516-34e5-4df9-b4db-20744fea0a60"
BACKDOOR_KEYS = "0a5177f4-6ca9-44c2-aacf-d3f3d8b6e4d2"
LOGIN_PROFILE_MODIFIED = "055fb148-60f8-462d-ad16-26926ce050f1"

# (Stratus technique file, eventName) -> the rules that must fire, and why.
EXPECTED = {
    # eventSource cloudtrail and eventName one of StopLogging, UpdateTrail, DeleteTrail
    ("aws.defense-evasion.cloudtrail-delete.json", "DeleteTrail"): {DISABLE_LOGGING},
    ("aws.defense-evasion.cloudtrail-stop.json", "StopLogging"): {DISABLE_LOGGING},
    # eventSource ec2 and eventName ModifySnapshotAttribute
    ("aws.exfiltration.ec2-share-ebs-snapshot.json", "ModifySnapshotAttribute"): {
        SNAPSHOT_EXFILTRATION
    },
    # ConsoleLogin, additionalEventData.MFAUsed "No" (Sigma compares 'NO' ignoring case),
    # responseElements.ConsoleLogin Success
    ("aws.initial-access.console-login-without-mfa.json", "ConsoleLogin"): {LOGIN_WITHOUT_MFA},
    # CreateAccessKey from iam, unless userIdentity.arn contains the literal text
    # "responseElements.accessKey.userName" (the rule has no fieldref modifier): every one
    ("aws.persistence.iam-backdoor-user.json", "CreateAccessKey"): {BACKDOOR_KEYS},
    ("aws.persistence.iam-create-admin-user.json", "CreateAccessKey"): {BACKDOOR_KEYS},
    # UpdateLoginProfile unless userIdentity.arn equals requestParameters.userName (a
    # fieldref): the arn is a full ARN, the user name a name, so never equal
    ("aws.privilege-escalation.iam-update-user-login-profile.json", "UpdateLoginProfile"): {
        LOGIN_PROFILE_MODIFIED
    },
}


def _need_corpus() -> None:
    if not RULES.is_dir() or not STRATUS.is_dir():
        pytest.skip(f"the shared CloudTrail corpus is not at {CORPUS}")


def _background() -> list[dict[str, Any]]:
    """Benign activity: routine calls, and near misses of the rules."""
    routine = [
        record(name, source)
        for name, source in [
            ("DescribeInstances", "ec2.amazonaws.com"),
            ("ListUsers", "iam.amazonaws.com"),
            ("GetObject", "s3.amazonaws.com"),
            ("PutObject", "s3.amazonaws.com"),
            ("StartLogging", "cloudtrail.amazonaws.com"),  # not Stop/Update/Delete
            ("DescribeTrails", "cloudtrail.amazonaws.com"),
            ("ModifyInstanceAttribute", "ec2.amazonaws.com"),
            ("CreateLoginProfile", "iam.amazonaws.com"),  # not from S3 Browser
            ("CreateUser", "iam.amazonaws.com"),  # not from S3 Browser
            ("GetCallerIdentity", "sts.amazonaws.com"),  # not from TruffleHog
            ("RunInstances", "ec2.amazonaws.com"),
            ("CreateDBInstance", "rds.amazonaws.com"),
        ]
        for _ in range(5)
    ]
    near_misses = [
        record(
            "ConsoleLogin",
            "signin.amazonaws.com",
            additionalEventData={"MFAUsed": "Yes"},
            responseElements={"ConsoleLogin": "Success"},
        ),
        record(
            "GetSigninToken",
            "signin.amazonaws.com",
            userAgent="Jersey/${project.version} (HttpUrlConnection 1.8)",
        ),
        record(
            "ListBuckets",
            "s3.amazonaws.com",
            userIdentity={"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/ci/run"},
        ),
        record(
            "PutBucketVersioning",
            "s3.amazonaws.com",
            requestParameters={"VersioningConfiguration": {"Status": "Enabled"}},
        ),
        record(
            "DescribeAccountAttributes",
            "ec2.amazonaws.com",
            userIdentity={"type": "Root", "accountId": "1"},
            eventType="AwsServiceEvent",
        ),
        record(
            "GetParameter",
            "ssm.amazonaws.com",
            userIdentity={"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/aws:ec2/i-1"},
        ),
    ]
    return routine + near_misses


def _index_ids(data: Path) -> dict[int, str]:
    out = run_cli("export", data=data, check=True).stdout
    lines = [orjson.loads(line) for line in out.splitlines()]
    return {line["entry"]["index"]: line["entry"]["event"]["id"] for line in lines}


def test_sigmahq_cloudtrail_rules_fire_on_exactly_the_attacks(tmp_path: Path) -> None:
    _need_corpus()
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    background = _background()
    (tmp_path / "background.json").write_bytes(envelope(background))
    run_cli("import", "cloudtrail", STRATUS, tmp_path / "background.json", data=data, check=True)

    watched = run_cli("watch", "--once", "--rules", RULES, data=data, check=True)
    assert b"57 rules" in watched.stderr
    alerts = json.loads(run_cli("alerts", "list", "--json", data=data, check=True).stdout)
    ids = _index_ids(data)
    fired: dict[str, set[str]] = {}
    for alert in alerts:
        for index in alert["evidence"]:
            fired.setdefault(ids[index], set()).add(alert["rule"])

    expected: dict[str, set[str]] = {}
    for file in sorted(STRATUS.glob("*.json")):
        for found in json.loads(file.read_bytes()):
            rules = EXPECTED.get((file.name, found["eventName"]))
            if rules:
                expected[found["eventID"]] = rules
    assert len(expected) == 7
    assert fired == expected  # nothing on the other attacks' records, nothing on background
    assert not {r["eventID"] for r in background} & set(fired)

    titles = {
        document["id"]: document["title"]
        for file in RULES.glob("*.yml")
        for document in [yaml.safe_load(file.read_text())]
    }
    for alert in alerts:
        assert alert["title"] == titles[alert["rule"]]  # the Sigma id and title, as published


def test_rules_test_reads_cloudtrail_fields_as_the_engine_does(tmp_path: Path) -> None:
    """`trailseal rules test` on an imported event agrees with the engine."""
    _need_corpus()
    data = tmp_path / "data"
    run_cli("init", data=data, check=True)
    run_cli("import", "cloudtrail", STRATUS, data=data, check=True)
    out = run_cli("export", data=data, check=True).stdout
    events = [
        dict(line["entry"]["event"], detail=line["detail"])
        for line in map(orjson.loads, out.splitlines())
        if line["entry"]["event"]["action"] == "aws.signin.ConsoleLogin"
    ]
    for event in events:
        event.pop("detail_commitment")
    with_mfa = orjson.loads(orjson.dumps(events[0]))
    with_mfa["id"] = "with-mfa"
    text = with_mfa["detail"]["cloudtrail"]
    with_mfa["detail"]["cloudtrail"] = text.replace('"MFAUsed":"No"', '"MFAUsed":"Yes"')
    assert with_mfa["detail"]["cloudtrail"] != text
    events.append(with_mfa)
    large = orjson.loads(orjson.dumps(events[0]))  # past the 64 KiB append limit, whole
    large["id"] = "large"
    large["detail"]["cloudtrail"] = text[:-1] + ',"pad":"' + "x" * 100_000 + '"}'
    events.append(large)
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    tested = run_cli(
        "rules",
        "test",
        LOGIN_WITHOUT_MFA,
        "--rules",
        RULES,
        "--events",
        tmp_path / "events.jsonl",
        check=True,
    )
    # The Detection Rule License asks for the author and a reference beside the matches.
    assert "author: " in tested.stderr.decode()
    assert "reference: https://" in tested.stderr.decode()
    lines = tested.stdout.decode().splitlines()
    assert lines[0].startswith("1: MATCH")
    assert "imported_from_cloudtrail=yes" in lines[0]
    assert lines[1].startswith("2:")
    assert "MATCH" not in lines[1]
    assert lines[2].startswith("3: MATCH")
