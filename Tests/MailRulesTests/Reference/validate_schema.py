"""Validates rule files against the published JSON Schemas with Python's jsonschema.

Reads file paths from argv; prints {path: null when valid, else the first error message}.
A file under a `users/` folder is checked against user.schema.json, one under `tests/` or
`rule-tests/` against rule-test.schema.json, any other against rule-pack.schema.json. YAML that does not parse counts as invalid.
"""
import json
import os
import sys

import jsonschema
import yaml

root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "schemas")
schemas = {}
for name in ("rule-pack", "user", "rule-test"):
    with open(os.path.join(root, name + ".schema.json")) as handle:
        schemas[name] = json.load(handle)

result = {}
for path in sys.argv[1:]:
    if os.sep + "users" + os.sep in path:
        schema = schemas["user"]
    elif os.sep + "tests" + os.sep in path or os.sep + "rule-tests" + os.sep in path:
        schema = schemas["rule-test"]
    else:
        schema = schemas["rule-pack"]
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        jsonschema.Draft202012Validator(schema).validate(document)
        result[path] = None
    except (yaml.YAMLError, jsonschema.ValidationError) as error:
        result[path] = str(error).splitlines()[0]
print(json.dumps(result))
