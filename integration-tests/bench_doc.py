"""The one way the benchmarks write docs/benchmarks.md: each owns a section
between `<!-- NAME:start -->` and `<!-- NAME:end -->`, replaced whole by its
next run (appended once when the page has none); the notes outside the
markers are written by hand. Imported by the bench scripts; bench.sh runs it
as `python3 bench_doc.py FILE NAME < SECTION`."""

import sys
from pathlib import Path


def replace_section(path, name, section):
    """Puts `section` between NAME's markers in the Markdown file `path`."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{section.strip()}\n{end}"
    a, b = text.find(start), text.find(end)
    text = text[:a] + block + text[b + len(end):] if 0 <= a < b else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    replace_section(sys.argv[1], sys.argv[2], sys.stdin.read())
