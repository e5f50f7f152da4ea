"""The anchor for the parse benchmark: Python's email package over the same files, held in
memory, for the same time. Prints one line of JSON.

  --policy default   BytesParser(policy=email.policy.default), then reading what mailsave's
                     full parse reads: every address header as addresses, the date as a
                     datetime, the decoded subject and ids, the body as text (get_body +
                     get_content), each attachment's name and decoded size.
  --policy parse     BytesParser(policy=email.policy.default).parsebytes and nothing else:
                     the parse-only anchor of the decisions figure.
  --files LIST       read the file names from LIST (one a line) instead of walking folders,
                     so both sides parse exactly the same messages.
"""
import email.parser
import email.policy
import json
import os
import sys
import time

seconds = 3.0
policy_name = "default"
directories = []
file_list = None
args = sys.argv[1:]
while args:
    if args[0] == "--seconds":
        seconds = float(args[1]); args = args[2:]; continue
    if args[0] == "--policy":
        policy_name = args[1]; args = args[2:]; continue
    if args[0] == "--files":
        file_list = args[1]; args = args[2:]; continue
    directories.append(args.pop(0))

paths = []
if file_list:
    with open(file_list) as handle:
        paths = [line.rstrip("\n") for line in handle if line.strip()]
else:
    for directory in directories:
        for root, _, names in os.walk(directory):
            for name in sorted(names):
                if name.endswith((".raw", ".eml")):
                    paths.append(os.path.join(root, name))
corpus = []
for path in paths:
    with open(path, "rb") as handle:
        corpus.append(handle.read())

if policy_name not in ("default", "parse"):
    sys.exit("bench_parse_python.py: --policy is default or parse")
parser = email.parser.BytesParser(policy=email.policy.default)
ADDRESS_HEADERS = ("from", "sender", "to", "cc", "bcc", "reply-to")


def full(data):
    message = parser.parsebytes(data)
    sink = 0
    try:
        for name in ADDRESS_HEADERS:
            value = message[name]
            if value is not None:
                for address in value.addresses:
                    sink += len(address.addr_spec) + len(address.display_name)
        date = message["date"]
        if date is not None and date.datetime is not None:
            sink += date.datetime.year
        for name in ("subject", "message-id", "in-reply-to", "references", "auto-submitted"):
            value = message[name]
            if value is not None:
                sink += len(str(value))
        body = message.get_body(preferencelist=("plain", "html"))
        if body is not None:
            sink += len(body.get_content())
        for part in message.iter_attachments():
            part.get_filename()
            content = part.get_content()
            sink += len(content) if hasattr(content, "__len__") else 1
    except Exception:
        sink += 1  # a malformed part: Python gives up on it, as mailsave records a defect
    return sink


def parse_only(data):
    parser.parsebytes(data)
    return 1


work = full if policy_name == "default" else parse_only
for message in corpus:
    work(message)
passes = 0
start = time.perf_counter()
while True:
    for message in corpus:
        work(message)
    passes += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
        break
size = sum(len(m) for m in corpus)
print(json.dumps({"parser": "python-" + policy_name, "files": len(corpus), "messages": passes * len(corpus),
                  "bytes": passes * size, "seconds": elapsed,
                  "messages_per_second": int(passes * len(corpus) / elapsed),
                  "mb_per_second": round(passes * size / 1e6 / elapsed, 2)}))
