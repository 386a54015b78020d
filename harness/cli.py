"""``python -m harness``: a sweep (Hydra overrides) or a subcommand (``report``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
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
    from harness.runner import Hardware, Point
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
    return [Point(asdict(task), model, asdict(m), asdict(hardware), int(cfg.seed), policy) for m in methods]


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


def report_main(argv: list[str]) -> int:
    from harness.report import report

    p = argparse.ArgumentParser(prog="harness report", description="Summary table and Pareto plot from result rows.")
    p.add_argument("results", nargs="+", help="result folders or .parquet files")
    p.add_argument("--baseline", help="variant label to compute speedups against (default: as recorded)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--out", help="folder for the plot (default: the first results folder)")
    args = p.parse_args(argv)
    print(report(args.results, args.baseline, args.out, args.markdown))
    return 0


SUBCOMMANDS = {"report": report_main}


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
