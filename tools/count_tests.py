#!/usr/bin/env python3
"""Counts test cases in meson testlog.json files (one or more): doctest executables report their own case
counts; any other test (a fuzz target, a script) counts as one case. Prints the closing line 'N passed, N failed'."""
import json
import re
import sys

passed = failed = 0
for path in sys.argv[1:]:
  with open(path) as log:
    for line in log:
        if not line.strip():
            continue
        t = json.loads(line)
        m = re.search(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed", t.get("stdout", "") or "")
        ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        if m:
            passed += int(m.group(2))
            failed += int(m.group(3))
            if not ok and int(m.group(3)) == 0:
                failed += 1  # crashed or timed out after its last reported case
        elif ok:
            passed += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed")
