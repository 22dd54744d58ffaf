"""Rebuild a sweep's results table from its run dirs, and plot it.

    python scripts/compare.py logs/train/multiruns/<time>
    python scripts/compare.py logs/train/multiruns/<a> logs/train/multiruns/<b> --out cmp/
    python scripts/compare.py <sweep dir> --metric val/loss

Without --out, the sweep dir gets results.csv and results.md again (what the end
of a multirun writes; this also works for older or interrupted sweeps: a job with
no results.json is listed as `missing`) and the plots. With --out, only the plots
are written, there: the sweep dirs are left as they are. The plots, over all the
given sweeps, are curves_<metric>.png (each job's validation curve) and
bars_<metric>.png (best val and test value per configuration: mean, and ± std when
there are two seeds or more). The metric defaults to val/acc, or val/loss where
there is no accuracy (regression).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neuralab.errors import ConfigError
from neuralab.sweep.plots import write_plots
from neuralab.sweep.results import JobResult, collect, job_dirs, write_results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="multirun dirs")
    parser.add_argument("--metric", help="a train/ or val/ scalar tag (default: val/acc)")
    parser.add_argument("--out", type=Path, help="where the PNGs go (default: the sweep dir)")
    return parser.parse_args(argv)


def check_sweep_dir(path: Path) -> None:
    if not path.is_dir():
        raise ConfigError("sweep dir", str(path), "an existing directory")
    if not job_dirs(path):
        raise ConfigError(
            "sweep dir", str(path), "a multirun dir with job dirs (each with .hydra/)"
        )


def compare(sweep_dirs: list[Path], out: Path | None, metric: str | None) -> list[Path]:
    """Tables into each sweep dir (without `out`), plots over all of them into `out` (or
    the sweep dir); the paths written."""
    for path in sweep_dirs:
        check_sweep_dir(path)
    if out is None and len(sweep_dirs) > 1:
        raise ConfigError("--out", None, "a directory for the plots of several sweeps")
    written: list[Path] = []
    jobs: list[JobResult] = []
    for path in sweep_dirs:
        sweep_jobs = collect(path)
        if out is None:  # --out: the sweep dir is only read
            written += write_results(path, sweep_jobs)
        jobs += sweep_jobs
    written += write_plots(jobs, out or sweep_dirs[0], metric)
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        written = compare(args.sweep_dirs, args.out, args.metric)
    except ConfigError as err:
        print(f"compare: error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
