#!/usr/bin/env python3
"""Validates texts against a JSON Schema for the grammar tests.

stdin: {"schema": {...}, "samples": ["text", ...]}
stdout: one line per sample: "ok", or "invalid: <reason>".

Uses jsonschema's Draft202012Validator with a FormatChecker. The formats the
grammar supports (date, time, date-time, uuid) are checked here with strict
RFC 3339 / RFC 4122 rules, because jsonschema checks "time" only when the
optional rfc3339-validator package is installed.
"""
import datetime
import json
import re
import sys
import uuid

import jsonschema

checker = jsonschema.FormatChecker()

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))", re.ASCII)


def _date_ok(s):
    if not _DATE.fullmatch(s):
        return False
    datetime.date.fromisoformat(s)  # raises on 2023-02-30
    return True


def _time_ok(s):
    m = _TIME.fullmatch(s)
    if not m:
        return False
    hh, mm, ss = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if hh > 23 or mm > 59 or ss > 59:
        return False
    if m.group(6) is not None and (int(m.group(6)) > 23 or int(m.group(7)) > 59):
        return False
    return True


@checker.checks("date", raises=ValueError)
def is_date(s):
    return not isinstance(s, str) or _date_ok(s)


@checker.checks("time", raises=ValueError)
def is_time(s):
    return not isinstance(s, str) or _time_ok(s)


@checker.checks("date-time", raises=ValueError)
def is_date_time(s):
    if not isinstance(s, str):
        return True
    parts = re.split("[Tt]", s)
    return len(parts) == 2 and _date_ok(parts[0]) and _time_ok(parts[1])


@checker.checks("uuid", raises=ValueError)
def is_uuid(s):
    if not isinstance(s, str):
        return True
    if not re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", s):
        return False
    uuid.UUID(s)
    return True


def self_test():
    # The checks above must really reject bad values.
    assert not checker.conforms("2023-02-30", "date")
    assert not checker.conforms("2023-1-01", "date")
    assert checker.conforms("2024-02-29", "date")
    assert not checker.conforms("24:00:00Z", "time")
    assert not checker.conforms("12:00:00", "time")  # RFC 3339 needs an offset
    assert checker.conforms("23:59:59.5+08:00", "time")
    assert not checker.conforms("2023-01-01 12:00:00Z", "date-time")
    assert not checker.conforms("123e4567-e89b-12d3-a456-42661417400", "uuid")
    assert checker.conforms("123e4567-e89b-12d3-a456-426614174000", "uuid")


def main():
    self_test()
    data = json.load(sys.stdin)
    validator = jsonschema.Draft202012Validator(data["schema"], format_checker=checker)
    for text in data["samples"]:
        try:
            doc = json.loads(text)
        except Exception as e:  # noqa: BLE001
            print("invalid: not JSON: %s" % str(e).replace("\n", " "))
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            print("invalid: %s" % errors[0].message.replace("\n", " ")[:200])
        else:
            print("ok")


if __name__ == "__main__":
    main()
