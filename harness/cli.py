"""``python -m harness``: a sweep (Hydra overrides) or a subcommand (``report``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from harness import fmt
from harness.plan import CONF_DIR, plan
from harness.registry import load_plugins


def sweep(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from harness.report import report
    from harness.runner import run_points

    points = plan(cfg)
    failed = run_points(points, results_dir=cfg.results_dir, experiment=cfg.experiment_name, baseline=cfg.baseline)
    single = HydraConfig.get().mode != RunMode.MULTIRUN
    if cfg.report and single:
        print("\n" + report([cfg.results_dir], out_dir=cfg.results_dir))
    if failed:
        print(f"{failed} point(s) failed; their rows hold the error", flush=True)
        if single:  # a multirun goes on to its other jobs
            raise SystemExit(1)


class MultirunReport(Callback):
    """After a ``-m`` sweep, one report over everything in the results folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.report import report

        if config.report and Path(config.results_dir).exists():
            print("\n" + report([config.results_dir], out_dir=config.results_dir))


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"harness {name}", description=description)


def _html_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html", metavar="OUT.html", help="also write the tables and interactive plots as one "
                   "self-contained HTML page (opens offline)")


def _write_html(path: str, page: str) -> None:
    from harness.webpage import write

    print(f"html: {write(path, page)}")


def report_main(argv: list[str]) -> int:
    from harness.report import report

    p = _parser("report", "Summary table (speedups, quality deltas, Pareto marks) and Pareto plot.")
    p.add_argument("results", nargs="+", help="result folders or .parquet files")
    p.add_argument("--baseline", help="variant label to compute speedups against (default: as recorded)")
    p.add_argument("--quality", help="quality metric (default: fid if measured, else the first quality metric)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--out", help="folder to write the Pareto plot to (default: no plot)")
    _html_flag(p)
    args = p.parse_args(argv)
    print(report(args.results, args.baseline, args.out, args.markdown, args.quality))
    if args.html:
        from harness.webpage import report_page

        _write_html(args.html, report_page(args.results, args.baseline, args.quality))
    return 0


def pareto_main(argv: list[str]) -> int:
    from harness.analysis import direction, estimates, pareto_table, resolve_metric
    from harness.plot import pareto_plot
    from harness.results import load

    p = _parser("pareto", "Pareto front of any (cost, quality) pair, per setting, with CIs and hypervolume.")
    p.add_argument("results", nargs="+")
    p.add_argument("--cost", default="latency", help="cost metric as in the rows, or an alias (default: latency)")
    p.add_argument("--quality", default="fid", help="quality metric (default: fid)")
    p.add_argument("--ref", help="hypervolume reference point COST,QUALITY (default: each setting's nadir)")
    p.add_argument("--out", help="folder to write the plot to (default: no plot)")
    _html_flag(p)
    args = p.parse_args(argv)
    rows = load(*args.results)
    est = estimates(rows)
    cost, quality = resolve_metric(args.cost, est.metric), resolve_metric(args.quality, est.metric)
    ref = tuple(float(x) for x in args.ref.split(",")) if args.ref else None
    if ref is not None and len(ref) != 2:
        raise SystemExit(f"--ref {args.ref!r}: expected COST,QUALITY")
    table, volumes = pareto_table(est, cost, quality, ref)
    for _, v in volumes.iterrows():
        print(f"{v.task} / {v.model} on {v.hardware} ({v.device_name}): {v.front} of {v.points} points on the front; "
              f"hypervolume {fmt.num(v.hypervolume)} against ({cost} {fmt.num(v.ref_cost)}, {quality} "
              f"{fmt.num(v.ref_quality)}), "
              f"{v.reference}")
        grp = table[table.setting == v.setting].sort_values(cost)
        cells = [[r.variant, fmt.ci(r[cost], r[f"{cost}_low"], r[f"{cost}_high"]),
                  fmt.ci(r[quality], r[f"{quality}_low"], r[f"{quality}_high"]),
                  "front" if r.on_front else ("CI reaches the front" if r.near_front else "")]
                 for _, r in grp.iterrows()]
        print(fmt.table(["variant", cost, quality, ""], cells, indent="  "))
    if args.out:
        files = pareto_plot(table.assign(status="ok"), Path(args.out) / f"pareto_{quality}_{cost}", cost, quality,
                            direction(est, quality))
        print("plot: " + ", ".join(map(str, files)))
    if args.html:
        from harness.webpage import pareto_page

        _write_html(args.html, pareto_page(est, table, volumes, cost, quality, rows, " ".join(args.results)))
    return 0


def compare_main(argv: list[str]) -> int:
    from harness.compare import EXIT_ERROR, CompareError, compare, render
    from harness.results import load

    p = _parser("compare", "Compare result set B against A, point by point, with verdicts. Exit codes: 0 no "
                "regression, 1 regression, 2 inconclusive only, 3 error (unreadable input or unmatched points).")
    p.add_argument("a", help="result folder or file: the reference (old commit, old GPU)")
    p.add_argument("b", help="result folder or file: the candidate")
    p.add_argument("--metrics", help="comma-separated metrics (default: latency and every quality metric)")
    p.add_argument("--margin", type=float, default=0.05, help="relative change that matters (default 0.05)")
    p.add_argument("--allow-unmatched", action="store_true", help="points in only one set are listed, not an error")
    _html_flag(p)
    args = p.parse_args(argv)
    try:
        rows_a, rows_b = load(args.a), load(args.b)
        c = compare(rows_a, rows_b, args.metrics.split(",") if args.metrics else None, args.margin)
    except (CompareError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(render(c, args.margin))
    if args.html:
        from harness.webpage import compare_page

        _write_html(args.html, compare_page(c, args.margin, args.a, args.b, rows_a, rows_b))
    if (c.only_a or c.only_b) and not args.allow_unmatched:
        print("error: some points are in only one result set (see above); --allow-unmatched to accept",
              file=sys.stderr)
        return EXIT_ERROR
    return c.exit_code


def history_main(argv: list[str]) -> int:
    from harness.compare import history, render_history
    from harness.plot import history_plot
    from harness.results import load

    p = _parser("history", "Each point's metric over many runs (dates, commits, GPUs) and where it first changed.")
    p.add_argument("results", nargs="+", help="result folders or files, all runs together")
    p.add_argument("--metric", default="latency")
    p.add_argument("--margin", type=float, default=0.05)
    p.add_argument("--out", help="folder to write the plot to (default: no plot)")
    _html_flag(p)
    args = p.parse_args(argv)
    rows = load(*args.results)
    h = history(rows, args.metric, args.margin)
    print(render_history(h, args.metric))
    if args.out:
        files = history_plot(h, Path(args.out) / f"history_{args.metric}", args.metric)
        print("plot: " + ", ".join(map(str, files)))
    if args.html:
        from harness.webpage import history_page

        _write_html(args.html, history_page(h, args.metric, rows, " ".join(args.results)))
    return 0


def budget_main(argv: list[str]) -> int:
    from harness.analysis import estimates
    from harness.budget import best_within, curves, parse_range, render, render_curves
    from harness.plot import budget_plot
    from harness.results import load

    p = _parser("budget", "Best quality per method within a cost budget (--max), or over a range of budgets.")
    p.add_argument("results", nargs="+")
    p.add_argument("--cost", default="latency", help="cost metric: latency, nfe, flops, peak_memory, ...")
    p.add_argument("--quality", default="fid")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--max", type=float, help="the budget: largest cost allowed")
    g.add_argument("--range", help="LO:HI[:N] budgets, geometrically spaced: quality-vs-budget curves")
    p.add_argument("--out", help="folder to write the curves plot to (default: no plot)")
    _html_flag(p)
    args = p.parse_args(argv)
    rows = load(*args.results)
    est = estimates(rows)
    if args.max is not None:
        res = best_within(est, args.cost, args.quality, args.max)
        print(render(res))
    else:
        res = curves(est, args.cost, args.quality, parse_range(args.range))
        print(render_curves(res))
    if args.html:
        from harness.webpage import budget_page

        _write_html(args.html, budget_page(res, rows, " ".join(args.results)))
    if args.out and args.max is None:
        files = budget_plot(res, Path(args.out) / f"budget_{res.attrs['quality']}_{res.attrs['cost']}")
        print("plot: " + ", ".join(map(str, files)))
    return 0


def claims_main(argv: list[str]) -> int:
    from harness.claims import CLAIMS_DIR, ClaimError, evaluate, load_claims, render

    p = _parser("claims", "Claimed vs measured for the registered paper claims; runs missing points. Exit 0 when "
                "every claim got a verdict (whatever it is), 1 otherwise.")
    p.add_argument("ids", nargs="*", help="claim ids (file stems in conf/claims); default: all")
    p.add_argument("--claims-dir", default=str(CLAIMS_DIR))
    p.add_argument("--no-run", action="store_true", help="only judge points that already have results")
    p.add_argument("--set", action="append", default=[], metavar="OVERRIDE",
                   help="extra Hydra override for every claim, after the claim's own (e.g. --set hardware=cuda "
                        "to check a GPU claim on this machine's GPU); repeatable")
    _html_flag(p)
    args = p.parse_args(argv)
    summary, failed, verdicts, errors = [], 0, [], {}
    for claim in load_claims(args.claims_dir, args.ids or None):
        claim = replace(claim, overrides=(*claim.overrides, *args.set))
        try:
            v = evaluate(claim, run=not args.no_run)
        except (ClaimError, ValueError, RuntimeError) as exc:  # bad config or point: say why, go on
            failed += 1
            print(f"[{claim.id}] NO VERDICT: {type(exc).__name__}: {exc}\n", flush=True)
            summary.append((claim.id, "-", "-", "-", "no verdict"))
            errors[claim.id] = f"{type(exc).__name__}: {exc}"
            continue
        verdicts.append(v)
        print(render(v) + "\n", flush=True)
        summary.append((claim.id, "; ".join(f"{c.metric} {c.kind} {c.claimed:g}" for c, _, _ in v.checks)
                        + f" on {claim.claimed_on}", "; ".join(fmt.estimate(e) for _, e, _ in v.checks),
                        v.measured_on.split(",")[0], v.verdict))
    header = ["claim", "claimed", "measured [95% CI]", "measured on", "verdict"]
    print(fmt.table(header, summary, markdown=True))
    if args.html:
        from harness.webpage import claims_page

        _write_html(args.html, claims_page(header, summary, verdicts, errors))
    return 1 if failed else 0


def export_main(argv: list[str]) -> int:
    from harness.export import TARGETS, ExportError
    from harness.results import load

    p = _parser("export", "Export result rows to a tracker: one run per point (config as params, metrics with "
                "their CIs, the environment as tags, the parquet file as an artifact); points already exported are "
                "skipped.")
    p.add_argument("results", nargs="+", help="result folders or .parquet files")
    p.add_argument("--to", required=True, choices=sorted(TARGETS), help="where to export")
    p.add_argument("--tracking-uri", help="MLflow tracking URI, e.g. file:///path/mlruns or sqlite:///mlflow.db "
                   "(default: MLflow's own, MLFLOW_TRACKING_URI)")
    p.add_argument("--experiment", help="MLflow experiment name (default: each point's experiment)")
    p.add_argument("--artifact-location", help="where a new MLflow experiment keeps the parquet files (default: "
                   "MLflow's; for a sqlite store, ./mlruns here)")
    args = p.parse_args(argv)
    try:
        done = TARGETS[args.to](load(*args.results), tracking_uri=args.tracking_uri, experiment=args.experiment,
                                artifact_location=args.artifact_location)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(fmt.table(["variant", "point_id", args.to, "run"], [[e.variant, e.point_id, e.action, e.target_id]
                                                              for e in done]))
    return 0


SUBCOMMANDS = {"report": report_main, "pareto": pareto_main, "compare": compare_main, "history": history_main,
               "budget": budget_main, "claims": claims_main, "export": export_main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if argv and not argv[0].startswith("-") and "=" not in argv[0]:
        raise SystemExit(f"unknown subcommand {argv[0]!r}; valid: {', '.join(SUBCOMMANDS)}, or Hydra overrides "
                         "such as method=ddim method.steps=10")
    import hydra

    load_plugins()
    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(sweep)()
    return 0
