"""The anchor for the parse benchmark: Python's email.parser.BytesParser(policy=compat32)
over the same files, held in memory, for the same time. Prints one line of JSON."""
import email.parser
import email.policy
import json
import os
import sys
import time

seconds = 3.0
directories = []
args = sys.argv[1:]
while args:
    if args[0] == "--seconds":
        seconds = float(args[1])
        args = args[2:]
        continue
    directories.append(args.pop(0))

corpus = []
for directory in directories:
    for root, _, names in os.walk(directory):
        for name in sorted(names):
            if name.endswith((".raw", ".eml")):
                with open(os.path.join(root, name), "rb") as handle:
                    corpus.append(handle.read())
parser = email.parser.BytesParser(policy=email.policy.compat32)
for message in corpus:
    parser.parsebytes(message)
passes = 0
start = time.perf_counter()
while True:
    for message in corpus:
        parser.parsebytes(message)
    passes += 1
    elapsed = time.perf_counter() - start
    if elapsed >= seconds:
        break
size = sum(len(m) for m in corpus)
print(json.dumps({"parser": "python-compat32", "files": len(corpus), "messages": passes * len(corpus),
                  "bytes": passes * size, "seconds": elapsed,
                  "messages_per_second": int(passes * len(corpus) / elapsed),
                  "mb_per_second": round(passes * size / 1e6 / elapsed, 2)}))
