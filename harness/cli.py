"""``python -m harness``: a sweep (Hydra overrides) or a subcommand (``report``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from harness.registry import build_config, load_plugins

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _method_overridden() -> bool:
    from hydra.core.hydra_config import HydraConfig

    keys = [o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task]
    return any(k == "method" or k.startswith("method.") for k in keys)


def plan(cfg: DictConfig, method_overridden: bool = False) -> list[Any]:
    """Validate the whole sweep before running any of it: a bad value fails at once.

    The experiment's ``points`` are the sweep unless ``method_overridden`` (an explicit
    ``method=``/``method.X=`` on the command line), which runs ``cfg.method`` alone.
    """
    from harness.runner import Hardware, Point, variant_label
    from harness.timing import TimingPolicy

    hardware = Hardware(**OmegaConf.to_container(cfg.hardware, resolve=True))
    task = OmegaConf.to_object(cfg.task)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    if method_overridden or not cfg.points:
        if cfg.points:
            print(f"note: method given on the command line; the experiment's {len(cfg.points)} points are not run")
        methods = [OmegaConf.to_object(cfg.method)]
    else:
        methods = [build_config("method", OmegaConf.to_container(p, resolve=True)) for p in cfg.points]
    policy = asdict(TimingPolicy(**OmegaConf.to_container(cfg.timing)))
    points = [Point(asdict(task), model, asdict(m), asdict(hardware), int(cfg.seed), policy) for m in methods]
    if not cfg.get("interleave"):
        return points
    # ABBA: every non-baseline point times the baseline in alternation with itself (DESIGN section 4).
    # The baseline's config comes from the points run, or from the experiment's list when a
    # method= override replaced it.
    pool = [p.method for p in points] + [asdict(build_config("method", OmegaConf.to_container(p, resolve=True)))
                                         for p in cfg.points]
    base = [m for m in pool if variant_label(m) == cfg.baseline] or _from_label(cfg.baseline)
    if not base:
        raise ValueError(f"interleave=true needs the baseline {cfg.baseline!r} among the points or the experiment's "
                         f"points; found: {', '.join(sorted({variant_label(m) for m in pool}))}")
    return [p if p.method == base[0] else replace(p, paired_with=base[0]) for p in points]


def _from_label(label: str | None) -> list[dict[str, Any]]:
    """A method config from its variant label (``ddim/steps=3``), or [] if the label is not one."""
    from harness.runner import variant_label

    if not label:
        return []
    name, _, params = label.partition("/")
    try:
        values = dict(kv.split("=", 1) for kv in params.split(",")) if params else {}
        method = asdict(build_config("method", {"name": name, **values}))
    except Exception:  # noqa: BLE001  (not a label of a registered method: the caller reports it)
        return []
    return [method] if variant_label(method) == label else []


def sweep(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from harness.report import report
    from harness.results import is_finished
    from harness.runner import new_run_id, run_point

    points = plan(cfg, _method_overridden())
    experiment = HydraConfig.get().runtime.choices.get("experiment") or "adhoc"
    run_id = new_run_id()
    failed = 0
    for i, point in enumerate(points, 1):
        tag = f"[{i}/{len(points)}] {point.variant} seed={point.seed}"
        if is_finished(cfg.results_dir, point.point_id):
            print(f"{tag}: finished earlier, skipped ({point.point_id})", flush=True)
            continue
        print(f"{tag}: running", flush=True)
        status, error = run_point(point, run_id=run_id, experiment=experiment, results_dir=cfg.results_dir,
                                  baseline=cfg.baseline)
        if status != "ok":
            failed += 1
            print(f"{tag}: FAILED, recorded, going on: {error.splitlines()[0]}", flush=True)
    if cfg.report and HydraConfig.get().mode != RunMode.MULTIRUN:
        print("\n" + report([cfg.results_dir]))
    if failed:
        print(f"{failed} point(s) failed; their rows hold the error", flush=True)
        if HydraConfig.get().mode != RunMode.MULTIRUN:  # a multirun goes on to its other jobs
            raise SystemExit(1)


class MultirunReport(Callback):
    """After a ``-m`` sweep, one report over everything in the results folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.report import report

        if config.report and Path(config.results_dir).exists():
            print("\n" + report([config.results_dir]))


def compose_config(overrides: list[str]) -> DictConfig:
    """The config ``python -m harness OVERRIDES`` would run, composed outside ``hydra.main``
    (for ``claims`` and tests), with Hydra's runtime info set so interpolations resolve."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    load_plugins()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.results_dir = str(cfg.results_dir)  # resolve while Hydra's runtime info is set
    return cfg


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"harness {name}", description=description)


def report_main(argv: list[str]) -> int:
    from harness.report import report

    p = _parser("report", "Summary table (speedups, quality deltas, Pareto marks) and Pareto plot.")
    p.add_argument("results", nargs="+", help="result folders or .parquet files")
    p.add_argument("--baseline", help="variant label to compute speedups against (default: as recorded)")
    p.add_argument("--quality", help="quality metric (default: fid if measured, else the first quality metric)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--out", help="folder for the plot (default: the first results folder)")
    args = p.parse_args(argv)
    print(report(args.results, args.baseline, args.out, args.markdown, args.quality))
    return 0


def _ci(row: Any, col: str) -> str:
    lo, hi = row[f"{col}_low"], row[f"{col}_high"]
    return f"{row[col]:.4g}" + ("" if lo != lo or hi != hi else f" [{lo:.3g}, {hi:.3g}]")  # NaN: no CI


def pareto_main(argv: list[str]) -> int:
    from harness.analysis import direction, estimates, pareto_table, resolve_metric
    from harness.plot import pareto_plot
    from harness.results import load

    p = _parser("pareto", "Pareto front of any (cost, quality) pair, per setting, with CIs and hypervolume.")
    p.add_argument("results", nargs="+")
    p.add_argument("--cost", default="latency", help="cost metric as in the rows, or an alias (default: latency)")
    p.add_argument("--quality", default="fid", help="quality metric (default: fid)")
    p.add_argument("--ref", help="hypervolume reference point COST,QUALITY (default: each setting's nadir)")
    p.add_argument("--out", help="folder for the plot (default: the first results folder)")
    args = p.parse_args(argv)
    est = estimates(load(*args.results))
    cost, quality = resolve_metric(args.cost, est.metric), resolve_metric(args.quality, est.metric)
    ref = tuple(float(x) for x in args.ref.split(",")) if args.ref else None
    if ref is not None and len(ref) != 2:
        raise SystemExit(f"--ref {args.ref!r}: expected COST,QUALITY")
    table, volumes = pareto_table(est, cost, quality, ref)
    for _, v in volumes.iterrows():
        print(f"{v.task} / {v.model} on {v.hardware} ({v.device_name}): {v.front} of {v.points} points on the front; "
              f"hypervolume {v.hypervolume:.4g} against ({cost} {v.ref_cost:.4g}, {quality} {v.ref_quality:.4g}), "
              f"{v.reference}")
        grp = table[table.setting == v.setting].sort_values(cost)
        for _, r in grp.iterrows():
            mark = "front" if r.on_front else ("CI reaches the front" if r.near_front else "")
            print(f"  {r.variant:<28} {cost} {_ci(r, cost):<26} {quality} {_ci(r, quality):<26} {mark}".rstrip())
    files = pareto_plot(table.assign(status="ok"), Path(args.out or args.results[0]) / f"pareto_{quality}_{cost}",
                        cost, quality, direction(est, quality))
    print("plot: " + ", ".join(map(str, files)))
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
    args = p.parse_args(argv)
    try:
        c = compare(load(args.a), load(args.b), args.metrics.split(",") if args.metrics else None, args.margin)
    except (CompareError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(render(c, args.margin))
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
    p.add_argument("--out", help="folder for the plot (default: the first results folder)")
    args = p.parse_args(argv)
    h = history(load(*args.results), args.metric, args.margin)
    print(render_history(h, args.metric))
    files = history_plot(h, Path(args.out or args.results[0]) / f"history_{args.metric}", args.metric)
    print("plot: " + ", ".join(map(str, files)))
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
    p.add_argument("--out", help="folder for the curves plot (default: the first results folder)")
    args = p.parse_args(argv)
    est = estimates(load(*args.results))
    if args.max is not None:
        print(render(best_within(est, args.cost, args.quality, args.max)))
        return 0
    res = curves(est, args.cost, args.quality, parse_range(args.range))
    print(render_curves(res))
    files = budget_plot(res, Path(args.out or args.results[0]) / f"budget_{res.attrs['quality']}_{res.attrs['cost']}")
    print("plot: " + ", ".join(map(str, files)))
    return 0


def _est(e: Any) -> str:
    return f"{e.value:.4g}" + ("" if e.low != e.low or e.low == e.high else f" [{e.low:.3g}, {e.high:.3g}]")


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
    args = p.parse_args(argv)
    summary, failed = [], 0
    for claim in load_claims(args.claims_dir, args.ids or None):
        claim = replace(claim, overrides=(*claim.overrides, *args.set))
        try:
            v = evaluate(claim, run=not args.no_run)
        except (ClaimError, ValueError, RuntimeError) as exc:  # bad config or point: say why, go on
            failed += 1
            print(f"[{claim.id}] NO VERDICT: {type(exc).__name__}: {exc}\n", flush=True)
            summary.append((claim.id, "-", "-", "-", "no verdict"))
            continue
        print(render(v) + "\n", flush=True)
        summary.append((claim.id, "; ".join(f"{c.metric} {c.kind} {c.claimed:g}" for c, _, _ in v.checks)
                        + f" on {claim.claimed_on}", "; ".join(_est(e) for _, e, _ in v.checks),
                        v.measured_on.split(",")[0], v.verdict))
    print("| claim | claimed | measured [95% CI] | measured on | verdict |")
    print("| --- | --- | --- | --- | --- |")
    for row in summary:
        print("| " + " | ".join(row) + " |")
    return 1 if failed else 0


SUBCOMMANDS = {"report": report_main, "pareto": pareto_main, "compare": compare_main, "history": history_main,
               "budget": budget_main, "claims": claims_main}


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
