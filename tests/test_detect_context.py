"""The organisation's context: rosters with night shifts, geography, ownership, first-seen
memory, files re-read when they change, and bad files refused with file and line."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from trailseal.detect.config import load_config
from trailseal.detect.context import Context, TransientMemory, load_roster
from trailseal.errors import ConfigError

HEADER = "user_id,unit,shift_start,shift_end,timezone\n"


def _enrich(context: Context, **fields: object) -> dict:
    found = {k.replace("__", "."): v for k, v in fields.items()}
    context.enrich(found)
    return {k: v for k, v in found.items() if k.startswith("enrich.")}


def test_night_shifts_cross_midnight_in_local_time(tmp_path: Path) -> None:
    (tmp_path / "roster.csv").write_text(HEADER + "n2,ICU,19:00,07:00,America/Chicago\n")
    context = Context(TransientMemory(), roster=tmp_path / "roster.csv")
    # 02:40 in Chicago (CDT, UTC-5) on 2 October: inside the shift that began at 19:00 on the 1st
    inside = _enrich(context, actor__id="n2", time="2026-10-02T07:40:00Z")
    assert inside == {
        "enrich.unit": "ICU",
        "enrich.shift": "2026-10-02T00:00Z",
        "enrich.on_shift": True,
    }
    # 13:00 in Chicago: off shift; the shift is the last one that began
    outside = _enrich(context, actor__id="n2", time="2026-10-02T18:00:00Z")
    assert outside["enrich.on_shift"] is False
    assert outside["enrich.shift"] == "2026-10-02T00:00Z"


def test_without_a_roster_the_unit_comes_from_the_event(tmp_path: Path) -> None:
    context = Context(TransientMemory())
    found = _enrich(context, actor__id="u1", actor__unit="3B", resource__unit="ICU")
    assert found == {"enrich.unit": "3B", "enrich.resource_unit": "ICU"}


def test_ownership_and_geography_and_first_seen(tmp_path: Path) -> None:
    (tmp_path / "owners.csv").write_text("resource_type,resource_id,unit\npatient,p-1,ICU\n")
    (tmp_path / "geo.csv").write_text(
        "network,country\n10.0.0.0/8,US\n10.9.0.0/16,CA\n2001:db8::/32,DE\n"
    )
    context = Context(
        TransientMemory(), ownership=tmp_path / "owners.csv", geography=tmp_path / "geo.csv"
    )
    first = _enrich(
        context, actor__id="u1", resource__type="patient", resource__id="p-1", source__ip="10.1.2.3"
    )
    assert first["enrich.resource_unit"] == "ICU"
    assert first["enrich.country"] == "US"
    assert first["enrich.new_country"] is False  # no history yet: not "new"
    longer = _enrich(context, actor__id="u1", source__ip="10.9.2.3")  # the longest prefix wins
    assert (longer["enrich.country"], longer["enrich.new_country"]) == ("CA", True)
    again = _enrich(context, actor__id="u1", source__ip="10.9.7.7")
    assert (again["enrich.new_country"], again["enrich.new_network"]) == (False, True)
    assert _enrich(context, actor__id="u2", source__ip="2001:db8::1")["enrich.country"] == "DE"
    assert "enrich.country" not in _enrich(context, actor__id="u2", source__ip="192.0.2.1")


def test_files_are_reread_when_they_change_without_a_restart(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(HEADER + "n1,3B,07:00,19:00,UTC\n")
    context = Context(TransientMemory(), roster=roster)
    assert _enrich(context, actor__id="n1")["enrich.unit"] == "3B"
    roster.write_text(HEADER + "n1,ICU,07:00,19:00,UTC\n")
    later = time.time() + 5
    os.utime(roster, (later, later))
    time.sleep(1.1)  # files are looked at once a second at most
    assert _enrich(context, actor__id="n1")["enrich.unit"] == "ICU"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("user,unit\nn1,3B\n", "the header must be"),
        (HEADER + "n1,3B,7am,19:00,UTC\n", "roster.csv:2"),
        (HEADER + "n1,3B,07:00,19:00,Mars/Olympus\n", "roster.csv:2"),
        ("\x00\xff\xfe", "roster.csv"),
    ],
)
def test_a_bad_roster_is_refused_naming_file_and_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_roster(roster)


def test_bad_geography_and_configuration_are_refused(tmp_path: Path) -> None:
    (tmp_path / "geo.csv").write_text("network,country\n10.0.0.0/33,US\n")
    with pytest.raises(ConfigError, match=r"geo\.csv:2"):
        Context(TransientMemory(), geography=tmp_path / "geo.csv")
    with pytest.raises(ConfigError, match="cannot read"):
        Context(TransientMemory(), roster=tmp_path / "missing.csv")
    (tmp_path / "detection.yaml").write_text("rules: [builtin]\nsinkz: []\n")
    with pytest.raises(ConfigError, match="unknown setting 'sinkz'"):
        load_config(tmp_path)
    (tmp_path / "detection.yaml").write_text("sinks: [{type: carrier-pigeon}]\n")
    with pytest.raises(ConfigError, match="type is one of"):
        load_config(tmp_path)
    (tmp_path / "detection.yaml").write_text("silence: [{source: ehr, expected: soon}]\n")
    with pytest.raises(ConfigError, match="not a duration"):
        load_config(tmp_path)
    (tmp_path / "detection.yaml").write_text("sinks: [{type: webhook, url: 'ftp://x/'}]\n")
    with pytest.raises(ConfigError, match="not an http"):
        load_config(tmp_path)
    (tmp_path / "detection.yaml").write_text("rules: [unclosed\n")
    with pytest.raises(ConfigError, match="bad YAML"):
        load_config(tmp_path)


def test_context_file_overrides_the_data_directory(tmp_path: Path) -> None:
    (tmp_path / "detection.yaml").write_text("context: {roster: a.csv}\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "context.yaml").write_text("roster: b.csv\ngeography: g.csv\n")
    config = load_config(tmp_path, context_file=str(other / "context.yaml"))
    assert (config.roster, config.geography) == (other / "b.csv", other / "g.csv")
    assert load_config(tmp_path).roster == tmp_path / "a.csv"  # the file itself is unchanged


def test_a_maxmind_database_gives_countries(tmp_path: Path) -> None:
    """A real MaxMind-format file, written with mmdb-writer and read with maxminddb."""
    from mmdb_writer import MMDBWriter  # noqa: PLC0415
    from netaddr import IPSet  # noqa: PLC0415

    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-Country")
    writer.insert_network(IPSet(["203.0.113.0/24"]), {"country": {"iso_code": "RO"}})
    writer.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "US"}})
    writer.to_db_file(str(tmp_path / "countries.mmdb"))
    context = Context(TransientMemory(), geography=tmp_path / "countries.mmdb")
    assert _enrich(context, actor__id="u", source__ip="203.0.113.77")["enrich.country"] == "RO"
    assert "enrich.country" not in _enrich(context, actor__id="u", source__ip="10.1.1.1")
    (tmp_path / "broken.mmdb").write_bytes(b"not a database")
    with pytest.raises(ConfigError, match="not a MaxMind database"):
        Context(TransientMemory(), geography=tmp_path / "broken.mmdb")
