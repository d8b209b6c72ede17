#!/usr/bin/env python3
"""The known-function table of tools/heddle-stack is not too small here.

Usage: known_table_test.py <measure_known> <measure_known linked -z now> <known_functions.json>

Runs both measure_known programs (each function cold, in a process of its
own) and fails for any function whose measured stack use exceeds the
table's figure for that binding, or that the table lacks.
"""
import json
import subprocess
import sys

lazy_program, now_program, table_path = sys.argv[1:4]
with open(table_path) as handle:
    table = json.load(handle)["functions"]
failures = []
count = 0
for binding, program in (("lazy", lazy_program), ("now", now_program)):
    measured = json.loads(subprocess.run([program], capture_output=True, text=True, check=True).stdout)["functions"]
    count = len(measured)
    for name, bytes_used in sorted(measured.items()):
        if name not in table:
            failures.append(f"{name}: measured {bytes_used} bytes, not in the table")
        elif bytes_used > table[name][binding]:
            failures.append(f"{name} ({binding}): measured {bytes_used} bytes, the table says {table[name][binding]}")
for line in failures:
    print("known_functions.json too small:", line)
print(f"{count} functions measured twice (lazy, -z now), {len(failures)} above the table")
sys.exit(1 if failures else 0)
