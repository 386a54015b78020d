"""``python -m harness``: a sweep (Hydra overrides) or a subcommand (``report``).

Every command follows one error contract (``harness.errors``): a bad input is one line naming it
and what was expected, exit code 3, and nothing runs; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from harness import fmt
from harness.errors import BAD_INPUT, EXIT_BAD_INPUT, UsageError, debug_requested, guarded, one_line, report_error
from harness.plan import CONF_DIR, Point, compose_config, plan
from harness.registry import load_plugins
from harness.results import aside_dir, check_writable, meta_dir


def sweep(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from harness.launch.launcher import PENDING, launch

    points = prepared_points(cfg)
    launcher = OmegaConf.to_object(cfg.launcher)
    run = launch(points, launcher, results_dir=cfg.results_dir, experiment=cfg.experiment_name,
                 baseline=cfg.baseline)
    single = HydraConfig.get().mode != RunMode.MULTIRUN
    if not launcher.wait:
        run.detach()
    elif run.background and not single:
        PENDING.append(run)  # every job's points are submitted first; the multirun's end waits for them
    else:
        _finish([run], cfg, single)


def _finish(runs: list[Any], cfg: DictConfig, single: bool) -> None:
    """Wait for the launches, then print the one report (a multirun prints it from its callback)."""
    from harness.report import report

    bad = sum(run.wait().bad for run in runs)
    if cfg.report and single:
        print("\n" + report([cfg.results_dir], out_dir=aside_dir(cfg.results_dir, "plots")))
    if bad:
        print(f"{bad} point(s) failed; their rows hold the error", flush=True)
        if single:  # a multirun goes on to its other jobs
            raise SystemExit(1)


def prepared_points(cfg: DictConfig) -> list[Point]:
    """The validated points, after the checks that must pass before anything is measured
    (``harness.preflight``); a bad input ends the run here with one line and exit code 3."""
    from harness.preflight import preflight

    try:
        points = plan(cfg)
        preflight(points, cfg.results_dir)
    except BAD_INPUT as exc:
        if debug_requested([])[0]:
            raise
        raise SystemExit(report_error("harness", exc)) from None
    return points


class MultirunReport(Callback):
    """After a ``-m`` sweep, wait for points submitted to a cluster, then one report over the folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.launch.launcher import PENDING
        from harness.report import report

        runs, PENDING[:] = list(PENDING), []
        if runs:
            _finish(runs, config, single=False)
        if config.report and config.launcher.wait and Path(config.results_dir).exists():
            print("\n" + report([config.results_dir], out_dir=aside_dir(config.results_dir, "plots")))


class _Parser(argparse.ArgumentParser):
    """argparse, under the error contract: a bad argument is one line and exit code 3 (argparse's own
    exit code 2 would read as `compare`'s "inconclusive")."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _number(low: float, high: float | None = None, low_open: bool = True) -> Any:
    """An argparse type: a finite number in (low, high) (or [low, high) when not ``low_open``)."""
    def parse(text: str) -> float:
        bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and < {high:g}" if high is not None else "")
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text!r}") from None
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and (high is None or value < high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text!r}")
        return value

    return parse


MARGIN = _number(0.0, 1.0, low_open=False)  # a relative change, e.g. 0.05


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"harness {name}", description=description,
                epilog="Exit codes: 0 done, 1 a failure in the results, 2 inconclusive (compare), 3 bad input (one "
                       "line naming it), 4 internal error. --debug: show tracebacks.")
    return p


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
    ref = _ref(args.ref) if args.ref else None
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


def _ref(text: str) -> tuple[float, float]:
    try:
        ref = tuple(float(x) for x in text.split(","))
    except ValueError:
        ref = ()
    if len(ref) != 2 or not all(map(math.isfinite, ref)):
        raise UsageError(f"argument --ref: expected COST,QUALITY (two numbers, e.g. 0.5,40), got {text!r}")
    return ref  # type: ignore[return-value]


def compare_main(argv: list[str]) -> int:
    from harness.compare import EXIT_ERROR, compare, load_side, render

    p = _parser("compare", "Compare result set B against A, point by point, with the run as the unit. Exit codes: 0 "
                "no regression, 1 regression or a changed deterministic metric, 2 inconclusive only, 3 error "
                "(unreadable input, unmatched points, --strict on a busy machine).")
    p.add_argument("a", help="the reference (old commit, old GPU): result folders or files, a quoted glob of them "
                   "('results/aa/run*'), or run ids; comma-separated; each measurement of a point is one run")
    p.add_argument("b", help="the candidate, as A")
    p.add_argument("--metrics", help="comma-separated metrics (default: latency, every quality metric and every "
                   "deterministic co-metric)")
    p.add_argument("--margin", type=MARGIN, default=0.05, help="relative change that matters, in [0, 1) "
                   "(default 0.05)")
    p.add_argument("--noise", action="append", default=None, metavar="PATH",
                   help="noise profile(s) from `harness aa`, or folders holding them (default: every "
                   "noise_profile.json under results/); 'none' to use none")
    p.add_argument("--paired", action="store_true", help="run i of A ran next to run i of B (interleaved rounds)")
    p.add_argument("--runs-root", default="results", help="where to look up run ids (default: results)")
    p.add_argument("--strict", action="store_true", help="refuse (exit 3) when a run was measured on a busy machine")
    p.add_argument("--allow-unmatched", action="store_true", help="points in only one set are listed, not an error")
    _html_flag(p)
    args = p.parse_args(argv)
    profiles = _profiles(args.noise)
    rows_a, rows_b = load_side(args.a, args.runs_root), load_side(args.b, args.runs_root)
    c = compare(rows_a, rows_b, args.metrics.split(",") if args.metrics else None, args.margin, profiles=profiles,
                paired=args.paired)
    print(render(c, args.margin))
    used = [p.path for p in profiles if c.per_point.get("estimator", []).astype(str).str.contains(p.path).any()] \
        if len(c.per_point) and "estimator" in c.per_point else []
    if used:
        print("noise profiles used: " + ", ".join(used))
    if args.html:
        from harness.webpage import compare_page

        _write_html(args.html, compare_page(c, args.margin, args.a, args.b, rows_a, rows_b))
    if (c.only_a or c.only_b) and not args.allow_unmatched:
        print("harness compare: error: some points are in only one result set (see above); --allow-unmatched to "
              "accept", file=sys.stderr)
        return EXIT_ERROR
    if c.busy and args.strict:
        print("harness compare: error: --strict, and the machine was not quiet during some runs (see the warning "
              "above)", file=sys.stderr)
        return EXIT_ERROR
    return c.exit_code


def _profiles(given: list[str] | None) -> list:
    from harness.noise import load_profiles

    if given == ["none"]:
        return []
    if given is None:
        return load_profiles(["results"]) if Path("results").is_dir() else []
    return load_profiles(given)


def history_main(argv: list[str]) -> int:
    from harness.compare import history, render_history
    from harness.plot import history_plot
    from harness.results import load

    p = _parser("history", "Each point's metric over many runs (dates, commits, GPUs) and its persistent changes "
                "(change points confirmed by later runs).")
    p.add_argument("results", nargs="+", help="result folders or files, all runs together")
    p.add_argument("--metric", default="latency")
    p.add_argument("--margin", type=MARGIN, default=0.05, help="relative change that matters, in [0, 1)")
    p.add_argument("--confirm", type=int, default=2, help="runs after a change that must confirm it (default 2)")
    p.add_argument("--out", help="folder to write the plot to (default: no plot)")
    _html_flag(p)
    args = p.parse_args(argv)
    if args.confirm < 1:
        raise UsageError(f"argument --confirm: expected a count >= 1, got {args.confirm}")
    rows = load(*args.results)
    h = history(rows, args.metric, args.margin, min_segment=args.confirm)
    print(render_history(h, args.metric, args.margin))
    if args.out:
        files = history_plot(h, Path(args.out) / f"history_{args.metric}", args.metric)
        print("plot: " + ", ".join(map(str, files)))
    if args.html:
        from harness.webpage import history_page

        _write_html(args.html, history_page(h, args.metric, rows, " ".join(args.results)))
    return 0


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra overrides (``key=value``, ``+key=value``) apart from this command's own flags."""
    over = [a for a in argv if "=" in a and not a.startswith("-")]
    return over, [a for a in argv if a not in over]


def aa_main(argv: list[str]) -> int:
    from harness import noise
    from harness.reruns import RerunError, aa_runs
    from harness.results import load

    p = _parser("aa", "A/A noise profile: R reruns of an experiment, each in a fresh process; writes the between- and "
                "within-run spread of every point (noise_profile.json) for `compare`, and marks unstable points. "
                "Hydra overrides (experiment=..., profile=smoke) go anywhere on the line.")
    p.add_argument("--runs", type=int, default=5, help="fresh-process runs (default 5)")
    p.add_argument("--out", help="folder for the runs and the profile (default: the experiment's results folder + -aa)")
    p.add_argument("--max-sd", type=float, default=noise.MAX_BETWEEN_SD,
                   help="between-run sd of log latency above which a point is unstable (default "
                   f"{noise.MAX_BETWEEN_SD})")
    p.add_argument("--margin", type=MARGIN, default=0.05, help="margin for the detectable-effect table (default 0.05)")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs each rerun (default: this one)")
    overrides, rest = _split_overrides(argv)
    args = p.parse_args(rest)
    if args.runs < 2:
        raise UsageError(f"argument --runs: a profile needs at least 2 runs (5 or more to say much), got {args.runs}")
    out = Path(args.out or f"{compose_config(overrides).results_dir}-aa")
    try:
        folders = aa_runs(out, overrides, args.runs, args.python)
    except RerunError as exc:
        print(f"harness aa: error: {one_line(exc)}", file=sys.stderr)
        return 1
    prof = noise.build(load(*folders), args.max_sd)
    path = noise.save(prof, meta_dir(out) / noise.FILE_NAME)  # a results folder holds result files only
    print(noise.render(prof, args.margin))
    print(f"noise profile: {path} (compare reads every noise_profile.json under results/, or --noise {path})")
    return 0


def ab_main(argv: list[str]) -> int:
    from harness.compare import compare, render
    from harness.reruns import RerunError, ab_runs, remove_trees, resolve_side
    from harness.results import load

    p = _parser("ab", "Interleaved A/B on this machine: two code versions run the same experiment alternately in "
                "fresh processes (A B B A ...), judged on the per-round ratios. Exit codes as compare. Hydra "
                "overrides go anywhere on the line.")
    p.add_argument("a", help="reference: a git ref (HEAD~1, a branch), a checkout folder, or python:/path/to/python")
    p.add_argument("b", help="candidate, as A ('.' is this checkout as it is, uncommitted changes included)")
    p.add_argument("--rounds", type=int, default=4, help="rounds; each runs both sides once (default 4)")
    p.add_argument("--out", help="folder for the runs (default: the experiment's results folder + -ab)")
    p.add_argument("--margin", type=MARGIN, default=0.05, help="relative change that matters, in [0, 1)")
    p.add_argument("--metrics", help="comma-separated metrics (default as compare)")
    p.add_argument("--keep-trees", action="store_true", help="keep the git worktrees made for refs")
    overrides, rest = _split_overrides(argv)
    args = p.parse_args(rest)
    if args.rounds < 2:
        raise UsageError(f"argument --rounds: a paired CI needs at least 2 rounds (4 or more to say much), got "
                         f"{args.rounds}")
    out = Path(args.out or f"{compose_config(overrides).results_dir}-ab")
    trees = meta_dir(out) / "trees"  # next to the results: a results folder holds result files only
    try:
        a, b = resolve_side(args.a, trees), resolve_side(args.b, trees)
        fa, fb = ab_runs(out, a, b, overrides, args.rounds)
    except RerunError as exc:
        print(f"harness ab: error: {one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        if not args.keep_trees:
            remove_trees(trees)
    c = compare(load(*fa), load(*fb), args.metrics.split(",") if args.metrics else None, args.margin, paired=True)
    print(f"A = {a.label}{f' ({a.git_ref[:12]})' if a.git_ref else ''}, B = {b.label}"
          f"{f' ({b.git_ref[:12]})' if b.git_ref else ''}; {args.rounds} rounds in {out}")
    print(render(c, args.margin))
    return c.exit_code


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
    g.add_argument("--max", type=_number(0.0), help="the budget: largest cost allowed (> 0)")
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


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integer seeds, e.g. 0,1,2") from None
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds must be distinct and >= 0")
    return seeds


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
    p.add_argument("--seeds", type=_seed_list, metavar="S1,S2,...",
                   help="the seeds behind every claim (replicates), e.g. 0,1,2; default: the experiment's seed "
                        "and the next ones, as many as each claim needs (its `seeds:`, 3 for quality checks)")
    _html_flag(p)
    args = p.parse_args(argv)
    summary, failed, verdicts, errors = [], 0, [], {}
    for claim in load_claims(args.claims_dir, args.ids or None):
        claim = replace(claim, overrides=(*claim.overrides, *args.set))
        try:
            v = evaluate(claim, run=not args.no_run, seeds=args.seeds)
        except (ClaimError, ValueError, RuntimeError) as exc:  # bad config or point: say why, go on
            failed += 1
            print(f"[{claim.id}] NO VERDICT: {type(exc).__name__}: {one_line(exc)}\n", flush=True)
            summary.append((claim.id, "-", "-", "-", "-", "no verdict"))
            errors[claim.id] = f"{type(exc).__name__}: {one_line(exc)}"
            continue
        verdicts.append(v)
        print(render(v) + "\n", flush=True)
        summary.append((claim.id, "; ".join(f"{r.check.metric} {r.check.kind} {r.check.claimed:g}" for r in v.checks)
                        + f" on {claim.claimed_on}", "; ".join(fmt.estimate(r.estimate) for r in v.checks),
                        str(len(v.seeds)), v.measured_on.split(",")[0], v.verdict))
    header = ["claim", "claimed", "measured [95% CI]", "seeds", "measured on", "verdict"]
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


ABOUT = {
    "report": "summary table: latency, speedup and quality change vs the baseline, with CIs (--out: plot)",
    "pareto": "Pareto front of any cost and quality metric, with CIs and hypervolume",
    "compare": "result set B against A, point by point: regression / improvement / no change / inconclusive",
    "history": "each point's metric over many runs, and its persistent changes (change points)",
    "aa": "A/A noise profile: R fresh-process reruns of an experiment; between- and within-run spread per point",
    "ab": "interleaved A/B: two code versions run alternately in fresh processes, judged on paired rounds",
    "budget": "best quality per method within a cost budget (--max) or over a range of budgets (--range)",
    "claims": "registered paper claims (conf/claims): claimed vs measured, a verdict per claim",
    "export": "result rows to a tracker (--to mlflow): one run per point, metrics with their CIs",
}
SUBCOMMANDS = {"report": report_main, "pareto": pareto_main, "compare": compare_main, "history": history_main,
               "budget": budget_main, "claims": claims_main, "export": export_main, "aa": aa_main, "ab": ab_main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return guarded(f"harness {argv[0]}", SUBCOMMANDS[argv[0]], argv[1:])
    debug, argv = debug_requested(argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(help_text())
        return 0
    if argv and not argv[0].startswith("-") and "=" not in argv[0]:
        print(f"harness: error: unknown subcommand {argv[0]!r}; valid: {', '.join(SUBCOMMANDS)}, or Hydra overrides "
              "such as method=ddim method.steps=10 (harness --help)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if debug:
        os.environ["HARNESS_DEBUG"] = "1"  # for the sweep, which Hydra calls
    else:
        code = precheck(argv)
        if code:
            return code
    import hydra

    load_plugins()
    if "--no-wait" in argv:  # submit and return: the same as the override launcher.wait=false
        argv = [a for a in argv if a != "--no-wait"] + ["launcher.wait=false"]
    sys.argv = [sys.argv[0], *argv]
    hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(sweep)()
    return 0


# Hydra's own flags (--cfg job, --info, --hydra-help, ...): Hydra handles those, unchecked here.
_SWEEP_FLAGS = ("-m", "--multirun")
_QUOTING = ("a value with spaces or any of ( ) [ ] { } , = ~ : ' \" needs quotes inside the argument, e.g. "
            "'results_dir=\"~/my results (2)\"'")
PRECHECK_MAX_JOBS = 256  # a longer -m sweep is checked job by job as it runs


def precheck(argv: list[str]) -> int:
    """Compose and plan every job of the command line before Hydra runs any of it, so that a bad
    override or value is one line and exit code 3 before anything is measured (0 when all is well)."""
    flags = [a for a in argv if a.startswith("-")]
    if any(f not in _SWEEP_FLAGS for f in flags):
        return 0
    overrides = [a for a in argv if not a.startswith("-")]
    try:
        jobs = _jobs(overrides) if flags else [overrides]
        folders = []
        for job in jobs[:PRECHECK_MAX_JOBS]:
            cfg = compose_config(job)
            with contextlib.redirect_stdout(io.StringIO()):  # plan's notes print once, in the real run
                plan(cfg)
            folders.append(cfg.results_dir)
        for folder in dict.fromkeys(folders):  # once every job is valid: this creates the folders
            check_writable(folder)
    except Exception as exc:  # noqa: BLE001  (the error contract: one line)
        return report_error("harness", _with_quoting_hint(exc, overrides))
    return 0


def _jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs of a ``-m`` command line, as Hydra's basic sweeper splits them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _with_quoting_hint(exc: Exception, overrides: list[str]) -> Exception:
    """Hydra's parse errors do not say which argument: name it, and how to quote."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    if not (isinstance(exc, OverrideParseException) or "Ambiguous value for argument" in str(exc)):
        return exc
    bad = None
    for o in overrides:
        try:
            OverridesParser.create().parse_override(o)
        except Exception:  # noqa: BLE001  (Hydra raises several kinds here)
            bad = o
            break
    where = f"{bad}: " if bad and bad not in str(exc).splitlines()[0] else ""
    return ValueError(f"{where}{str(exc).splitlines()[0]}: {_QUOTING} (https://hydra.cc/docs/advanced/"
                      "override_grammar/basic)")


def help_text() -> str:
    """``harness --help``: the subcommands, the config groups and keys a user can set, exit codes."""
    import yaml

    from harness.registry import METHODS, TASKS

    load_plugins()
    root = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    groups = {}
    for entry in root["defaults"]:
        if isinstance(entry, dict):
            (group, default), = entry.items()
            if not group.startswith(("override ", "hydra")):
                groups[group] = default
    options = {g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml")) for g in groups if (CONF_DIR / g).is_dir()}
    options["task"] = sorted(TASKS)
    by_workload: dict[str, list[str]] = {}
    for name, cls in sorted(METHODS.items()):
        by_workload.setdefault(cls.__module__.split(".")[-2] if cls.__module__.count(".") >= 2 else "other",
                               []).append(name)
    options["method"] = [f"{w}: {', '.join(n)}" for w, n in sorted(by_workload.items())]
    options["timing"] = ["default (set fields: timing.max_time_s=2, timing.min_repeats=7, ...)"]
    lines = [
        "usage: harness [OVERRIDE ...]          run a sweep: the default experiment (samplers_digits) on CPU",
        "       harness -m OVERRIDE ...         one job per combination (e.g. method=ddim,euler method.steps=5,10)",
        "       harness SUBCOMMAND ARGS...      analyse results (harness SUBCOMMAND --help)",
        "",
        "subcommands:",
        *[f"  {name:<8} {ABOUT[name]}" for name in SUBCOMMANDS],
        "",
        "config groups (GROUP=OPTION; default in brackets):",
    ]
    for group, default in groups.items():
        opts = options.get(group, [])
        head = f"  {group:<10} [{default if default is not None else 'none'}] "
        if group == "method":
            lines.append(head + "registered methods by workload (method.FIELD=... sets a field):")
            lines += [f"{'':<14}{o}" for o in opts]
        else:
            lines.append(head + ", ".join(opts))
    lines += ["", "keys (KEY=VALUE):"]
    keys = [*_root_keys(), ("hardware.threads", "N", "torch CPU threads (recorded; never changed by load)"),
            ("task.FIELD", "...", "a field of the task's config, e.g. task.n_samples=500"),
            ("timing.FIELD", "...", "the timing policy, e.g. timing.max_time_s=2")]
    for key, val, about in keys:
        kv = f"{key}={val}"
        lines.append(f"  {kv:<26} {about}" if len(kv) < 27 else f"  {kv}\n  {'':<26} {about}")
    lines += [
        "",
        "Values with spaces or ( ) [ ] , = ~ need quotes inside the argument: 'results_dir=\"~/my results\"'.",
        "exit codes: 0 done; 1 a point failed (its row holds the error), a regression (compare) or a claim without",
        "a verdict; 2 inconclusive (compare); 3 bad input (one line naming it, nothing ran); 4 internal error.",
        "--debug: tracebacks instead of one-line errors. --hydra-help: Hydra's own help. Docs: README.md, docs/.",
    ]
    return "\n".join(lines)


# What each plain key of conf/config.yaml is for (its default is read from the file).
KEYS = {
    "seed": "seed of the initial noise / sampling; every method at a seed starts alike",
    "baseline": "variant label speedups are computed against, e.g. 'ddim/steps=50'",
    "points": "the experiment's list of variants, e.g. '[{name: ddim, steps: 20}]'",
    "results_dir": "folder of result files (one .parquet per point; reruns skip finished points)",
    "interleave": "time each point in ABBA blocks with the baseline (paired speedups)",
    "report": "print the summary table and draw the Pareto plot (into RESULTS_DIR.meta/plots) at the end",
}


def _root_keys() -> list[tuple[str, str, str]]:
    """(key, default, what it is for) for the plain keys of conf/config.yaml that a user sets."""
    import yaml

    root = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    return [(k, "null" if root.get(k) is None else str(root[k]).lower() if isinstance(root[k], bool) else str(root[k]),
             about) for k, about in KEYS.items() if k in root]
