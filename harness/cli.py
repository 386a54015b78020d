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


def report_main(argv: list[str]) -> int:
    from harness.report import report

    p = _parser("report", "Summary table (speedups, quality deltas, Pareto marks) and Pareto plot.")
    p.add_argument("results", nargs="+", help="result folders or .parquet files")
    p.add_argument("--baseline", help="variant label to compute speedups against (default: as recorded)")
    p.add_argument("--quality", help="quality metric (default: fid if measured, else the first quality metric)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--out", help="folder to write the Pareto plot to (default: no plot)")
    args = p.parse_args(argv)
    print(report(args.results, args.baseline, args.out, args.markdown, args.quality))
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
    args = p.parse_args(argv)
    est = estimates(load(*args.results))
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
    return 0


def compare_main(argv: list[str]) -> int:
    from harness.compare import EXIT_ERROR, CompareError, compare, load_side, render

    p = _parser("compare", "Compare result set B against A, point by point, with the run as the unit. Exit codes: 0 "
                "no regression, 1 regression or a changed deterministic metric, 2 inconclusive only, 3 error "
                "(unreadable input, unmatched points, --strict on a busy machine).")
    p.add_argument("a", help="the reference (old commit, old GPU): result folders or files, a quoted glob of them "
                   "('results/aa/run*'), or run ids; comma-separated; each measurement of a point is one run")
    p.add_argument("b", help="the candidate, as A")
    p.add_argument("--metrics", help="comma-separated metrics (default: latency, every quality metric and every "
                   "deterministic co-metric)")
    p.add_argument("--margin", type=float, default=0.05, help="relative change that matters (default 0.05)")
    p.add_argument("--noise", action="append", default=None, metavar="PATH",
                   help="noise profile(s) from `harness aa`, or folders holding them (default: every "
                   "noise_profile.json under results/); 'none' to use none")
    p.add_argument("--paired", action="store_true", help="run i of A ran next to run i of B (interleaved rounds)")
    p.add_argument("--runs-root", default="results", help="where to look up run ids (default: results)")
    p.add_argument("--strict", action="store_true", help="refuse (exit 3) when a run was measured on a busy machine")
    p.add_argument("--allow-unmatched", action="store_true", help="points in only one set are listed, not an error")
    args = p.parse_args(argv)
    try:
        profiles = _profiles(args.noise)
        c = compare(load_side(args.a, args.runs_root), load_side(args.b, args.runs_root),
                    args.metrics.split(",") if args.metrics else None, args.margin, profiles=profiles,
                    paired=args.paired)
    except (CompareError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(render(c, args.margin))
    used = [p.path for p in profiles if c.per_point.get("estimator", []).astype(str).str.contains(p.path).any()] \
        if len(c.per_point) and "estimator" in c.per_point else []
    if used:
        print("noise profiles used: " + ", ".join(used))
    if (c.only_a or c.only_b) and not args.allow_unmatched:
        print("error: some points are in only one result set (see above); --allow-unmatched to accept",
              file=sys.stderr)
        return EXIT_ERROR
    if c.busy and args.strict:
        print("error: --strict and the machine was not quiet during some runs (see the warning above)", file=sys.stderr)
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
    p.add_argument("--margin", type=float, default=0.05)
    p.add_argument("--confirm", type=int, default=2, help="runs after a change that must confirm it (default 2)")
    p.add_argument("--out", help="folder to write the plot to (default: no plot)")
    args = p.parse_args(argv)
    h = history(load(*args.results), args.metric, args.margin, min_segment=args.confirm)
    print(render_history(h, args.metric, args.margin))
    if args.out:
        files = history_plot(h, Path(args.out) / f"history_{args.metric}", args.metric)
        print("plot: " + ", ".join(map(str, files)))
    return 0


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra overrides (``key=value``, ``+key=value``) apart from this command's own flags."""
    over = [a for a in argv if "=" in a and not a.startswith("-")]
    return over, [a for a in argv if a not in over]


def aa_main(argv: list[str]) -> int:
    from harness import noise
    from harness.plan import compose_config
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
    p.add_argument("--margin", type=float, default=0.05, help="margin for the detectable-effect table (default 0.05)")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs each rerun (default: this one)")
    overrides, rest = _split_overrides(argv)
    args = p.parse_args(rest)
    out = Path(args.out or f"{compose_config(overrides).results_dir}-aa")
    try:
        folders = aa_runs(out, overrides, args.runs, args.python)
    except (RerunError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prof = noise.build(load(*folders), args.max_sd)
    path = noise.save(prof, out / noise.FILE_NAME)
    print(noise.render(prof, args.margin))
    print(f"noise profile: {path} (compare reads every noise_profile.json under results/, or --noise {path})")
    return 0


def ab_main(argv: list[str]) -> int:
    from harness.compare import EXIT_ERROR, CompareError, compare, render
    from harness.plan import compose_config
    from harness.reruns import RerunError, ab_runs, remove_trees, resolve_side
    from harness.results import load

    p = _parser("ab", "Interleaved A/B on this machine: two code versions run the same experiment alternately in "
                "fresh processes (A B B A ...), judged on the per-round ratios. Exit codes as compare. Hydra "
                "overrides go anywhere on the line.")
    p.add_argument("a", help="reference: a git ref (HEAD~1, a branch), a checkout folder, or python:/path/to/python")
    p.add_argument("b", help="candidate, as A ('.' is this checkout as it is, uncommitted changes included)")
    p.add_argument("--rounds", type=int, default=4, help="rounds; each runs both sides once (default 4)")
    p.add_argument("--out", help="folder for the runs (default: the experiment's results folder + -ab)")
    p.add_argument("--margin", type=float, default=0.05)
    p.add_argument("--metrics", help="comma-separated metrics (default as compare)")
    p.add_argument("--keep-trees", action="store_true", help="keep the git worktrees made for refs")
    overrides, rest = _split_overrides(argv)
    args = p.parse_args(rest)
    out = Path(args.out or f"{compose_config(overrides).results_dir}-ab")
    trees = out / "trees"
    try:
        a, b = resolve_side(args.a, trees), resolve_side(args.b, trees)
        fa, fb = ab_runs(out, a, b, overrides, args.rounds)
        c = compare(load(*fa), load(*fb), args.metrics.split(",") if args.metrics else None, args.margin,
                    paired=True)
    except (RerunError, CompareError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if not args.keep_trees:
            remove_trees(trees)
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
    g.add_argument("--max", type=float, help="the budget: largest cost allowed")
    g.add_argument("--range", help="LO:HI[:N] budgets, geometrically spaced: quality-vs-budget curves")
    p.add_argument("--out", help="folder to write the curves plot to (default: no plot)")
    args = p.parse_args(argv)
    est = estimates(load(*args.results))
    if args.max is not None:
        print(render(best_within(est, args.cost, args.quality, args.max)))
        return 0
    res = curves(est, args.cost, args.quality, parse_range(args.range))
    print(render_curves(res))
    if args.out:
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
    args = p.parse_args(argv)
    summary, failed = [], 0
    for claim in load_claims(args.claims_dir, args.ids or None):
        claim = replace(claim, overrides=(*claim.overrides, *args.set))
        try:
            v = evaluate(claim, run=not args.no_run, seeds=args.seeds)
        except (ClaimError, ValueError, RuntimeError) as exc:  # bad config or point: say why, go on
            failed += 1
            print(f"[{claim.id}] NO VERDICT: {type(exc).__name__}: {exc}\n", flush=True)
            summary.append((claim.id, "-", "-", "-", "-", "no verdict"))
            continue
        print(render(v) + "\n", flush=True)
        summary.append((claim.id, "; ".join(f"{r.check.metric} {r.check.kind} {r.check.claimed:g}" for r in v.checks)
                        + f" on {claim.claimed_on}", "; ".join(fmt.estimate(r.estimate) for r in v.checks),
                        str(len(v.seeds)), v.measured_on.split(",")[0], v.verdict))
    print(fmt.table(["claim", "claimed", "measured [95% CI]", "seeds", "measured on", "verdict"], summary,
                    markdown=True))
    return 1 if failed else 0


SUBCOMMANDS = {"report": report_main, "pareto": pareto_main, "compare": compare_main, "history": history_main,
               "budget": budget_main, "claims": claims_main, "aa": aa_main, "ab": ab_main}


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
