#!/usr/bin/env python3
"""Turns the ```cpp blocks of heddle's markdown into programs, one per block
(or per run of blocks that continue each other), so that the docs' code is
compiled and run as a test.

Every ```cpp block must follow a marker, an HTML comment (invisible when the
markdown is rendered) that says how the block becomes a program:

    <!-- test: main -->       the block is the body of main()
    <!-- test: namespace -->  the block is at namespace scope (functions, types)
    <!-- test: continue -->   the block goes on from the previous one: the same
                              program, main's body in order
    <!-- test: program -->    the block is a whole program, compiled as it is

A marker may span lines and carry hidden code, one line each:

    <!-- test: main
    global: using namespace std::chrono_literals;   (namespace scope, before the blocks)
    before: std::string log;                        (in main, before the block)
    after: if (answer != 42) return 1;              (in main, after the block)
    -->

Hidden code supplies what the prose takes as given and checks what the
block's comments promise. A block's `#include` lines move to the top of the
file. main returns 0 after the last block; a check that fails returns
non-zero. `#line` directives point compiler errors at the markdown.

Usage: extract_code_blocks.py SOURCE_DIR OUTPUT_DIR FILE.md...
Writes OUTPUT_DIR/<name>.cpp for each program (only when its text changed,
so an unchanged block is not rebuilt) and prints one line per program:
"<name>=<file>:<line>", the line of its first block. Any ```cpp block
without a marker, or an unknown marker, is an error (exit status 1), so no
block goes untested.
"""
import os
import re
import sys

MARKER = re.compile(r"<!--\s*test:\s*(\w+)(.*?)-->", re.S)
KINDS = {"main", "namespace", "continue", "program"}
HIDDEN = re.compile(r"^\s*(global|before|after):\s?(.*)$")

PRELUDE = """\
#include <heddle/heddle.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>
"""


class Block:
    def __init__(self, kind, code, line, hidden, hidden_line):
        self.kind = kind
        self.code = code  # list of lines
        self.line = line  # markdown line of the block's first code line
        self.hidden = hidden  # list of (where, text, markdown line)
        self.hidden_line = hidden_line


def parse(path, display):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    errors = []
    pending = None  # (kind, hidden, line) of the last marker, until a block takes it
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("<!--") and re.match(r"<!--\s*test:", stripped):
            start = i
            text = line
            while "-->" not in text and i + 1 < len(lines):
                i += 1
                text += "\n" + lines[i]
            m = MARKER.search(text)
            if not m or m.group(1) not in KINDS:
                errors.append(f"{display}:{start + 1}: unknown test marker (one of {sorted(KINDS)})")
                pending = None
            else:
                hidden = []
                for offset, body_line in enumerate(m.group(2).split("\n")):
                    if not body_line.strip():
                        continue
                    h = HIDDEN.match(body_line)
                    if not h:
                        errors.append(f"{display}:{start + 1 + offset}: hidden lines start with global:, before: or after:")
                        continue
                    hidden.append((h.group(1), h.group(2), start + 1 + offset))
                pending = (m.group(1), hidden, start + 1)
        elif stripped.startswith("```"):
            fence = stripped[3:].strip()
            start = i
            i += 1
            code = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            if fence in ("cpp", "c++", "cxx"):
                if pending is None:
                    errors.append(f"{display}:{start + 1}: a ```{fence} block needs a test marker before it "
                                  "(<!-- test: main|namespace|continue|program -->; see tests/docs)")
                else:
                    kind, hidden, marker_line = pending
                    if kind == "continue" and not blocks:
                        errors.append(f"{display}:{start + 1}: `continue` with no block before it")
                    else:
                        blocks.append(Block(kind, code, start + 2, hidden, marker_line))
            pending = None
        elif stripped:
            # Prose between a marker and its block: the marker belongs to nothing.
            if pending is not None:
                errors.append(f"{display}:{pending[2]}: a test marker must come right before a ```cpp block")
                pending = None
        i += 1
    return blocks, errors


def group(blocks):
    programs = []
    for block in blocks:
        if block.kind == "continue":
            if programs[-1][0].kind == "program":
                raise SystemExit("a `program` block cannot be continued")
            programs[-1].append(block)
        else:
            programs.append([block])
    return programs


def render(program, display):
    out = [f"// Generated from {display} by tests/docs/extract_code_blocks.py: edit the markdown.\n"]
    if program[0].kind == "program":
        out.append(f'#line {program[0].line} "{display}"\n')
        out.append("\n".join(program[0].code) + "\n")
        return "".join(out)
    includes = []
    for block in program:
        includes += [line for line in block.code if line.lstrip().startswith("#include")]
    out.append(PRELUDE)
    out += [line + "\n" for line in includes]
    for block in program:
        for where, text, line in block.hidden:
            if where == "global":
                out.append(f'#line {line} "{display}"\n{text}\n')
    for block in program:
        if block.kind == "namespace":
            out.append(f'#line {block.line} "{display}"\n')
            out += [("" if line.lstrip().startswith("#include") else line) + "\n" for line in block.code]
    out.append("\nint main() {\n")
    for block in program:
        for where, text, line in block.hidden:
            if where == "before":
                out.append(f'#line {line} "{display}"\n{text}\n')
        if block.kind != "namespace":
            out.append(f'#line {block.line} "{display}"\n')
            out += [("" if line.lstrip().startswith("#include") else line) + "\n" for line in block.code]
        for where, text, line in block.hidden:
            if where == "after":
                out.append(f'#line {line} "{display}"\n{text}\n')
    out.append("  return 0;\n}\n")
    return "".join(out)


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    source_dir, output_dir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(output_dir, exist_ok=True)
    all_errors = []
    listing = []
    for path in files:
        display = os.path.relpath(path, source_dir)
        blocks, errors = parse(path, display)
        all_errors += errors
        stem = re.sub(r"[^A-Za-z0-9]+", "_", os.path.splitext(display)[0]).strip("_")
        for program in group(blocks):
            name = f"{stem}_{program[0].line}"
            text = render(program, display)
            target = os.path.join(output_dir, name + ".cpp")
            old = None
            if os.path.exists(target):
                with open(target, encoding="utf-8") as f:
                    old = f.read()
            if old != text:
                with open(target, "w", encoding="utf-8") as f:
                    f.write(text)
            listing.append(f"{name}={display}:{program[0].line}")
    # Programs of blocks that moved or went: not built, but not left to confuse.
    names = {entry.split("=")[0] + ".cpp" for entry in listing}
    for stale in os.listdir(output_dir):
        if stale.endswith(".cpp") and stale not in names:
            os.remove(os.path.join(output_dir, stale))
    if all_errors:
        print("\n".join(all_errors), file=sys.stderr)
        return 1
    print("\n".join(listing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
