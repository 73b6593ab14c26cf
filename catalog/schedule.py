"""How often an EventBridge schedule runs, for the cost of scheduled tasks (an estimate)."""

from __future__ import annotations

import re

_MINUTES = {"minute": 1, "minutes": 1, "hour": 60, "hours": 60, "day": 1440, "days": 1440}


def runs_per_month(schedule: str) -> float:
    """Runs a month of an EventBridge `rate(...)` or `cron(...)` expression (an estimate)."""
    rate = re.fullmatch(r"rate\((\d+) (\w+)\)", schedule)
    if rate:
        every = max(1, int(rate.group(1))) * _MINUTES[rate.group(2)]
        return round(730 * 60 / every, 1)
    fields = schedule.removeprefix("cron(").removesuffix(")").split()
    if len(fields) != 6:
        return 30.0
    minute, hour, dom, month, dow, _year = fields
    per_day = _count(minute, 60) * _count(hour, 24)
    if dom not in ("*", "?"):
        days = _count(dom, 31)
    elif dow not in ("*", "?"):
        days = _count(dow, 7) * 4.35
    else:
        days = 30.4
    return round(per_day * days * _count(month, 12) / 12, 1)


def _count(field: str, size: int) -> float:
    """How many values one cron field selects out of `size`."""
    total = 0.0
    for part in field.split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            span = size
        elif "-" in base:
            low, _, high = base.partition("-")
            span = _int(high, size) - _int(low, 0) + 1
        else:
            span = size - _int(base, 0) if step else 1
        total += max(1, span // max(1, _int(step, 1))) if step else max(1, span)
    return min(total, size)


_NAMES = {
    name: i + 1
    for names in (
        ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    )
    for i, name in enumerate(names)
}


def _int(text: str, default: int) -> int:
    if text.isdigit():
        return int(text)
    return _NAMES.get(text.upper(), default)
