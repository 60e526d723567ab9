#!/usr/bin/env python3
"""Opens a run's report.html in headless Chromium and fails on what a reader
would see broken: an image that does not load, a script error (an uncaught
exception in the console), an empty chart (an inline SVG with almost nothing
drawn), no tables, or a sortable table whose header click does not sort.

Without a report, it makes one: runs the quickstart pipeline (every stage
kind) with the `pipe` of the debug build into a temporary folder, then checks
that run's report, and recomputes every metric of it with scripts/check_metrics.py
(scikit-learn). `make test` calls it so after the Rust tests.

Usage:
  python3 scripts/check_report.py [REPORT_HTML] [--screenshot PNG] [--width W --height H]

Needs Chromium (Debian package `chromium`, installed by scripts/setup.sh).
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))

# Loaded next to the report in an iframe: inspects it once everything has
# loaded, clicks every sortable header, and writes what it found into the DOM.
PROBE = """<!doctype html><html><body>
<iframe id="report" src="REPORT" width="1280" height="900"></iframe>
<script>
window.addEventListener('load', () => {
  const found = {problems: [], images: 0, svgs: 0, tables: 0, sorted: 0};
  let d;
  try { d = document.getElementById('report').contentDocument; } catch (e) { found.problems.push('cannot open the report: ' + e); }
  if (!d || !d.body) { found.problems.push('the report did not load'); }
  else {
    for (const img of d.images) {
      found.images++;
      if (!(img.complete && img.naturalWidth > 0)) found.problems.push('broken image: ' + (img.alt || img.src.slice(0, 60)));
    }
    for (const svg of d.querySelectorAll('svg')) {
      found.svgs++;
      const drawn = svg.querySelectorAll('rect, path, line, polyline, circle, text').length;
      if (drawn < 5) found.problems.push('empty chart: ' + (svg.getAttribute('aria-label') || svg.id || 'an svg') + ' (' + drawn + ' elements)');
    }
    found.tables = d.querySelectorAll('table').length;
    if (found.tables === 0) found.problems.push('no table in the report');
    const provenance = d.getElementById('provenance');
    found.provenance = !!provenance && provenance.querySelectorAll('table tr').length > 1;
    if (!found.provenance) found.problems.push('no provenance section with its stage table');
    for (const table of d.querySelectorAll('table.sortable, table[data-sortable]')) {
      // Click the second column's header twice: its numbers must come out
      // ordered one way, then the other ('-' and text aside).
      const header = table.querySelector('th:nth-child(2)') || table.querySelector('th');
      const column = Array.from(header.parentNode.children).indexOf(header);
      const values = () => Array.from(table.querySelectorAll('tbody tr'))
        .map(r => parseFloat((r.children[column] || {}).textContent)).filter(v => !isNaN(v));
      const ordered = (v, dir) => v.every((x, i) => i === 0 || dir * (x - v[i - 1]) >= 0);
      header.click();
      const first = values();
      header.click();
      const second = values();
      const distinct = new Set(first).size > 1;
      const up = ordered(first, 1) && ordered(second, -1), down = ordered(first, -1) && ordered(second, 1);
      if (distinct && !(up || down)) found.problems.push('a sortable table does not sort by its header: ' + header.textContent);
      found.sorted++;
    }
  }
  document.body.setAttribute('data-found', JSON.stringify(found));
});
</script></body></html>
"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_report: Chromium is not installed: run `bash scripts/setup.sh` (apt package `chromium`)")


def headless(browser, *args):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           "--virtual-time-budget=15000", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def quickstart_report(tmp):
    """Runs the quickstart pipeline with the debug build's `pipe`; returns its report.html."""
    pipe = TARGET / "debug" / "pipe"
    if not pipe.exists():
        sys.exit(f"check_report: {pipe} is missing: build first (`cargo build` or `make test`)")
    run = subprocess.run([str(pipe), "run", str(ROOT / "pipelines" / "quickstart.toml"), "--cache-dir", str(tmp / "cache"),
                          "--reports-dir", str(tmp / "reports")], cwd=tmp, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"check_report: the quickstart run failed:\n{run.stdout}\n{run.stderr}")
    return (tmp / "reports" / "quickstart" / "latest" / "report.html").resolve()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report", nargs="?", type=pathlib.Path)
    ap.add_argument("--screenshot", type=pathlib.Path)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args()
    browser = chromium()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        report = args.report.resolve() if args.report else quickstart_report(tmp)
        if not report.is_file():
            sys.exit(f"check_report: {report} is not a file")
        probe = tmp / "probe.html"
        probe.write_text(PROBE.replace("REPORT", report.as_uri()))
        out = headless(browser, "--dump-dom", probe.as_uri())
        errors = [line for line in out.stderr.splitlines() if "Uncaught" in line]
        marker = 'data-found="'
        at = out.stdout.find(marker)
        if at < 0:
            sys.exit(f"check_report: the probe page did not finish:\n{out.stderr[-2000:]}")
        raw = out.stdout[at + len(marker):out.stdout.index('"', at + len(marker))]
        found = json.loads(raw.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
        problems = found["problems"] + [f"script error: {e}" for e in errors]
        if not args.report:
            # Every metric of the quickstart's report, recomputed by scikit-learn from its predictions.
            metrics = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_metrics.py"), str(report.parent)],
                                     capture_output=True, text=True)
            print(metrics.stdout.strip().splitlines()[-1] if metrics.stdout.strip() else "check_metrics: no output")
            if metrics.returncode != 0:
                problems.append(f"check_metrics.py disagrees with the report:\n{metrics.stdout}{metrics.stderr}")
        if args.screenshot:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            shot = headless(browser, f"--screenshot={args.screenshot.resolve()}", f"--window-size={args.width},{args.height}",
                            "--hide-scrollbars", report.as_uri())
            if not args.screenshot.exists():
                problems.append(f"no screenshot was written: {shot.stderr[-500:]}")
        print(f"check_report: {report.name}: {found['images']} images, {found['svgs']} charts (SVG), {found['tables']} tables, "
              f"{found['sorted']} sortable, provenance {'yes' if found.get('provenance') else 'no'}")
        for p in problems:
            print(f"  PROBLEM {p}")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
