"""README's pictures of TensorBoard, made by a script rather than by hand.

    python scripts/lab/screenshots.py [--out docs/figures] [--chromium chromium]

Runs the 2x2 sweep of the README (`data=moons model=mlp,mlp_batchnorm
optimizer=sgd,adam`) into a temp dir, serves it with TensorBoard on 127.0.0.1 and a
free port, and writes:

    hparams_sweep.png      the HParams tab as a browser opens it (headless Chromium,
                           Debian's `chromium` package: apt-get install chromium)
    decision_boundary.png  the last decision-boundary picture of the best job, as
                           TensorBoard serves it to its Images tab

Not needed by the tests; it needs no network (TensorBoard's page is served locally).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ["data=moons", "model=mlp,mlp_batchnorm", "optimizer=sgd,adam", "trainer.max_epochs=15"]
# Debian's chromium, headless, with nothing reaching out (DESIGN.md).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1600,600",
    "--virtual-time-budget=20000",  # let the dashboard fetch and draw before the shot
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def run_sweep(work: Path) -> Path:
    """The README's sweep, in `work`; its sweep dir."""
    command = [sys.executable, "-m", "neuralab.train", "-m", *SWEEP]
    subprocess.run(command, cwd=work, check=True, stdout=subprocess.DEVNULL)
    (sweep,) = (work / "logs" / "train" / "multiruns").iterdir()
    return sweep


def serve(sweep: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """TensorBoard over the sweep; returns once every job's runs are listed."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    jobs = sum(1 for p in sweep.iterdir() if (p / ".hydra").is_dir())
    for _ in range(120):
        try:
            if len(json.loads(get(f"{url}/data/runs"))) > jobs:  # the jobs and the sweep (.)
                return proc, url
        except OSError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"tensorboard did not come up: {log.read_text()}")


def screenshot(chromium: str, url: str, path: Path, profile: Path) -> None:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={path}"]
    subprocess.run([*command, url], check=True, capture_output=True, timeout=120)


def decision_boundary(url: str, sweep: Path, path: Path) -> None:
    """The last decision-boundary picture of the job with the best val accuracy."""
    tags = json.loads(get(f"{url}/data/plugin/images/tags"))

    def best_val_acc(run: str) -> float:
        results = json.loads((sweep / run / "results.json").read_text())
        return results["metrics"].get("best_val_acc", 0.0)

    run = max((r for r in tags if r != "."), key=best_val_acc)
    (tag,) = [t for t in tags[run] if t.endswith("decision_boundary")]
    query = urllib.parse.urlencode({"run": run, "tag": tag, "sample": 0})
    entry = json.loads(get(f"{url}/data/plugin/images/images?{query}"))[-1]
    path.write_bytes(get(f"{url}/data/plugin/images/individualImage?{entry['query']}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="neuralab-shots-") as tmp:
        work = Path(tmp)
        sweep = run_sweep(work)
        proc, url = serve(sweep, work / "tensorboard.log")
        try:
            time.sleep(2)  # the last event files read
            screenshot(args.chromium, f"{url}/#hparams", args.out / "hparams_sweep.png", work / "p")
            decision_boundary(url, sweep, args.out / "decision_boundary.png")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    for name in ("hparams_sweep.png", "decision_boundary.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
