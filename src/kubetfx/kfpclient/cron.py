"""The cron grammar of KFP's scheduler, checked before any request reaches the server."""

from __future__ import annotations

import re

from kubetfx.errors import ConfigError


class ScheduleError(ConfigError):
    """A schedule file or a cron expression is invalid."""


_CRON_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
_CRON_NAMES = {
    "month": {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    "day of week": {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EVERY = re.compile(r"^@every (\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
CRON_HELP = (
    "6 fields 'SECOND MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK' (KFP's format), or standard "
    "5-field cron 'MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK' (kubetfx adds second 0), or "
    "@hourly/@daily/@weekly/@monthly/@yearly/@every DURATION"
)


def kfp_cron(expression: str, schedule: str = "") -> str:
    """The cron expression KFP wants (6 fields, seconds first), validated before any request.

    KFP's scheduler parses cron with robfig/cron (v1): 6 fields, seconds first, ``*``, ``?``,
    lists, ranges, ``/step``, month and weekday names, day of week 0-6 (Sunday 0), and the
    ``@`` descriptors. A standard 5-field expression gets a leading ``0`` seconds field.
    (croniter is not used: it puts seconds last and accepts a 7 for Sunday, which KFP rejects.)

    Raises:
        ScheduleError: naming the schedule, the field and the offending value.
    """
    where = f"schedule {schedule!r}: " if schedule else ""
    text = " ".join(str(expression).split())
    if text.startswith("@"):
        if text in _DESCRIPTORS or _EVERY.match(text):
            return text
        raise ScheduleError(
            f"{where}cron {expression!r} is not a known descriptor; use {', '.join(_DESCRIPTORS)} "
            "or '@every 1h30m'"
        )
    parts = text.split(" ") if text else []
    if len(parts) == 5:
        parts = ["0", *parts]
    elif len(parts) != 6:
        raise ScheduleError(f"{where}cron {expression!r} has {len(parts)} fields; use {CRON_HELP}")
    for (name, low, high), value in zip(_CRON_FIELDS, parts):
        problem = _cron_field_problem(name, low, high, value)
        if problem:
            raise ScheduleError(f"{where}cron {expression!r}: {name} field {value!r} {problem}")
    return " ".join(parts)


def _cron_field_problem(name: str, low: int, high: int, value: str) -> str | None:
    names = _CRON_NAMES.get(name, {})

    def number(token: str) -> int | None:
        if token.isdigit():
            return int(token)
        return names.get(token.lower())

    for item in value.split(","):
        base, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            return f"has step {step!r}; a step is a whole number above 0"
        if base in ("*", "?"):
            continue
        ends = base.split("-", 1)
        numbers = [number(token) for token in ends]
        if not base or None in numbers:
            hint = f", or names ({'/'.join(list(names)[:3])}...)" if names else ""
            return f"is not a number{hint}, '*', a range A-B or a list A,B"
        if any(not low <= n <= high for n in numbers):  # type: ignore[operator]
            sunday = "; Sunday is 0" if name == "day of week" else ""
            return f"is out of range {low}-{high}{sunday}"
        if len(numbers) == 2 and numbers[0] > numbers[1]:  # type: ignore[operator]
            return "is a range that ends before it starts"
    return None
