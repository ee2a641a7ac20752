"""The cron grammar of KFP's scheduler: what kfp_cron sends, and what it refuses and why."""

from __future__ import annotations

import pytest

from kubetfx.kfpclient.cron import CRON_HELP, ScheduleError, kfp_cron


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        ("30 2 * * 1-5", "0 30 2 * * 1-5"),  # standard 5 fields: second 0 added
        ("0 30 2 * * 1-5", "0 30 2 * * 1-5"),  # KFP's 6 fields, seconds first
        ("  0   0  9 ? *  MON-FRI ", "0 0 9 ? * MON-FRI"),  # spaces squeezed, names and '?'
        ("*/15 * * * *", "0 */15 * * * *"),
        ("0,30 8-18/2 1 jan,Jul sun", "0 0,30 8-18/2 1 jan,Jul sun"),
        ("0 0 0 31 12 6", "0 0 0 31 12 6"),  # every field at its top
        ("@daily", "@daily"),
        ("@annually", "@annually"),
        ("@every 1h30m", "@every 1h30m"),
        ("@every 1.5s", "@every 1.5s"),
    ],
)
def test_valid_expressions(written: str, sent: str) -> None:
    assert kfp_cron(written) == sent


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "cron '' has 0 fields; use " + CRON_HELP),
        ("0 0 * *", "cron '0 0 * *' has 4 fields; use 6 fields"),
        ("0 0 0 0 * * *", "has 7 fields"),
        (
            "0 0 * * 1/0",
            "cron '0 0 * * 1/0': day of week field '1/0' has step '0'; a step is a whole number above 0",
        ),
        ("0 0 * * */x", "day of week field '*/x' has step 'x'"),
        ("0 0 32 * *", "day of month field '32' is out of range 1-31"),
        ("0 0 * * 7", "day of week field '7' is out of range 0-6; Sunday is 0"),
        ("60 * * * *", "minute field '60' is out of range 0-59"),
        ("0 0 0 * 0 *", "month field '0' is out of range 1-12"),
        ("0 5-1 * * *", "hour field '5-1' is a range that ends before it starts"),
        ("0 0 * JANUARY *", "month field 'JANUARY' is not a number, or names (jan/feb/mar...), '*'"),
        ("x 0 * * *", "minute field 'x' is not a number, '*', a range A-B or a list A,B"),
        ("0 0 1, * *", "day of month field '1,' is not a number"),
        ("@sometimes", "cron '@sometimes' is not a known descriptor; use @yearly, @annually"),
        ("@every 1d", "is not a known descriptor"),  # Go durations stop at hours
    ],
)
def test_invalid_expressions_say_which_field_and_why(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        kfp_cron(expression)
    assert message in str(caught.value)


def test_errors_name_the_schedule() -> None:
    with pytest.raises(ScheduleError, match=r"^schedule 'nightly': cron '0 0 32 \* \*': day of month"):
        kfp_cron("0 0 32 * *", "nightly")
    with pytest.raises(ScheduleError, match=r"^cron "):
        kfp_cron("0 0 32 * *")


def test_a_schedule_error_is_a_config_error() -> None:
    from kubetfx.errors import ConfigError

    assert issubclass(ScheduleError, ConfigError)
