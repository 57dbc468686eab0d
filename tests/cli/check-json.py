#!/usr/bin/python3
"""Checks one `station ... --json` document against its schema.

    check-json.py SCHEMA.json DOCUMENT.json

The document must be exactly one JSON value and a newline (what the CLI
promises on stdout: docs/cli-json.md), valid under SCHEMA (python3-jsonschema,
the schema's own draft, formats checked). Exits 0 when it is, 1 with every
error on stderr when not."""
import json
import sys

import jsonschema


def main():
    if len(sys.argv) != 3:
        print("usage: check-json.py SCHEMA.json DOCUMENT.json", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    with open(sys.argv[2], "rb") as f:
        raw = f.read()
    if not raw.endswith(b"\n") or raw.count(b"\n") != 1:
        print("%s: not one line ending in a newline (%d newlines)" % (sys.argv[2], raw.count(b"\n")),
              file=sys.stderr)
        return 1
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        print("%s: not JSON: %s" % (sys.argv[2], e), file=sys.stderr)
        return 1
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        where = "/".join(str(p) for p in e.absolute_path) or "(document)"
        print("%s: %s: %s" % (sys.argv[2], where, e.message), file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
