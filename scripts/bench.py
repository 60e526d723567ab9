#!/usr/bin/env python3
"""Engine benchmarks (issue "Engine core"), whole-process, on this machine.

Builds `pipe` in release mode with the test stage kinds, then measures:
  - a no-op re-run of a 12-stage pipeline whose stages are all cached;
  - a re-run after changing one parameter of a middle stage;
  - `pipe plan` of a generated 1,000-stage pipeline;
  - `pipe fingerprint` of the Open Clip Art PNG folders, cold and warm.
Reports medians of several runs and the peak RSS (from wait4), as Markdown.
  - with --load: the `load` stage on all of Open Clip Art (64x64 colour),
    1 and 2 threads: images/s and peak RSS;
  - with --bow: KAZE extraction (images/s) and the SVM grid search (wall
    time) of pipelines/openclipart.toml, 1 and 2 threads;
  - with --cnn: `pipe-torch bench` on the default pipeline's augmented
    training images: CNN training throughput fed as in training against a
    tight loop on one pre-built batch, the sgemm peak, and the real
    AlexNet's images/s, GFLOP/s and seconds per epoch at 224x224 (printed
    as its own table).
  - with --binary PATH: the engine rows for another build of `pipe` (one
    with the test kinds), to compare two builds back to back.
Usage: python3 scripts/bench.py [--runs N] [--load] [--bow] [--cnn] [--binary PATH]
"""
import argparse, os, pathlib, shutil, statistics, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
OPENCLIPART = pathlib.Path("/usr/share/openclipart/png")


def build():
    subprocess.run(["cargo", "build", "--release", "--features", "pipe-core/test-kinds", "--bins"], cwd=ROOT, check=True)
    return TARGET / "release" / "pipe"


def timed(cmd, cwd):
    """Wall seconds and peak RSS (MiB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {' '.join(map(str, cmd))} failed: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def series(cmd, cwd, runs, before=None):
    walls, rss = [], []
    for _ in range(runs):
        if before:
            before()
        w, r = timed(cmd, cwd)
        walls.append(w)
        rss.append(r)
    return statistics.median(walls), max(rss)


def twelve_stages(value=0):
    """Three sources, a 3x3 grid of sums over them: 12 stages, 3 levels."""
    out = ["[pipeline]\nname = \"bench12\"\n"]
    for s in range(3):
        out.append(f"[stages.src{s}]\nkind = \"test-source\"\nvalue = {s}\n")
    for lvl in range(3):
        for j in range(3):
            ins = [f"src{k}" for k in range(3)] if lvl == 0 else [f"l{lvl - 1}s{k}" for k in range(3)]
            offset = value if (lvl, j) == (1, 1) else 0
            out.append(f"[stages.l{lvl}s{j}]\nkind = \"test-sum\"\nvalues = {ins!r}\noffset = {offset}\n".replace("'", '"'))
    return "\n".join(out)


def thousand_stages():
    out = ["[stages.s0]\nkind = \"test-source\"\n"]
    for i in range(1, 1000):
        ins = sorted({f"s{(i - 1)}", f"s{i // 2}"})
        out.append(f"[stages.s{i}]\nkind = \"test-sum\"\nvalues = {ins!r}\n".replace("'", '"'))
    return "\n".join(out)


def bench_load(pipe, tmp):
    """The load stage alone on Open Clip Art, with 1 and 2 threads."""
    import json
    out = []
    pipeline = ROOT / "pipelines" / "openclipart.toml"
    for jobs in (1, 2):
        cache = tmp / f"load-cache-{jobs}"
        w, r = timed([pipe, "run", pipeline, "--stage", "data", "--jobs", str(jobs), "-q", "--cache-dir", cache, "--reports-dir", tmp / "load-reports"], tmp)
        record = json.loads((tmp / "load-reports" / "openclipart" / "latest" / "summary.json").read_text())
        stage = next(s for s in record["stages"] if s["name"] == "data")
        meta = json.loads(next(cache.glob("entries/*/*/out/dataset.json")).read_text())
        images = len(meta["bad"]) + len(meta["dropped"]) + meta["duplicates_removed"] + sum(sum(c.values()) for c in meta["counts"].values())
        out.append((f"load Open Clip Art 64x64, {jobs} thread(s): {images / stage['seconds']:.0f} images/s", stage["seconds"], r, "~linear in threads; <= ~1 GB"))
    return out


def bench_bow(pipe, tmp):
    """Forced re-runs of one stage of the default pipeline, 1 then 2 threads."""
    import json
    pipeline = ROOT / "pipelines" / "openclipart.toml"
    cache, reports = tmp / "bow-cache", tmp / "bow-reports"
    common = ["--cache-dir", cache, "--reports-dir", reports, "-q"]
    timed([pipe, "run", pipeline, "--stage", "bow", *common], tmp)  # inputs, once
    out = []
    for stage, unit in (("kaze", "images"), ("svm", None)):
        seconds = {}
        for jobs in (1, 2):
            w, r = timed([pipe, "run", pipeline, "--stage", stage, "--force", stage, "--jobs", str(jobs), *common], tmp)
            record = json.loads((reports / "openclipart" / "latest" / "summary.json").read_text())
            seconds[jobs] = next(s for s in record["stages"] if s["name"] == stage)["seconds"]
            if unit:
                meta = json.loads(next(cache.glob("entries/*/*/out/features.json")).read_text())
                label = f"KAZE extraction, {jobs} thread(s): {len(meta['counts']) / seconds[jobs]:.0f} images/s"
            else:
                label = f"SVM grid search (9 points x 5 folds), {jobs} thread(s)"
            out.append((label, seconds[jobs], r, f"speed-up {seconds[1] / seconds[jobs]:.2f}x (goal >= 1.8x)"))
    return out


def bench_cnn(pipe, tmp):
    """pipe-torch bench on the `augmented` stage's output of the default pipeline."""
    pipeline = ROOT / "pipelines" / "openclipart.toml"
    cache = tmp / "cnn-cache"
    timed([pipe, "run", pipeline, "--stage", "augmented", "--cache-dir", cache, "--reports-dir", tmp / "cnn-reports", "-q"], tmp)
    augmented = next(cache.glob("entries/*/*/out/preview.png")).parent
    out = subprocess.run([pipe.parent / "pipe-torch", "bench", augmented], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: pipe-torch bench failed: {out.stderr}")
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--load", action="store_true", help="also benchmark the load stage on Open Clip Art")
    ap.add_argument("--bow", action="store_true", help="also benchmark KAZE extraction and the SVM grid search")
    ap.add_argument("--cnn", action="store_true", help="also benchmark CNN training (data feeding, the paper's net)")
    ap.add_argument("--binary", type=pathlib.Path, help="measure this `pipe` (built with the test kinds) instead of building one")
    args = ap.parse_args()
    pipe = args.binary.resolve() if args.binary else build()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "p.toml").write_text(twelve_stages())
        timed([pipe, "run", "p.toml", "-q"], tmp)
        w, r = series([pipe, "run", "p.toml", "-q"], tmp, args.runs)
        rows.append(("no-op re-run, 12 cached stages", w, r, "<= 40 ms, <= 20 MiB"))

        flip = {"v": 0}

        def edit():
            flip["v"] += 1
            (tmp / "p.toml").write_text(twelve_stages(flip["v"]))

        w, r = series([pipe, "run", "p.toml", "-q"], tmp, args.runs, before=edit)
        rows.append(("re-run after editing a middle stage (4 stages run)", w, r, "DVC 1.55 s, Snakemake 2.21 s"))

        (tmp / "big.toml").write_text(thousand_stages())
        w, r = series([pipe, "plan", "big.toml"], tmp, max(3, args.runs // 2))
        rows.append(("plan a 1,000-stage pipeline", w, r, "<= 0.5 s"))

        if OPENCLIPART.is_dir():
            stat_dir = tmp / "fpcache"

            def wipe():
                shutil.rmtree(stat_dir, ignore_errors=True)

            fp = [pipe, "fingerprint", OPENCLIPART, "--cache-dir", stat_dir]
            w, r = series(fp, tmp, 3, before=wipe)
            rows.append(("fingerprint Open Clip Art PNGs, no stat cache", w, r, "<= 1.5 s"))
            w, r = series(fp, tmp, args.runs)
            rows.append(("fingerprint Open Clip Art PNGs, warm", w, r, "<= 50 ms"))
        else:
            print(f"bench: {OPENCLIPART} missing (run `make setup`): fingerprint rows skipped", file=sys.stderr)

        if args.load and OPENCLIPART.is_dir():
            rows.extend(bench_load(pipe, tmp))
        if args.bow and OPENCLIPART.is_dir():
            rows.extend(bench_bow(pipe, tmp))
        cnn = bench_cnn(pipe, tmp) if args.cnn and OPENCLIPART.is_dir() else None

    print(f"\n{os.cpu_count()} cores; medians of {args.runs} runs (3 for cold fingerprints); peak RSS is the max over runs\n")
    print("| benchmark | wall | peak RSS | goal / reference |")
    print("|---|---|---|---|")
    for name, w, r, goal in rows:
        wall = f"{w * 1000:.1f} ms" if w < 1 else f"{w:.2f} s"
        print(f"| {name} | {wall} | {r:.1f} MiB | {goal} |")
    if cnn:
        print(f"\nCNN training (pipe-torch bench, one process):\n\n{cnn}")


if __name__ == "__main__":
    main()
