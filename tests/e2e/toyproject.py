"""A tiny throwaway DVC project shaped like radflow's: params sections, reports/metrics.json, a
quarantine table, models/model.pt, but three trivial stages, so the flow is tested in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PARAMS = """\
ingest:
  source: inputs
train:
  epochs: 2
  learning_rate: 0.01
evaluate:
  bootstrap: 10
"""

DVC_YAML = """\
stages:
  ingest:
    cmd: python stages/ingest.py
    deps: [stages/ingest.py, "${ingest.source}"]
    params: [ingest]
    outs: [data/ingest, data/clean]
  train:
    cmd: python stages/train.py
    deps: [stages/train.py, data/ingest]
    params: [train]
    outs: [models/model.pt]
  evaluate:
    cmd: python stages/evaluate.py
    deps: [stages/evaluate.py, models/model.pt]
    params: [evaluate]
    metrics:
      - reports/metrics.json:
          cache: false
    outs: [reports/report.html]
"""

# Each stage appends its name to stage-runs.log (outside DVC's outputs), so tests see what really ran.
STAGES = {
    "ingest": """\
import pathlib, sys, yaml
flaky = pathlib.Path("fail-once")  # a test's stand-in for a network share that drops out once
if flaky.exists():
    flaky.unlink()
    print("OSError: the DICOM share is not reachable", file=sys.stderr)
    sys.exit(1)
p = yaml.safe_load(open("params.yaml"))
files = sorted(pathlib.Path(p["ingest"]["source"]).iterdir())
pathlib.Path("data/ingest").mkdir(parents=True, exist_ok=True)
pathlib.Path("data/ingest/manifest.txt").write_text("\\n".join(f.name for f in files))
pathlib.Path("data/ingest/source.json").write_text('{"root": "inputs", "redact_paths": true}')
pathlib.Path("data/clean").mkdir(parents=True, exist_ok=True)
pathlib.Path("data/clean/quarantine.csv").write_text(
    "path,disposition,reason,detail\\na/1,quarantined,NOT_DICOM,x\\na/2,quarantined,NOT_DICOM,x\\n"
    "b/3,quarantined,LOCALIZER,x\\n")
open("stage-runs.log", "a").write("ingest\\n")
print(f"ingested {len(files)} files")
""",
    "train": """\
import pathlib, sys, yaml
p = yaml.safe_load(open("params.yaml"))["train"]
if p["epochs"] > 100:
    print("error: train.epochs is too large for this toy; use 100 or fewer.", file=sys.stderr)
    sys.exit(2)
pathlib.Path("models").mkdir(exist_ok=True)
pathlib.Path("models/model.pt").write_text(f"epochs={p['epochs']} lr={p['learning_rate']}")
open("stage-runs.log", "a").write("train\\n")
""",
    "evaluate": """\
import json, pathlib
model = pathlib.Path("models/model.pt").read_text()
epochs = int(model.split()[0].split("=")[1])
auc = round(0.5 + epochs / 100, 3)
pathlib.Path("reports").mkdir(exist_ok=True)
metrics = {"auc": auc, "accuracy": 0.7, "sensitivity": 0.8, "specificity": 0.6, "n": 20,
           "threshold": 0.5, "ci95": {"auc": [auc - 0.1, auc + 0.05]}}
json.dump({"test": metrics, "val": metrics}, open("reports/metrics.json", "w"))
pathlib.Path("reports/report.html").write_text(f"<p>AUC {auc}</p>")
open("stage-runs.log", "a").write("evaluate\\n")
""",
}

GITIGNORE = "/data/\n/models/\n/reports/\n/inputs/\n/stage-runs.log\n/fail-once\n"


def sh(cwd: Path, *args: str) -> str:
    """Run a command in CWD and return its stdout (fails the test on a non-zero exit)."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def make_toy_project(root: Path) -> Path:
    """git init + dvc init a three-stage project whose inputs are git-ignored, like a DICOM folder."""
    (root / "stages").mkdir(parents=True)
    for name, code in STAGES.items():
        (root / "stages" / f"{name}.py").write_text(code)
    (root / "inputs").mkdir()
    for i in range(3):
        (root / "inputs" / f"img{i}.txt").write_text(str(i))
    (root / "params.yaml").write_text(PARAMS)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / ".gitignore").write_text(GITIGNORE)
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, sys.executable, "-m", "dvc", "init", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "toy project")
    return root


def stage_runs(root: Path) -> list[str]:
    """The stages that really executed, in order, since the log was last cleared."""
    log = root / "stage-runs.log"
    runs = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return runs
