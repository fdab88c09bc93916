"""Installed size (MB) of distributions in the running venv, from their RECORD files.
Usage: python dist_sizes.py [dist ...]  (no args: all)"""

import os
import sys
from importlib import metadata

sizes = {}
for d in metadata.distributions():
    tot = 0
    for f in d.files or []:
        p = f.locate()
        try:
            tot += os.path.getsize(p)
        except OSError:
            pass
    sizes[d.metadata["Name"].lower()] = tot / 2**20
want = [a.lower() for a in sys.argv[1:]] or sorted(sizes, key=lambda k: -sizes[k])
for k in want:
    print(f"{k:28s} {sizes.get(k, float('nan')):8.1f}")
print(f"{'TOTAL(listed)':28s} {sum(sizes.get(k, 0) for k in want):8.1f}")
