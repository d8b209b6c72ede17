#!/usr/bin/env python3
"""Rewrites known_functions.json from two fresh measurements.

Usage: update_known_table.py <measure_known> <measure_known linked -z now>

Both programs are tools/heddle-stack/measure_known.cpp; the check preset
builds them as tests/tools/heddle_stack_measure_known and
heddle_stack_measure_known_now. Each figure becomes the measurement plus
25%, rounded up to 64 bytes; a lazy figure is never lowered (see below).
Only figures change: each entry keeps its basis and its reason, entries
with the basis "proven" or "depends on input" (which has no figure) are
kept as they are, and a function the table lacks is not added: it needs a
basis, which a measurement cannot give (add it by hand, then run this).
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# operator new and delete run malloc and free: they get the larger figure.
SAME_AS = {"_Znwm": "malloc", "_Znam": "malloc", "_ZnwmSt11align_val_t": "malloc",
           "_ZdaPv": "free", "_ZdlPvmSt11align_val_t": "free"}


def measure(program):
    return json.loads(subprocess.run([program], capture_output=True, text=True, check=True).stdout)["functions"]


def with_margin(bytes_used):
    return (int(bytes_used * 1.25) + 63) // 64 * 64


def main():
    lazy_program, now_program = sys.argv[1:3]
    lazy, now = measure(lazy_program), measure(now_program)
    path = os.path.join(HERE, "known_functions.json")
    with open(path) as handle:
        table = json.load(handle)
    fresh = {name: entry for name, entry in table["functions"].items()
             if entry["basis"] in ("proven", "depends on input")}
    for name in sorted(now):
        if name not in table["functions"]:
            print(f"{name} was measured but is not in the table: add it with its basis", file=sys.stderr)
            continue
        n, l = now[name], lazy[name]
        if name in SAME_AS:
            n, l = max(n, now[SAME_AS[name]]), max(l, lazy[SAME_AS[name]])
        lazy_figure = with_margin(max(l, n))
        # The harness's own spawn path may bind a function through the PLT
        # before the measured call (heddle's control-block depot takes a
        # static guard), hiding the resolver's 3 KiB: a re-measurement never
        # lowers a lazy figure.
        previous = table["functions"].get(name, {}).get("lazy", 0)
        fresh[name] = dict(table["functions"][name], now=with_margin(n), lazy=max(lazy_figure, previous or 0))
    table["functions"] = {name: fresh[name] for name in sorted(fresh)}
    with open(path, "w") as handle:
        json.dump(table, handle, indent=1)
        handle.write("\n")
    print(f"{len(fresh)} functions in {path}")


if __name__ == "__main__":
    main()
