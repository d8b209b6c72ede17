#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for heddle's headers (docs/api/Doxyfile.in).

heddle's headers are commented in plain `//` lines, as abseil's and marl's
are, so that they read well as code. This filter shows them to Doxygen as
documentation, without changing the files:
  - the header's first comment block (what the header owns) becomes the
    file's documentation (`\\file`);
  - a `//` block right above a declaration becomes its documentation (`///`);
  - a trailing `// note` after a member becomes `///< note`;
  - comments inside function bodies stay plain comments;
  - `<`, `>`, `&`, `\\`, `@` and `#` in comment text are escaped, so that
    `Task<T>` is text, not an HTML tag or a Doxygen command.
Lines keep their numbers (but for those between a header's first comment
and the first blank line, off by one), so Doxygen's warnings point home.
"""
import re
import sys

_BLOCK = re.compile(r"^(\s*)//(?!/)( ?)(.*)$")
_TRAILING = re.compile(r"^(.*?[;,{])(\s*)//(?!/) ?(.*)$")
_SPECIAL = re.compile(r"([<>&\\@#%$])")


def escaped(text):
    # Keep `code spans` as they are: Doxygen's Markdown shows them verbatim.
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = _SPECIAL.sub(r"\\\1", parts[i])
    return "`".join(parts)


def code_part(line):
    """The line without string literals, for counting braces."""
    return re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'', '""', line.split("//", 1)[0])


def main(path):
    with open(path, encoding="utf-8") as source:
        lines = source.read().split("\n")
    out = []
    depth = 0            # brace depth, counting only braces of functions' bodies
    body_depths = []     # depths at which a function body was opened
    first_block = True
    in_preamble = True   # before the first line that is not a comment
    drop_blank = False
    for line in lines:
        block = _BLOCK.match(line)
        in_body = bool(body_depths)
        if block and not in_body:
            indent, _, text = block.groups()
            if in_preamble and first_block and not out:
                # \file takes the rest of its line as a file name: give it a
                # line of its own, and drop the next blank line to keep the
                # count.
                out.append("%s/// \\file" % indent)
                drop_blank = True
                out.append("%s/// %s" % (indent, escaped(text)))
            else:
                out.append("%s/// %s" % (indent, escaped(text)))
            continue
        if not line.strip() and drop_blank:
            drop_blank = False
            continue
        if line.strip():
            if in_preamble and out:
                first_block = False
            in_preamble = False
        trailing = None if in_body or line.lstrip().startswith("#") else _TRAILING.match(line)
        if trailing and '"' not in trailing.group(1):
            line = "%s%s///< %s" % (trailing.group(1), trailing.group(2), escaped(trailing.group(3)))
        # Track function bodies: an opening brace on a line that has a `)`
        # before it (a function or lambda head) or that follows one.
        code = code_part(line)
        for i, char in enumerate(code):
            if char == "{":
                head = code[:i].rstrip()
                previous = out[-1].split("//", 1)[0].rstrip() if out else ""
                is_body = head.endswith(")") or head.endswith("noexcept") or head.endswith("const") or \
                    head.endswith("override") or (head == "" and previous.endswith(")")) or \
                    re.search(r"\)\s*(const\s*)?(noexcept\s*)?(->\s*[\w:<>,\s*&]+)?$", head) is not None
                if is_body or body_depths:
                    body_depths.append(depth)
                depth += 1
            elif char == "}":
                depth -= 1
                if body_depths and body_depths[-1] == depth:
                    body_depths.pop()
        out.append(line)
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
