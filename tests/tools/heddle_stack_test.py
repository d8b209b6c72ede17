#!/usr/bin/env python3
"""Tests tools/heddle-stack on the fixture in stack_fixture/chains.cpp.

Usage: heddle_stack_test.py <g++> <tools/heddle-stack dir> <fixture dir>

The fixture is compiled here with -fcallgraph-info=su (fortified.cpp with
-D_FORTIFY_SOURCE=2, as a program may be). Each expected bound
is the sum of the frames GCC reports for the functions of the chain the test
names, read from the .ci file by this test's own parser, so a tool that
picked the wrong chain, dropped a frame or counted one twice fails.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

CXX, TOOL_DIR, FIXTURE_DIR = sys.argv[1:4]
del sys.argv[1:4]


def frames(ci_text):
    sizes = {}
    for match in re.finditer(r'node: \{ title: "([^"]+)" label: "([^"\\]*)\\n[^"]*?\\n(\d+) bytes \(static\)"', ci_text):
        sizes[match.group(1).split(":")[-1]] = int(match.group(3))
    return sizes


class HeddleStackOnFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.TemporaryDirectory()
        out = cls.scratch.name
        subprocess.run([CXX, "-O2", "-fcallgraph-info=su", "-c", os.path.join(FIXTURE_DIR, "chains.cpp"),
                        "-o", os.path.join(out, "chains.o")], check=True)
        subprocess.run([CXX, "-O2", "-D_FORTIFY_SOURCE=2", "-fcallgraph-info=su", "-c",
                        os.path.join(FIXTURE_DIR, "fortified.cpp"), "-o", os.path.join(out, "fortified.o")], check=True)
        with open(os.path.join(out, "chains.ci")) as handle:
            cls.frames = frames(handle.read())
        report = os.path.join(out, "report.json")
        cls.run_result = subprocess.run([sys.executable, os.path.join(TOOL_DIR, "heddle_stack.py"), "--root", "^[a-z ]*entry_",
                                         "--binding", "now", "--json", report, out],
                                        capture_output=True, text=True, check=True)
        with open(report) as handle:
            cls.entries = {re.search(r"entry_\w+", e["callable"]).group(0): e for e in json.load(handle)["entries"]}

    @classmethod
    def tearDownClass(cls):
        cls.scratch.cleanup()

    def chain(self, *names):
        for name in names:
            self.assertIn(name, self.frames, f"the compiler gave {name} no frame; the fixture must keep it")
        return sum(self.frames[name] for name in names)

    def test_straight_line_is_the_sum_of_its_frames(self):
        entry = self.entries["entry_straight"]
        self.assertTrue(entry["bounded"])
        self.assertEqual(entry["bytes"], self.chain("entry_straight", "straight_middle", "leaf_small"))
        self.assertEqual([re.search(r"\w+\(", p).group(0) for p in entry["deepest_path"]],
                         ["entry_straight(", "straight_middle(", "leaf_small("])
        self.assertEqual(entry["measured"], [])

    def test_branching_takes_the_deeper_branch(self):
        entry = self.entries["entry_branching"]
        self.assertTrue(entry["bounded"])
        deep = self.chain("entry_branching", "branch_deep", "leaf_large")
        shallow = self.chain("entry_branching", "branch_shallow", "leaf_small")
        self.assertGreater(deep, shallow)
        self.assertEqual(entry["bytes"], deep)

    def assert_flagged(self, name, kind, detail_pattern, path_pattern):
        entry = self.entries[name]
        self.assertFalse(entry["bounded"], f"{name} should not be bounded")
        self.assertIsNone(entry["bytes"])
        problems = [p for p in entry["problems"] if p["kind"] == kind]
        self.assertTrue(problems, f"{name}: no {kind} among {entry['problems']}")
        self.assertRegex(problems[0]["detail"], detail_pattern)
        self.assertRegex(" -> ".join(problems[0]["path"]), path_pattern)

    def test_recursion_is_flagged_with_its_cycle(self):
        self.assert_flagged("entry_recursion", "recursion", r"recurse\(int\) -> int recurse\(int\)", r"entry_recursion.*recurse")

    def test_function_pointer_call_is_flagged_with_its_site(self):
        self.assert_flagged("entry_pointer", "indirect call", r"entry_pointer\(\) at .*chains\.cpp:\d+", r"entry_pointer")

    def test_virtual_call_is_flagged_with_its_site(self):
        self.assert_flagged("entry_virtual", "indirect call", r"entry_virtual\(const Shape&\) at .*chains\.cpp:\d+", r"entry_virtual")

    def test_call_without_frame_information_is_flagged(self):
        self.assert_flagged("entry_unknown_libc", "no frame info", r"\brand\b", r"entry_unknown_libc.*rand")

    def test_formatted_output_is_unbounded_naming_the_function(self):
        for name, function in (("entry_fprintf_precision", "fprintf"), ("entry_printf_precision", "printf"),
                               ("entry_fortified_printf", "__printf_chk"), ("entry_fortified_fprintf", "__fprintf_chk"),
                               ("entry_fortified_snprintf", "__snprintf_chk")):
            with self.subTest(name):
                self.assert_flagged(name, "input-dependent stack", rf"^stack use depends on input: {function}$",
                                    rf"{name}\(int, double\) -> {function}$")
                self.assertRegex(self.run_result.stdout, rf"input-dependent stack: stack use depends on input: {function}\n")

    def test_input_independent_calls_keep_their_bounds(self):
        with open(os.path.join(TOOL_DIR, "known_functions.json")) as handle:
            table = json.load(handle)["functions"]
        for name, function in (("entry_puts", "puts"), ("entry_strlen", "strlen")):
            with self.subTest(name):
                self.assertEqual(table[function]["basis"], "input-independent")
                entry = self.entries[name]
                self.assertTrue(entry["bounded"], entry["problems"])
                self.assertEqual(entry["bytes"], self.chain(name) + table[function]["now"])
                self.assertEqual(entry["measured"], [function])

    def test_known_libc_call_is_bounded_and_marked_measured(self):
        entry = self.entries["entry_known_libc"]
        self.assertTrue(entry["bounded"])
        with open(os.path.join(TOOL_DIR, "known_functions.json")) as handle:
            memmove = json.load(handle)["functions"]["memmove"]["now"]
        self.assertEqual(entry["bytes"], self.chain("entry_known_libc") + memmove)
        self.assertEqual(entry["measured"], ["memmove"])
        self.assertIn("measured (memmove)", self.run_result.stdout)

    def test_lazy_binding_adds_the_resolver(self):
        out = self.scratch.name
        report = os.path.join(out, "lazy.json")
        subprocess.run([sys.executable, os.path.join(TOOL_DIR, "heddle_stack.py"), "--root", "entry_known_libc",
                        "--binding", "lazy", "--quiet", "--json", report, out], check=True)
        with open(report) as handle:
            lazy = json.load(handle)["entries"][0]["bytes"]
        self.assertGreater(lazy, self.entries["entry_known_libc"]["bytes"])

    def test_bad_input_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as empty:
            result = subprocess.run([sys.executable, os.path.join(TOOL_DIR, "heddle_stack.py"), empty],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 2)
            self.assertIn("no .ci files found", result.stderr)
            bogus = os.path.join(empty, "bogus.ci")
            with open(bogus, "w") as handle:
                handle.write("not a graph\n")
            result = subprocess.run([sys.executable, os.path.join(TOOL_DIR, "heddle_stack.py"), bogus],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 2)
            self.assertIn("not a GCC -fcallgraph-info file", result.stderr)


class FixedAmountsOfATaskBound(unittest.TestCase):
    """A task's bound is its frames plus the entry slot (16 bytes) and, on
    x86-64 code with a red zone, 128 bytes: checked on a call graph written
    here (task_entry -> TaskFrame<F, T>::run -> a leaf), so the figures are
    exact and known."""

    TASK_ENTRY = "task.cpp:_ZN6heddle6detail12_GLOBAL__N_110task_entryEPvS2_"
    RUN = "app.cpp:_ZN6heddle6detail9TaskFrameIN12_GLOBAL__N_14WorkEvE3runEv"

    def bound(self, *options):
        with tempfile.TemporaryDirectory() as scratch:
            with open(os.path.join(scratch, "graph.ci"), "w") as handle:
                handle.write("graph: { title: \"graph\"\n")
                for title, name, frame in ((self.TASK_ENTRY, "void heddle::detail::{anonymous}::task_entry(void*, void*)", 32),
                                           (self.RUN, "void heddle::detail::TaskFrame<F, T>::run() [with F = {anonymous}::Work; T = void]", 48),
                                           ("app.cpp:leaf", "void leaf()", 80)):
                    handle.write(f'node: {{ title: "{title}" label: "{name}\\napp.cpp:1:1\\n{frame} bytes (static)" }}\n')
                handle.write(f'edge: {{ sourcename: "{self.TASK_ENTRY}" targetname: "__indirect_call" label: "task.cpp:2:1" }}\n')
                handle.write(f'edge: {{ sourcename: "{self.RUN}" targetname: "app.cpp:leaf" label: "app.cpp:3:1" }}\n')
                handle.write("}\n")
            report = os.path.join(scratch, "report.json")
            subprocess.run([sys.executable, os.path.join(TOOL_DIR, "heddle_stack.py"), "--binding", "now", "--quiet",
                            "--json", report, *options, scratch], check=True)
            with open(report) as handle:
                entries = json.load(handle)["entries"]
        self.assertEqual(len(entries), 1, entries)
        self.assertTrue(entries[0]["bounded"], entries[0])
        self.assertEqual(entries[0]["frames_bytes"], 32 + 48 + 80)
        return entries[0]["bytes"]

    def test_x86_64_code_with_a_red_zone_adds_it(self):
        self.assertEqual(self.bound("--arch", "x86_64"), 32 + 48 + 80 + 16 + 128)

    def test_code_compiled_without_the_red_zone_adds_only_the_entry_slot(self):
        self.assertEqual(self.bound("--arch", "x86_64", "--no-red-zone"), 32 + 48 + 80 + 16)

    def test_aarch64_has_no_red_zone(self):
        self.assertEqual(self.bound("--arch", "aarch64"), 32 + 48 + 80 + 16)


if __name__ == "__main__":
    unittest.main(verbosity=2)
