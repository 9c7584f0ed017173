"""Times as people read and type them: local time with the zone's abbreviation,
a zone that has none written as an offset, typed times on the node's clock,
daily windows that follow daylight saving, and an unknown zone refused by name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from node import clock_text
from node.config import CONFIG_FILE, Config, ConfigError, load, validate

# 2026-12-06 18:30:00 UTC (fictional incident times throughout)
AT = int(datetime(2026, 12, 6, 18, 30, tzinfo=UTC).timestamp() * 1000)
MIN = 60_000


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("UTC", "2026-12-06 18:30 UTC"),
        ("", "2026-12-06 18:30 UTC"),
        ("America/Mexico_City", "2026-12-06 12:30 CST"),
        ("Europe/Madrid", "2026-12-06 19:30 CET"),
        ("America/Bogota", "2026-12-06 13:30 UTC-05"),  # the zone's own name is "-05"
        ("Asia/Kolkata", "2026-12-07 00:00 IST"),
        ("Asia/Kathmandu", "2026-12-07 00:15 UTC+05:45"),
    ],
)
def test_an_instant_is_shown_in_local_time_with_its_zone(name: str, shown: str) -> None:
    assert clock_text.when(AT, clock_text.zone(name)) == shown


def test_seconds_and_never() -> None:
    assert (
        clock_text.when(AT + 5_000, clock_text.zone("America/Mexico_City"), seconds=True)
        == "2026-12-06 12:30:05 CST"
    )
    assert clock_text.when(0) == "—" and clock_text.when(None, never="never") == "never"


def test_daylight_saving_changes_the_abbreviation() -> None:
    madrid = clock_text.zone("Europe/Madrid")
    july = int(datetime(2026, 7, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
    assert clock_text.when(july, madrid) == "2026-07-01 12:00 CEST"


def test_a_typed_time_without_an_offset_is_on_the_node_clock() -> None:
    mexico = clock_text.zone("America/Mexico_City")
    assert clock_text.parse("2026-12-06T12:30", mexico) == AT
    assert clock_text.parse("2026-12-06 12:30", mexico) == AT
    assert clock_text.parse("2026-12-06T19:30+01:00", mexico) == AT  # an offset wins
    assert clock_text.parse("mañana", mexico) is None


def test_quiet_hours_follow_the_wall_clock_across_daylight_saving() -> None:
    """22:00-07:00 in Madrid: on the night the clocks go forward (29 March 2026,
    02:00 → 03:00) the window still ends at 07:00 on the wall, now 05:00 UTC
    instead of 06:00."""
    madrid = clock_text.zone("Europe/Madrid")
    night = (22 * 60, 7 * 60)
    before = int(datetime(2026, 3, 28, 22, 30, tzinfo=UTC).timestamp() * 1000)  # 23:30 CET
    assert clock_text.local_minutes_end(before, night, madrid) == int(
        datetime(2026, 3, 29, 5, 0, tzinfo=UTC).timestamp() * 1000
    )
    winter = int(datetime(2026, 1, 10, 3, 0, tzinfo=UTC).timestamp() * 1000)  # 04:00 CET
    assert clock_text.local_minutes_end(winter, night, madrid) == int(
        datetime(2026, 1, 10, 6, 0, tzinfo=UTC).timestamp() * 1000
    )
    noon = int(datetime(2026, 1, 10, 11, 0, tzinfo=UTC).timestamp() * 1000)
    assert clock_text.local_minutes_end(noon, night, madrid) == 0
    assert clock_text.clock(before, madrid) == "23:30 CET"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Mars/Olympus_Mons", "timezone: unknown time zone 'Mars/Olympus_Mons': use an IANA name such as"),
        ("CST6CDT/../../etc", "timezone: unknown time zone"),
        (-6, 'timezone: an IANA name in quotes, such as "America/Mexico_City"'),
    ],
)
def test_an_unknown_time_zone_is_a_config_error_naming_it(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        validate(Config(name="Brigada Ejemplo", timezone=value))  # type: ignore[arg-type]
    validate(Config(name="Brigada Ejemplo", timezone="America/Mexico_City"))


def test_the_node_time_zone_is_read_from_config_toml(tmp_path: Path) -> None:
    home = tmp_path
    (home / CONFIG_FILE).write_text('name = "Brigada Ejemplo"\ntimezone = "Atlantis/Capital"\n', "utf-8")
    with pytest.raises(ConfigError, match="unknown time zone 'Atlantis/Capital'"):
        load(home)
    (home / CONFIG_FILE).write_text('name = "Brigada Ejemplo"\ntimezone = "America/Bogota"\n', "utf-8")
    assert load(home).timezone == "America/Bogota"


def test_init_takes_the_node_time_zone_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from node.cli import cli

    refused = CliRunner().invoke(
        cli,
        [
            "--home",
            str(tmp_path / "a"),
            "init",
            "--name",
            "Brigada Ejemplo",
            "--no-passphrase",
            "--kdf-profile",
            "interactive",
            "--timezone",
            "Atlantis/Capital",
        ],
    )
    assert refused.exit_code == 1 and "timezone: unknown time zone 'Atlantis/Capital'" in refused.output
    assert not (tmp_path / "a").exists()  # nothing half-made
    made = CliRunner().invoke(
        cli,
        [
            "--home",
            str(tmp_path / "b"),
            "init",
            "--name",
            "Brigada Ejemplo",
            "--no-passphrase",
            "--kdf-profile",
            "interactive",
            "--timezone",
            "America/Lima",
        ],
    )
    assert made.exit_code == 0, made.output
    assert load(tmp_path / "b").timezone == "America/Lima"


def test_a_stored_zone_the_zone_data_no_longer_knows_falls_back() -> None:
    """A responder's page is never lost to a zone name that an update of the
    zone data dropped: the node's zone is used instead."""
    mexico = clock_text.zone("America/Mexico_City")
    assert clock_text.zone_or("Gone/Zone", mexico) is mexico
    assert clock_text.zone_or("", mexico) is mexico
    assert clock_text.zone_or("Europe/Madrid", mexico) == clock_text.zone("Europe/Madrid")
