"""Validates JSON lines on stdin against schemas/decision.schema.json; prints one line per
invalid object and exits 1 if any was invalid."""
import json
import os
import sys

import jsonschema

schema_path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "schemas", "decision.schema.json")
with open(schema_path) as handle:
    validator = jsonschema.Draft202012Validator(json.load(handle))
bad = 0
count = 0
for line in sys.stdin:
    if not line.strip():
        continue
    count += 1
    document = json.loads(line)
    for error in validator.iter_errors(document):
        bad += 1
        print(f"{document.get('file')}: {error.message}")
print(f"{count} decisions, {bad} invalid")
sys.exit(1 if bad or not count else 0)
