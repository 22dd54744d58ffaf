"""The benchmark's report: the machine it ran on, and its docs/PERFORMANCE.md section."""

from __future__ import annotations

import torch


def markdown(report: dict) -> str:
    """docs/PERFORMANCE.md's benchmark section, generated from a report (never typed by hand)."""
    env = report["environment"]
    lines = [
        f"Measured by `{report['command']}` on {env['cpus']} CPU cores, torch {env['torch']}, "
        f"lightning {env['lightning']} ({report['date']}; medians of {report['repeats']} "
        "alternating repeats).",
        "",
        "| workload | epochs | plain loop samples/s | neuralab-train samples/s | ratio "
        "| ratio per repeat, min-max | neuralab-train wall s (process start to exit) "
        "| start-up to first step s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, w in report["workloads"].items():
        lines.append(
            f"| {name} | {w['epochs']} | {w['plain_samples_per_s']:,.0f} | "
            f"{w['neuralab_samples_per_s']:,.0f} | {w['ratio_median']:.2f} | "
            f"{min(w['ratios']):.2f}-{max(w['ratios']):.2f} | "
            f"{w['neuralab_wall_s']:.1f} | {w['neuralab_startup_s']:.1f} |"
        )
    if "gpu" in report:
        lines += ["", f"GPU: {report['gpu']}."]
    m = report.get("multirun")
    if m:
        lines += [
            "",
            f"A {m['jobs']}-job multirun of the default config ({m['epochs']} epochs "
            f"each, hydra/launcher=basic: one job after another) took "
            f"{m['multirun_s']:.1f} s: {m['ratio_vs_in_process']:.2f}x the "
            f"{m['plain_in_process_s']:.1f} s of {m['jobs']} plain loops run back to back "
            f"in one process (compute only), {m['ratio_vs_per_process']:.2f}x the "
            f"{m['plain_per_process_s']:.1f} s of {m['jobs']} plain loops in a process each.",
        ]
        if "fit_s" in m:  # reports saved before the split was measured lack it
            lines += [
                "",
                f"Of those {m['multirun_s']:.1f} s: {m['startup_s']:.1f} s from process start "
                f"to the first job's first step (imports, Hydra, set-up); {m['fit_s']:.1f} s "
                f"in the jobs' fit windows (first step to end of training, "
                f"{m['fit_s'] / m['plain_in_process_s']:.2f}x the plain loops' compute); "
                f"{m['between_fits_s']:.1f} s between fits, "
                f"{m['between_fits_per_job_ms']:.0f} ms per later job (Hydra's job set-up, "
                "trainer build, fit start, test, results).",
            ]
    return "\n".join(lines)


def sweeps_markdown(report: dict) -> str:
    """docs/PERFORMANCE.md's sweeps section: each sweep three ways, then the GPU pack."""
    env = report["environment"]
    lines = [
        f"Measured by `{report['command']}` on {env['cpus']} CPU cores, torch {env['torch']}, "
        f"lightning {env['lightning']} ({report['date']}; one run of each).",
        "",
        "| sweep | jobs x epochs | run | end to end s | start-up s | after start-up s | ratios |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, sweep in report["sweeps"].items():
        swept = " x ".join(f"{key} ({len(values)})" for key, values in sweep["swept"].items())
        head = f"| {name}: {swept} | {sweep['jobs']} x {sweep['epochs']} "
        lines += [head + row for row in _sweep_rows(sweep)]
    return "\n".join([*lines, "", _gpu_line(report["sweeps_gpu"])])


def _sweep_rows(sweep: dict) -> list[str]:
    basic, packed = sweep["basic"], sweep["packed"]
    plain = f"| plain | - | - | {sweep['plain_s']:.1f} | compute only |"
    if "error" in packed:
        cells = _figures(basic)
        return [
            f"| basic {cells} - |",
            f"| packed: not available ({packed['error']}) | - | - | - | - |",
            plain,
        ]
    return [
        f"| basic {_figures(basic)} basic / packed: {sweep['basic_over_packed']:.2f} end to "
        f"end, {sweep['basic_over_packed_after_startup']:.2f} after start-up |",
        f"| packed {_figures(packed)} packed after start-up / plain: "
        f"{sweep['packed_after_startup_over_plain']:.2f} |",
        plain,
    ]


def _figures(run: dict) -> str:
    return f"| {run['wall_s']:.1f} | {run['startup_s']:.1f} | {run['after_startup_s']:.1f} |"


def _gpu_line(gpu: dict | str) -> str:
    if isinstance(gpu, str):
        return f"GPU: {gpu}."
    head = f"GPU ({gpu['device']}): a {gpu['members']}-member pack of the default MLP"
    for run in ("packed", "basic"):
        if "error" in gpu.get(run, {}):
            return f"{head}: {run}: not available ({gpu[run]['error']})."
    return (
        f"{head} ({gpu['epochs']} epochs): {gpu['packed_members_per_s']:.1f} members/s after "
        f"start-up, against {gpu['basic_jobs_per_s']:.2f} jobs/s for {gpu['members']} "
        f"sequential jobs (basic launcher), "
        f"{gpu['packed_members_per_s'] / gpu['basic_jobs_per_s']:.1f}x; peak GPU memory "
        f"{gpu['memory_per_member_mib']:.2f} MiB per member."
    )


def environment() -> dict:
    import os

    import lightning

    return {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
