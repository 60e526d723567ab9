#!/usr/bin/env python3
"""Peak memory of the stages that hold images, on a data set larger than
memory is comfortable with: benches/large-data.toml (60,000 synthetic
colour images at 128x128, 2.9 GB of pixels). Runs `load`, `augment` and
one `cnn-stage1` epoch one at a time (`--stage`) under `/usr/bin/time -v`
and prints each one's wall time and peak RSS (the largest of pipe and its
worker). Needs the release build (`make build`) and ~12 GB of disk.

    python3 scripts/bench_large.py [--cache DIR] [--keep]
"""
import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PIPE = pathlib.Path.home() / ".cache/pipe/target/release/pipe"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(PIPE), help="the pipe executable (default: the release build)")
    ap.add_argument("--cache", help="cache folder (default: a temporary one, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary cache")
    args = ap.parse_args()
    work = pathlib.Path(args.cache or tempfile.mkdtemp(prefix="pipe-large-"))
    pipeline = ROOT / "benches/large-data.toml"
    rows = []
    try:
        for stage in ["data", "augmented", "cnn"]:
            cmd = ["/usr/bin/time", "-v", args.binary, "run", str(pipeline), "--stage", stage, "-q",
                   "--cache-dir", str(work / "cache"), "--reports-dir", str(work / "reports")]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stdout, out.stderr, file=sys.stderr)
                return 1
            rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
            wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", out.stderr).group(1)
            record = json.loads((work / "reports/large-data/last/summary.json").read_text())
            ran = [s for s in record["stages"] if s["name"] == stage][0]
            rows.append((stage, ran["kind"], ran["status"], ran["seconds"], wall, rss_kb / 1024))
        entries = work / "cache/entries"
        sizes = {p.parent.parent.name: p.stat().st_size for p in entries.glob("*/*/out/images.safetensors")}
        print("| stage | kind | status | stage seconds | wall | peak RSS |")
        print("|---|---|---|---|---|---|")
        for stage, kind, status, secs, wall, rss in rows:
            print(f"| {stage} | {kind} | {status} | {secs:.1f} | {wall} | {rss:.0f} MiB |")
        for key, size in sizes.items():
            print(f"images.safetensors of entry {key[:12]}: {size / 2**30:.2f} GiB")
    finally:
        if not args.cache and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            print(f"kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
