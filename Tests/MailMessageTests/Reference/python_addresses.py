"""Reference address extraction: Python's email package with policy.default.

Prints one JSON object: {path: {header: [[display_name, addr_spec], ...] or {"error": str}}}.
Used by ReferenceComparisonTests to compare mailsave's address parser with an independent one.
"""
import email
import email.policy
import json
import sys

HEADERS = ["from", "sender", "to", "cc", "bcc", "reply-to"]

if sys.argv[1:2] == ["--values"]:
    # Raw To: values (a JSON list on stdin), each parsed as its own header.
    out = []
    for value in json.load(sys.stdin):
        message = email.message_from_bytes(b"To: " + value.encode("utf-8") + b"\n\n", policy=email.policy.default)
        try:
            out.append([[a.display_name, a.addr_spec] for a in message["to"].addresses])
        except Exception as error:
            out.append({"error": type(error).__name__})
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.exit(0)

result = {}
for path in sys.argv[1:]:
    with open(path, "rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    entry = {}
    for name in HEADERS:
        addresses = []
        try:
            values = message.get_all(name) or []
            for value in values:
                for address in value.addresses:
                    addresses.append([address.display_name, address.addr_spec])
            entry[name] = addresses
        except Exception as error:  # a header Python cannot parse
            entry[name] = {"error": type(error).__name__}
    result[path] = entry
json.dump(result, sys.stdout, ensure_ascii=False)
