#!/usr/bin/env python3
"""The known-function table of tools/heddle-stack is not too small here.

Usage: known_table_test.py <measure_known binary> <known_functions.json>

Runs measure_known (each function cold, in a process of its own) and fails
for any function whose measured stack use exceeds the table's lazy-binding
figure (this test binary is linked lazily), or that the table lacks.
"""
import json
import subprocess
import sys

measure, table_path = sys.argv[1:3]
measured = json.loads(subprocess.run([measure], capture_output=True, text=True, check=True).stdout)["functions"]
with open(table_path) as handle:
    table = json.load(handle)["functions"]
failures = []
for name, bytes_used in sorted(measured.items()):
    if name not in table:
        failures.append(f"{name}: measured {bytes_used} bytes, not in the table")
    elif bytes_used > table[name]["lazy"]:
        failures.append(f"{name}: measured {bytes_used} bytes, the table says {table[name]['lazy']}")
for line in failures:
    print("known_functions.json too small:", line)
print(f"{len(measured)} functions measured, {len(failures)} above the table")
sys.exit(1 if failures else 0)
