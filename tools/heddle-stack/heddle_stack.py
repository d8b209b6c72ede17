#!/usr/bin/env python3
"""heddle-stack: worst-case stack depth of every heddle task entry, from GCC's
call graph (-fcallgraph-info=su).

--generate writes a source that registers the bounds with spawn
(heddle/core/stack_sizing.hpp); the CMake helper heddle_stack_bounds(target)
in cmake/HeddleStackBounds.cmake runs this tool before the target links and
compiles that source into it.

Input: the .ci files GCC writes beside each object (one VCG graph per
translation unit: a node per function with its frame size, an edge per
call). Give the target's own objects and heddle's (installed in
share/heddle/callgraph, or the build tree's src/).

A task entry is an instance of heddle::detail::TaskFrame<F, T>::run(): one
per callable type spawned. Its bound is the deepest path from task_entry
(heddle's trampoline, which calls run()) down to a leaf, summing frame sizes
as GCC reports them (return address included), plus the entry frame
make_context lays out, plus the 128-byte red zone a leaf may use below its
stack pointer (none with --no-red-zone: objects compiled with -mno-red-zone,
as heddle_stack_bounds() compiles the target and heddle's own library on
x86-64, have no leaf that writes below its stack pointer, so GCC's frame
sizes are the whole of each function's use). What the tool cannot bound is flagged with the call path that
reaches it:
  recursion          a cycle in the call graph
  indirect call      a call through a pointer or a virtual function that no
                     rule below resolves
  no frame info      a call into code GCC did not compile here (libc, other
                     libraries) and that the known-function table lacks
  dynamic frame      alloca or a variable-length array GCC could not bound
  input-dependent stack
                     a call into a library function whose stack use grows
                     with its input (the printf family, strtod, qsort,
                     regex, iconv, name resolution, ...): the known-function
                     table has it with the basis "depends on input"
Indirect calls inside heddle itself are resolved by rules (rules.json): the
scheduler's virtual hooks resolve to every Scheduler override in the graph,
a suspension's hooks to every SuspendHooks instance, task_entry's call to the
entry's own run(). The known-function table (known_functions.json) gives
libc and C++ runtime functions a bound each, or none. Each entry says what
its figure rests on (BASES below): a function whose stack use does not
depend on its input was MEASURED on a painted stack
(tools/heddle-stack/measure_known.cpp), not proven, and the report says so
wherever one is used; a function whose use grows with its input has a
figure only where a limit on that input holds for every call, and is
otherwise unbounded. A bound that rests on an entry with a stated
assumption (the C locale for messages) lists it under "assumes".

A call to heddle::with_stack / maybe_grow is a boundary: the callable runs on
its own segment, so the caller's bound stops there (rules.json: boundary).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))

# What a context holds above task_entry's frame (arch::make_context): the
# zeroed 16-byte slot frame-pointer walks end on. spawn keeps the task's
# frame (callable and result) above it, rounded to 16 bytes on a stack
# whose top is 16-aligned (every stack a bound sizes: stack_sizing.hpp), so
# there is no alignment slack to count. The first switch frame make_context
# lays out below the slot is popped by the first switch in, before
# task_entry runs; every later switch frame is counted where it is pushed
# (the switch's entry in known_functions.json), so it is not counted here.
ENTRY_FRAME_BYTES = {"x86_64": 16, "aarch64": 16}
# The red zone a leaf function may use below its stack pointer (GCC's frame
# sizes leave it out), unless the objects were compiled with -mno-red-zone.
RED_ZONE_BYTES = {"x86_64": 128, "aarch64": 0}

NODE_RE = re.compile(r'^node: \{ title: "((?:[^"\\]|\\.)*)" label: "((?:[^"\\]|\\.)*)"(.*)\}\s*$')
EDGE_RE = re.compile(r'^edge: \{ sourcename: "((?:[^"\\]|\\.)*)" targetname: "((?:[^"\\]|\\.)*)"(?: label: "((?:[^"\\]|\\.)*)")?')
SIZE_RE = re.compile(r"^(\d+) bytes \(([a-z,]+)\)$")
ENTRY_TITLE_RE = re.compile(r"^(?:.*:)?_Z(N6heddle6detail9TaskFrameI.*E)3runEv$")
INDIRECT = "__indirect_call"
ANY_HOOK_RE = re.compile(r"SuspendHooks<OnSuspend, OnCancel>::call_(?:suspend|cancel)\(.*\[with OnSuspend = (.*?)::<lambda")
SEGMENT_ENTRY_RE = re.compile(r"heddle::with_stack<(.*)>\(.*\)::<lambda\(void\*\)>::_FUN\(void\*\)")
ENTRY_CALLABLE_RE = re.compile(r"\[with F = (.*?)::<lambda")
SPECIAL_TARGETS = ("<entry>",)


class ToolError(Exception):
    pass


# What a known_functions.json figure rests on ("basis"); every entry names
# one and says why in "why".
#   proven                  heddle's own assembly: the bytes it pushes
#   input-independent       no path of the function uses more stack for other
#                           arguments or data; the figure is measured
#   bounded for all inputs  the use grows with an input, but no further than
#                           a limit "why" argues; measured at that limit
#   depends on input        no usable bound (formatted output, regex, name
#                           resolution, ...): a task that calls it is unbounded
BASES = ("proven", "input-independent", "bounded for all inputs", "depends on input")
UNBOUNDED_BASIS = "depends on input"


def load_known_table(path: str) -> dict:
    """The known-function table, each entry checked: a basis from BASES and
    its reason, and figures for both bindings exactly when it has a bound."""
    try:
        with open(path, encoding="utf-8") as handle:
            functions = json.load(handle)["functions"]
    except (OSError, ValueError, KeyError) as error:
        raise ToolError(f"cannot read the known-function table {path}: {error}") from None
    for name, entry in functions.items():
        basis = entry.get("basis")
        if basis not in BASES:
            raise ToolError(f"{path}: {name} has no basis for its figure (\"basis\": one of {', '.join(BASES)})")
        if not isinstance(entry.get("why"), str) or not entry["why"].strip():
            raise ToolError(f"{path}: {name} ({basis}) does not say why (\"why\")")
        figures = [binding for binding in ("now", "lazy") if binding in entry]
        if basis == UNBOUNDED_BASIS and figures:
            raise ToolError(f"{path}: {name} depends on input, so it can have no figure ({', '.join(figures)})")
        if basis != UNBOUNDED_BASIS and not all(isinstance(entry.get(b), int) for b in ("now", "lazy")):
            raise ToolError(f"{path}: {name} ({basis}) needs a figure for both bindings (\"now\", \"lazy\")")
    return functions


@dataclass
class Function:
    title: str
    name: str                 # demangled signature (first label line)
    location: str             # file:line:column of the definition
    frame: int | None = None  # bytes, None when the graph has no frame for it
    qualifier: str = ""       # static, dynamic, dynamic,bounded
    calls: list = field(default_factory=list)  # (callee title, call site)
    library: bool = False     # defined in a --library file (heddle's own)


def parse_ci(path: str, functions: dict[str, Function], library: bool = False) -> None:
    """Adds one .ci file's nodes and edges. A function defined in several
    files (an inline function's copies) keeps its largest frame."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
    except OSError as error:
        raise ToolError(f"cannot read {path}: {error.strerror}") from None
    if not lines or not lines[0].startswith("graph: {"):
        raise ToolError(f"{path} is not a GCC -fcallgraph-info file (no 'graph:' header)")
    for number, line in enumerate(lines[1:], start=2):
        if line.startswith("node:"):
            match = NODE_RE.match(line)
            if not match:
                raise ToolError(f"{path}:{number}: cannot read this node: {line.strip()[:120]}")
            title, label, _ = match.groups()
            parts = label.split("\\n")
            frame, qualifier = None, ""
            if len(parts) >= 3:
                size = SIZE_RE.match(parts[2])
                if size:
                    frame, qualifier = int(size.group(1)), size.group(2)
            existing = functions.get(title)
            if existing is None:
                functions[title] = Function(title, parts[0], parts[1] if len(parts) > 1 else "", frame, qualifier,
                                            library=library and frame is not None)
            elif frame is not None and (existing.frame is None or frame > existing.frame):
                if existing.frame is None:
                    existing.library = library
                if existing.frame is None:
                    existing.name, existing.location = parts[0], parts[1] if len(parts) > 1 else ""
                existing.frame, existing.qualifier = frame, qualifier
        elif line.startswith("edge:"):
            match = EDGE_RE.match(line)
            if not match:
                raise ToolError(f"{path}:{number}: cannot read this edge: {line.strip()[:120]}")
            source, target, site = match.groups()
            node = functions.setdefault(source, Function(source, source, ""))
            node.calls.append((target, site or ""))


def collect_ci_files(paths: list[str]) -> list[str]:
    files = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                files.extend(os.path.join(root, name) for name in names if name.endswith(".ci"))
        elif os.path.exists(path):
            files.append(path)
        else:
            raise ToolError(f"no such file or directory: {path}")
    if not files:
        raise ToolError("no .ci files found in " + ", ".join(paths) +
                        " (build with GCC and -fcallgraph-info=su; clang has no call graph output)")
    return sorted(files)


@dataclass
class Depth:
    bytes: int
    path: list            # titles from this function to the deepest leaf
    problems: list        # (kind, detail, path) for what could not be bounded
    measured: list        # known-table functions the figure relies on


class Analysis:
    def __init__(self, functions, known, rules, patterns, arch, binding):
        self.binding = binding
        self.functions = functions
        self.known = known
        self.arch = arch
        self.rules = []
        for rule in rules:
            if "recursion" in rule or "not_on_task_stacks" in rule:
                continue
            targets = []
            for target in rule.get("targets", []):
                if target in SPECIAL_TARGETS or target.startswith("known:"):
                    targets.append(target)
                elif target in patterns:
                    targets.append(re.compile(patterns[target]))
                else:
                    raise ToolError(f"rules: unknown target pattern {target!r} (rules name patterns in 'patterns')")
            self.rules.append((re.compile(rule["caller"]), targets, rule.get("boundary", False)))
        self.memo: dict = {}
        # Recursion heddle bounds at run time: (pattern, most nested copies).
        self.bounded_recursion = [(re.compile(r["recursion"]), int(r["limit"])) for r in rules if "recursion" in r]
        # Functions that never run on a task's stack, whatever the call
        # graph says (each rule says why): their frames are not counted.
        self.not_on_task_stacks = [re.compile(r["not_on_task_stacks"]) for r in rules if "not_on_task_stacks" in r]
        self.target_cache: dict[str, list[str]] = {}
        self.allowed_hooks: set | None = None  # None: every hook (no reachability computed)

    def restrict_to_reachable(self, roots: list[str], library_entries: list[str]) -> None:
        """Decides which suspension hooks may run on a task's stack: those
        of leaves some task can reach. A hook runs on whichever stack
        receives the switch, so the leaf may be in any task, but only a task
        suspends by switching: the roots are the program's task entries and
        task_entry. A library entry (a task heddle itself spawns, such as
        Cluster's loops) becomes a root once the function that spawns it
        (the one its lambda is written in) is reachable. Reachability
        follows direct calls and the rules' indirect targets, and is
        repeated until the set of hooks stops growing."""
        hook_titles = {t for t, f in self.functions.items() if f.frame is not None and ANY_HOOK_RE.search(f.name)}
        enclosing_of = {t: ANY_HOOK_RE.search(self.functions[t].name).group(1) for t in hook_titles}
        pending_entries = {e: ENTRY_CALLABLE_RE.search(self.functions[e].name) for e in library_entries}
        self.allowed_hooks = set()
        roots = list(roots)
        while True:
            self.target_cache = {}
            seen, todo = set(), [r for r in roots if r in self.functions]
            while todo:
                title = self.resolve_title(todo.pop())
                if title in seen:
                    continue
                seen.add(title)
                function = self.functions.get(title)
                if function is None:
                    continue
                todo.extend(callee for callee, _ in function.calls if callee != INDIRECT)
                if any(callee == INDIRECT for callee, _ in function.calls):
                    rule = self.rule_for(title)
                    if rule is not None and not rule[1]:
                        for target in rule[0]:
                            if not isinstance(target, str):
                                todo.extend(self.targets_matching(target))
            names = " | ".join(self.label(t) for t in seen)
            allowed = {t for t in hook_titles if enclosing_of[t] in names}
            started = [e for e, match in pending_entries.items() if match is None or match.group(1) in names]
            for entry in started:
                del pending_entries[entry]
            if allowed == self.allowed_hooks and not started:
                break
            self.allowed_hooks = allowed
            roots.extend(started)
        self.target_cache = {}

    def resolve_title(self, title: str) -> str:
        """Constructors and destructors are emitted under their base-object
        name (C2/D2) and called under the complete-object one (C1/D1)."""
        if title in self.functions and self.functions[title].frame is not None:
            return title
        for complete, base in (("C1E", "C2E"), ("D1E", "D2E"), ("C2E", "C1E"), ("D2E", "D1E")):
            if complete in title:
                other = title.replace(complete, base, 1)
                if other in self.functions and self.functions[other].frame is not None:
                    return other
        return title

    def label(self, title: str) -> str:
        function = self.functions.get(title)
        if function and function.name and function.name != title and not function.name.startswith(")"):
            return function.name
        return title

    def recursion_limit(self, cycle: list[str]):
        for pattern, limit in self.bounded_recursion:
            if any(pattern.search(self.label(t)) for t in cycle):
                return limit
        return None

    def rule_for(self, caller: str):
        name = self.label(caller)
        for pattern, targets, boundary in self.rules:
            if pattern.search(name):
                return targets, boundary
        return None

    def targets_matching(self, pattern) -> list[str]:
        key = pattern.pattern
        if key not in self.target_cache:
            allowed = self.allowed_hooks
            self.target_cache[key] = sorted(
                t for t, f in self.functions.items()
                if f.frame is not None and pattern.search(f.name)
                and (allowed is None or not ANY_HOOK_RE.search(f.name) or t in allowed))
        return self.target_cache[key]

    def depth(self, title: str, entry: str | None, stack: list[str]) -> Depth:
        title = self.resolve_title(title)
        memo_key = title
        function = self.functions.get(title)
        if entry is not None and any(p.search(self.label(title)) for p in self.not_on_task_stacks):
            return Depth(0, [], [], [])
        if function is None or function.frame is None:
            bare = title if title in self.known else title.split(":")[-1]
            known = self.known.get(bare)
            if known is not None and known["basis"] == UNBOUNDED_BASIS:
                return Depth(0, [title], [("input-dependent stack", f"stack use depends on input: {bare}",
                                           stack + [title])], [])
            if known is not None:
                return Depth(known[self.binding], [title], [], [] if known["basis"] == "proven" else [bare])
            return Depth(0, [title], [("no frame info", self.label(title), stack + [title])], [])
        nesting = ()
        if title in stack:
            cycle = stack[stack.index(title):] + [title]
            limit = self.recursion_limit(cycle)
            if limit is None:
                return Depth(0, [title], [("recursion", " -> ".join(self.label(t) for t in cycle), stack + [title])], [])
            if stack.count(title) >= limit:
                return Depth(0, [], [], [])  # heddle nests no deeper: past the limit the work is deferred
        if self.bounded_recursion:
            nesting = tuple(sum(1 for t in stack if pattern.search(self.label(t))) for pattern, _ in self.bounded_recursion)
        rule = self.rule_for(title)
        uses_entry = rule is not None and "<entry>" in rule[0]
        memo_key = (title, nesting, stack.count(title))
        if not uses_entry and memo_key in self.memo:
            return self.memo[memo_key]
        frame = function.frame
        problems, measured = [], []
        if function.qualifier == "dynamic":
            problems.append(("dynamic frame", f"{function.name} ({function.location}) has an unbounded alloca or VLA", stack + [title]))
        deepest = Depth(0, [], [], [])
        here = stack + [title]
        for callee, site in function.calls:
            if callee == INDIRECT:
                if rule is None:
                    problems.append(("indirect call", f"in {function.name} at {site}", here))
                    continue
                targets, boundary = rule
                if boundary:
                    continue
                candidates = []
                for target in targets:
                    if target == "<entry>":
                        if entry:
                            candidates.append(entry)
                    elif isinstance(target, str) and target.startswith("known:"):
                        candidates.append(target[len("known:"):])
                    else:
                        candidates.extend(self.targets_matching(target))
                for candidate in candidates:
                    below = self.depth(candidate, entry, here)
                    problems.extend(below.problems)
                    measured.extend(below.measured)
                    if below.bytes > deepest.bytes:
                        deepest = below
                continue
            below = self.depth(callee, entry, here)
            problems.extend(below.problems)
            measured.extend(below.measured)
            if below.bytes > deepest.bytes or not deepest.path:
                deepest = below
        result = Depth(frame + deepest.bytes, [title] + deepest.path, dedupe(problems), sorted(set(measured)))
        if not uses_entry:
            self.memo[memo_key] = result
        return result


def dedupe(problems):
    seen, out = set(), []
    for kind, detail, path in problems:
        if (kind, detail) not in seen:
            seen.add((kind, detail))
            out.append((kind, detail, path))
    return out


def find_task_entry(functions) -> str:
    for title, function in functions.items():
        if function.frame is not None and re.match(r"void heddle::detail::\{anonymous\}::task_entry\(void\*, void\*\)$", function.name):
            return title
    raise ToolError("heddle's task_entry is not in the call graph: pass heddle's own .ci files too "
                    "(share/heddle/callgraph, or the build tree's src/CMakeFiles/heddle.dir)")


def entry_type_name(title: str) -> str:
    """typeid(TaskFrame<F, T>).name() for a run() symbol:
    _ZN6heddle6detail9TaskFrameI...E3runEv -> N6heddle6detail9TaskFrameI...EE."""
    match = ENTRY_TITLE_RE.match(title)
    return match.group(1) + "E"


def callable_name(function: Function) -> str:
    match = re.search(r"\[with F = (.*?); T = (.*)\]$", function.name)
    return match.group(1) if match else function.name


def entry_record(analysis, kind, type_name, callable_text, location, depth, fixed):
    """One line of the report: what was bounded, and how, or why not."""
    return {
        "kind": kind,
        "type": type_name,
        "callable": callable_text,
        "location": location,
        "bounded": not depth.problems,
        "bytes": depth.bytes + fixed if not depth.problems else None,
        "frames_bytes": depth.bytes,
        "deepest_path": [analysis.label(t) for t in depth.path],
        "problems": [{"kind": k, "detail": d, "path": [analysis.label(t) for t in p]} for k, d, p in depth.problems],
        "measured": depth.measured,
        "assumes": sorted({analysis.known[name]["assumes"] for name in depth.measured
                           if "assumes" in analysis.known.get(name, {})}) if not depth.problems else [],
    }


def analyse(ci_paths, known_path, rules_path, arch, binding="lazy", roots=None, library_paths=(), red_zone=True):
    functions: dict[str, Function] = {}
    for path in collect_ci_files(list(ci_paths) + list(library_paths)):
        parse_ci(path, functions)
    if library_paths:
        library = {}
        for path in collect_ci_files(list(library_paths)):
            parse_ci(path, library)
        for title, function in library.items():
            if function.frame is not None and title in functions:
                functions[title].library = True
    known = load_known_table(known_path)
    with open(rules_path, encoding="utf-8") as handle:
        rules_file = json.load(handle)
    analysis = Analysis(functions, known, rules_file["rules"], rules_file.get("patterns", {}), arch, binding)
    if roots:
        # Plain functions as roots (--root): no task_entry, no entry frame.
        pattern = re.compile(roots)
        entries = []
        for title, function in sorted(functions.items()):
            if function.frame is None or not pattern.search(function.name):
                continue
            depth = analysis.depth(title, None, [])
            entries.append(entry_record(analysis, "function", title, function.name, function.location, depth, 0))
        return entries
    fixed = ENTRY_FRAME_BYTES[arch] + (RED_ZONE_BYTES[arch] if red_zone else 0)
    task_entry = find_task_entry(functions)
    program_roots = [t for t, f in functions.items() if f.frame is not None and not f.library
                     and (ENTRY_TITLE_RE.match(t) or f.name.startswith("int main("))]
    library_entries = [t for t, f in functions.items() if f.frame is not None and f.library and ENTRY_TITLE_RE.match(t)]
    analysis.restrict_to_reachable(program_roots + [task_entry], library_entries)
    entries = []
    for title, function in sorted(functions.items()):
        if function.frame is None or not ENTRY_TITLE_RE.match(title):
            continue
        depth = analysis.depth(task_entry, title, [])
        entries.append(entry_record(analysis, "task", entry_type_name(title), callable_name(function),
                                    function.location, depth, fixed))
    # Beyond each with_stack boundary: the callable runs on a segment from
    # segment_entry (with_stack.cpp), so it gets a bound of its own, reported
    # beside the tasks' (with_stack's caller names the segment's size; the
    # report says whether it is enough).
    segment_entry = next((t for t, f in functions.items() if f.frame is not None
                          and "heddle::detail::{anonymous}::segment_entry(void*, void*)" in f.name), None)
    for title, function in sorted(functions.items()):
        match = SEGMENT_ENTRY_RE.search(function.name) if function.frame is not None else None
        if not match or segment_entry is None:
            continue
        depth = analysis.depth(segment_entry, title, [])
        entries.append(entry_record(analysis, "with_stack segment", title, match.group(1), function.location, depth,
                                    fixed))
    # Several copies of one callable type (the same lambda mangling in two
    # files): keep the largest, and unbounded wins.
    merged: dict[str, dict] = {}
    for entry in entries:
        previous = merged.get(entry["type"])
        if previous is None:
            merged[entry["type"]] = entry
        elif not entry["bounded"] or (previous["bounded"] and entry["bytes"] > previous["bytes"]):
            merged[entry["type"]] = entry
    return list(merged.values())


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def comment_text(text: str) -> str:
    return text.replace("*/", "* /").replace("\n", " ")


def write_generated(entries, path, target):
    """The source heddle_stack_bounds() compiles into the target: a
    StackBoundsRegistration of every bounded entry, and a comment saying
    why each other entry keeps the default pool."""
    lines = [
        f"// Generated by tools/heddle-stack for target {comment_text(target)}: do not edit.",
        "// Each bounded task entry's proven stack depth below its frame, in bytes",
        "// (frames + entry slot + red zone, if the code has one), keyed by typeid(TaskFrame<F, T>).name().",
        "#include <heddle/core/stack_sizing.hpp>",
        "",
        "// The program is linked with --wrap for the unwinder's entry points, so that",
        "// a throw on a task's stack runs the unwinder on the thread's unwind stack:",
        "// the bounds above do not hold it.",
        "#include <heddle/core/detail/unwinder_wrappers.hpp>",
        "",
    ]
    for entry in sorted(entries, key=lambda e: e["callable"]):
        if entry.get("kind") == "with_stack segment":
            figure = f"{entry['bytes']} bytes" if entry["bounded"] else "unbounded"
            lines.append(f"// with_stack segment (sized by its caller): {comment_text(entry['callable'])} needs {figure}")
            continue
        if not entry["bounded"]:
            lines.append(f"// unbounded, keeps the default pool: {comment_text(entry['callable'])} ({entry['location']})")
            for problem in entry["problems"][:3]:
                lines.append(f"//   {problem['kind']}: {comment_text(problem['detail'])}")
            if len(entry["problems"]) > 3:
                lines.append(f"//   ... and {len(entry['problems']) - 3} more (heddle-stack --json)")
    bounded = sorted((e for e in entries if e["bounded"] and e.get("kind", "task") == "task"), key=lambda e: e["type"])
    lines += ["", "namespace {", ""]
    if bounded:
        lines.append("constexpr heddle::StackBound kBounds[] = {")
        for entry in bounded:
            lines.append(f"    {{{c_string(entry['type'])}, {entry['bytes']}, {c_string(entry['callable'])}}},")
        lines += ["};", "", "const heddle::StackBoundsRegistration registration(kBounds);"]
    else:
        lines.append("// No task entry of this target could be bounded.")
    lines += ["", "}  // namespace", ""]
    text = "\n".join(lines)
    # Rewritten only on change, so an unchanged bound relinks nothing.
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    except OSError:
        pass
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def print_report(entries, out):
    for entry in sorted(entries, key=lambda e: (not e["bounded"], e["callable"])):
        what = "with_stack segment: " if entry.get("kind") == "with_stack segment" else ""
        if entry["bounded"]:
            basis = "proven" if not entry["measured"] else "measured (" + ", ".join(entry["measured"]) + ")"
            print(f"bounded   {entry['bytes']:>7} bytes  {what}{entry['callable']}  [{entry['location']}]  {basis}", file=out)
            print(f"          deepest: {' -> '.join(entry['deepest_path'])}", file=out)
            for assumption in entry.get("assumes", []):
                print(f"          assumes: {assumption}", file=out)
        else:
            print(f"UNBOUNDED               {what}{entry['callable']}  [{entry['location']}]", file=out)
            for problem in entry["problems"]:
                print(f"          {problem['kind']}: {problem['detail']}", file=out)
                print(f"            via {' -> '.join(problem['path'])}", file=out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="heddle-stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="*", help=".ci files or directories holding them")
    parser.add_argument("--known", default=os.path.join(HERE, "known_functions.json"))
    parser.add_argument("--rules", default=os.path.join(HERE, "rules.json"))
    parser.add_argument("--arch", default=os.uname().machine, choices=sorted(ENTRY_FRAME_BYTES))
    parser.add_argument("--binding", default="lazy", choices=["lazy", "now"],
                        help="now: the program is linked with -z now and the static C++ runtime (as heddle_stack_bounds() links it), "
                             "so no lazy-binding resolver runs on a task's stack")
    parser.add_argument("--library", action="append", default=[], metavar="DIR",
                        help="a library's .ci files (heddle's): its task entries are bounded only once the program can reach "
                             "the function that spawns them")
    parser.add_argument("--no-red-zone", action="store_true",
                        help="every object was compiled with -mno-red-zone (x86-64; heddle_stack_bounds() compiles the "
                             "target and heddle so): the bound adds no red zone below the deepest leaf")
    parser.add_argument("--root", metavar="REGEX", help="bound the functions whose demangled name matches, instead of task entries")
    parser.add_argument("--generate", metavar="FILE.cpp", help="write the bounds as a source registering them with spawn")
    parser.add_argument("--target", default="(unnamed)", help="the target's name, for the generated file's comment")
    parser.add_argument("--json", metavar="FILE", help="write every entry's figures and problems as JSON")
    parser.add_argument("--quiet", action="store_true", help="no report on stdout")
    args = parser.parse_args(argv)
    try:
        entries = analyse(args.inputs, args.known, args.rules, args.arch, args.binding, args.root, args.library,
                          red_zone=not args.no_red_zone)
    except ToolError as error:
        print(f"heddle-stack: {error}", file=sys.stderr)
        return 2
    if args.generate:
        write_generated(entries, args.generate, args.target)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"heddle_stack_bounds": 1, "arch": args.arch, "entries": entries}, handle, indent=1)
    if not args.quiet:
        print_report(entries, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
