#!/usr/bin/env python3
"""The known-function table of tools/heddle-stack says what each figure rests
on, and no figure is too small here.

Usage: known_table_test.py <measure_known> <measure_known linked -z now> <known_functions.json>

First the table is read with heddle-stack's own loader, which refuses an
entry with no basis, no reason, or figures that do not fit its basis; the
loader is shown to refuse such entries, and the printf family to be
input-dependent throughout, its __*_chk variants included. Then both
measure_known programs run (each function cold, in a process of its own),
and the test fails for any function whose measured stack use exceeds the
table's figure for that binding, that the table lacks, or that has a figure
(and is not proven) but was not measured.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

lazy_program, now_program, table_path = sys.argv[1:4]
sys.path.insert(0, os.path.dirname(os.path.abspath(table_path)))
import heddle_stack  # noqa: E402  (the tool beside the table)

failures = []
try:
    table = heddle_stack.load_known_table(table_path)
except heddle_stack.ToolError as error:
    print("known_functions.json:", error)
    sys.exit(1)

# The loader enforces each entry's basis: an entry without one, without its
# reason, or with figures its basis does not allow is an error.
with open(table_path) as handle:
    document = json.load(handle)
broken_entries = {
    "no basis": {"now": 64, "lazy": 64, "why": "a reason"},
    "an unknown basis": {"basis": "measured", "now": 64, "lazy": 64, "why": "a reason"},
    "no reason": {"basis": "input-independent", "now": 64, "lazy": 64},
    "a figure for an input-dependent function": {"basis": "depends on input", "now": 64, "why": "a reason"},
    "a bound with one figure": {"basis": "input-independent", "now": 64, "why": "a reason"},
}
with tempfile.TemporaryDirectory() as scratch:
    for what, entry in broken_entries.items():
        broken = copy.deepcopy(document)
        broken["functions"]["broken_function"] = entry
        path = os.path.join(scratch, "known.json")
        with open(path, "w") as handle:
            json.dump(broken, handle)
        try:
            heddle_stack.load_known_table(path)
            failures.append(f"the loader accepted an entry with {what}")
        except heddle_stack.ToolError as error:
            if "broken_function" not in str(error):
                failures.append(f"the loader's error for an entry with {what} does not name it: {error}")

# The printf family, as programs call it and as GCC emits it with
# -D_FORTIFY_SOURCE, is input-dependent; the unformatted output GCC turns
# simple printf calls into keeps a measured bound.
for name in ("printf fprintf sprintf snprintf vprintf vfprintf vsprintf vsnprintf dprintf vdprintf asprintf vasprintf "
             "__printf_chk __fprintf_chk __sprintf_chk __snprintf_chk __vprintf_chk __vfprintf_chk __vsprintf_chk "
             "__vsnprintf_chk __dprintf_chk __vdprintf_chk __asprintf_chk __vasprintf_chk").split():
    if table.get(name, {}).get("basis") != "depends on input":
        failures.append(f"{name}: formatted output, but the table has {table.get(name, {}).get('basis', 'no entry')}")
for name in ("puts", "fputs", "fwrite", "putchar", "fputc"):
    if table.get(name, {}).get("basis") != "input-independent":
        failures.append(f"{name}: unformatted output, but the table has {table.get(name, {}).get('basis', 'no entry')}")

count = 0
for binding, program in (("lazy", lazy_program), ("now", now_program)):
    measured = json.loads(subprocess.run([program], capture_output=True, text=True, check=True).stdout)["functions"]
    count = len(measured)
    for name, bytes_used in sorted(measured.items()):
        if name not in table:
            failures.append(f"{name}: measured {bytes_used} bytes, not in the table")
        elif binding not in table[name]:
            failures.append(f"{name}: measured {bytes_used} bytes, but the table has no figure ({table[name]['basis']})")
        elif bytes_used > table[name][binding]:
            failures.append(f"{name} ({binding}): measured {bytes_used} bytes, the table says {table[name][binding]}")
    for name, entry in sorted(table.items()):
        if entry["basis"] in ("input-independent", "bounded for all inputs") and name not in measured:
            failures.append(f"{name} ({binding}): a figure of {entry[binding]} bytes that measure_known does not measure")
for line in failures:
    print("known_functions.json:", line)
bases = {}
for entry in table.values():
    bases[entry["basis"]] = bases.get(entry["basis"], 0) + 1
print(f"{len(table)} entries ({', '.join(f'{n} {b}' for b, n in sorted(bases.items()))}); "
      f"{count} functions measured twice (lazy, -z now); {len(failures)} failures")
sys.exit(1 if failures else 0)
