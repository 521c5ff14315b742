"""Merge OUTDIR/parts/progress.K.csv into OUTDIR/progress.csv: part K's rows up to the last generation before
part K+1's first row (the rows written after part K's last checkpoint are superseded by part K+1)."""
import csv
import glob
import os
import re
import sys

out = sys.argv[1]
parts = sorted(glob.glob(os.path.join(out, "parts", "progress.*.csv")), key=lambda p: int(re.findall(r"\.(\d+)\.csv$", p)[0]))
tables = []
for p in parts:
    with open(p, newline="") as f:
        tables.append(list(csv.DictReader(f)))
with open(parts[0]) as f:
    header = f.readline().strip().split(",")
rows = []
for k, t in enumerate(tables):
    nxt = next((u[0] for u in tables[k + 1:] if u), None)
    limit = int(nxt["generation"]) if nxt else None
    rows += [r for r in t if limit is None or int(r["generation"]) < limit]
tmp = os.path.join(out, "progress.csv.tmp")
with open(tmp, "w", newline="") as f:
    w = csv.DictWriter(f, header)
    w.writeheader()
    w.writerows(rows)
os.replace(tmp, os.path.join(out, "progress.csv"))
print(f"merge_parts: {len(rows)} rows from {len(parts)} part(s) -> {out}/progress.csv")
