"""A command stage for the tests (standard library only): predicts the
`shift`-th most frequent training class for every test image, from the
images' index.csv; `mode` makes it fail on purpose."""
import csv, json, os, signal, subprocess, sys, time
from collections import Counter

job = json.load(open(os.environ["PIPE_JOB"]))
params = job["params"]
mode = params.get("mode", "ok")
images = job["inputs"]["images"][0]
rows = list(csv.DictReader(open(images["index"], newline="")))
classes = json.load(open(os.path.join(images["dir"], "dataset.json")))["classes"]
counts = Counter(r["label"] for r in rows if r["split"] == "train")
ranked = sorted(counts, key=lambda c: (-counts[c], c))
guess = ranked[params.get("shift", 0) % len(ranked)]
test = [r for r in rows if r["split"] == "test"]
print(f"progress 0/{len(test)} images", flush=True)
if mode == "exit3":
    print("reading the images", file=sys.stderr)
    print("ValueError: the model diverged", file=sys.stderr)
    sys.exit(3)
if mode == "signal":
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "hang":
    child = subprocess.Popen(["sleep", "300"])
    with open(params["pids"], "w") as f:
        f.write(f"{os.getpid()} {child.pid}\n")
    time.sleep(300)
if mode == "missing":
    sys.exit(0)
with open(os.path.join(os.environ["PIPE_OUT"], "predictions.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "y_pred"] + ["score_" + c for c in classes])
    for i, r in enumerate(test):
        pid = int(r["id"]) + (1 if mode == "wrong-ids" and i == 0 else 0)
        pred = "zebra" if mode == "unknown-class" else guess
        w.writerow([pid, pred] + [1.0 if c == guess else 0.5 / len(classes) for c in classes])
print(f"progress {len(test)}/{len(test)} images")
