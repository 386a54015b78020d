"""Claimed vs measured: the registry of paper claims in ``conf/claims/*.yaml`` and their verdicts.

A claim names an experiment (and overrides) whose points hold a baseline and a method, and one
or more checks of a metric against the paper's number with a tolerance rule. ``harness claims``
runs the points that are missing (finished ones are reused: they live in the experiment's
results folder, keyed by point id), measures each check with its CI, and gives a verdict:

- reproduced: the whole CI satisfies the rule;
- not reproduced: the whole CI violates it;
- inconclusive: the CI straddles the threshold (more samples or repeats would decide);
- not comparable here: the measurement ran on a device type the claim cannot be judged on
  (a GPU speed claim measured on CPU); the measured value is still shown.

Seeds are replicates. One seed's interval describes one draw of noise, samples and prompts (a
FID difference moved from +1.5 [0.4, 2.4] at seed 0 to +3.0 [2.0, 4.0] at seed 1), so a claim is
measured at several seeds (``seeds:`` in its file; default 3 when a check is on a quality metric,
else 1), every check is estimated per seed, and the verdict is judged on the interval across seeds:
a t-interval on the per-seed values (on their logs for speedups and ratios). Per-seed values and
verdicts are shown, and seeds that disagree are said to.

Thresholds: for ``speedup``/``ratio`` the tolerance is relative (at_least: claimed * (1 - tol));
for ``difference``/``value`` it is absolute (at_least: claimed - tol); ``within`` uses both sides.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from harness import CONF_DIR, fmt
from harness.analysis import ALIASES, estimates, is_quality
from harness.contrast import KINDS as CONTRASTS
from harness.contrast import contrast
from harness.stats import Estimate, log_ratio_t_ci, mean_t_ci

CLAIMS_DIR = CONF_DIR / "claims"
KINDS = CONTRASTS | {"value": "method"}
RULES = ("at_least", "at_most", "within")
DEVICE_TYPES = ("cpu", "cuda")
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_COMPARABLE = (
    "reproduced", "not reproduced", "inconclusive", "not comparable here")
QUALITY_SEEDS = 3  # default seeds behind a claim with a quality check


class ClaimError(ValueError):
    """A claim file or its points cannot be evaluated."""


@dataclass(frozen=True)
class Check:
    metric: str
    kind: str
    claimed: float
    rule: str
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ClaimError(f"check kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.rule not in RULES:
            raise ClaimError(f"check rule {self.rule!r}; valid: {', '.join(RULES)}")
        if self.tolerance < 0:
            raise ClaimError(f"check tolerance must be >= 0, got {self.tolerance}")
        if self.kind != "value" and self.kind != "difference" and self.tolerance >= 1:
            raise ClaimError(f"a {self.kind} tolerance is relative and must be < 1, got {self.tolerance}")

    def thresholds(self) -> tuple[float, float]:
        if self.kind in ("speedup", "ratio"):
            return self.claimed * (1 - self.tolerance), self.claimed * (1 + self.tolerance)
        return self.claimed - self.tolerance, self.claimed + self.tolerance

    def judge(self, est: Estimate) -> str:
        lo_t, hi_t = self.thresholds()
        lo = est.value if math.isnan(est.low) else est.low
        hi = est.value if math.isnan(est.high) else est.high
        ok = {"at_least": lo >= lo_t, "at_most": hi <= hi_t, "within": lo >= lo_t and hi <= hi_t}[self.rule]
        bad = {"at_least": hi < lo_t, "at_most": lo > hi_t, "within": hi < lo_t or lo > hi_t}[self.rule]
        return REPRODUCED if ok else NOT_REPRODUCED if bad else INCONCLUSIVE

    def describe(self) -> str:
        lo_t, hi_t = self.thresholds()
        bound = {"at_least": f">= {lo_t:.4g}", "at_most": f"<= {hi_t:.4g}", "within": f"in [{lo_t:.4g}, {hi_t:.4g}]"}
        return f"{self.metric} {self.kind} ({KINDS[self.kind]}) claimed {self.claimed:g}, rule {bound[self.rule]}"


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    source: str
    claim: str
    claimed_on: str
    comparable_on: tuple[str, ...]
    timing_covered: str
    experiment: str
    method: str
    checks: tuple[Check, ...]
    baseline: str | None = None
    overrides: tuple[str, ...] = ()
    notes: str = ""
    seeds: int | None = None  # seeds the verdict needs; None: 3 if a check is on a quality metric, else 1

    def __post_init__(self) -> None:
        bad = [d for d in self.comparable_on if d not in DEVICE_TYPES]
        if bad or not self.comparable_on:
            raise ClaimError(f"claim {self.id}: comparable_on {list(self.comparable_on)}; valid entries: "
                             f"{', '.join(DEVICE_TYPES)}")
        if not self.checks:
            raise ClaimError(f"claim {self.id}: needs at least one check")
        if self.baseline is None and any(c.kind != "value" for c in self.checks):
            raise ClaimError(f"claim {self.id}: checks other than 'value' need a baseline")
        if self.seeds is not None and (not isinstance(self.seeds, int) or self.seeds < 1):
            raise ClaimError(f"claim {self.id}: seeds must be an integer >= 1, got {self.seeds!r}")

    @property
    def seeds_needed(self) -> int:
        if self.seeds is not None:
            return self.seeds
        return QUALITY_SEEDS if any(is_quality(ALIASES.get(c.metric, c.metric)) for c in self.checks) else 1


def parse_claim(cid: str, data: dict[str, Any]) -> Claim:
    names = {f.name for f in fields(Claim)} - {"id"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ClaimError(f"claim {cid}: unknown key(s) {unknown}; valid: {', '.join(sorted(names))}")
    missing = sorted(f.name for f in fields(Claim) if f.default is MISSING and f.name != "id" and f.name not in data)
    if missing:
        raise ClaimError(f"claim {cid}: missing key(s) {missing}")
    try:
        checks = tuple(Check(**c) for c in data["checks"])
    except TypeError as exc:
        raise ClaimError(f"claim {cid}: bad check ({exc}); keys: metric, kind, claimed, rule, tolerance") from None
    return Claim(id=cid, **{**data, "checks": checks, "comparable_on": tuple(data["comparable_on"]),
                            "overrides": tuple(data.get("overrides") or ())})


def load_claims(claims_dir: str | Path = CLAIMS_DIR, ids: list[str] | None = None) -> list[Claim]:
    if not Path(claims_dir).is_dir():
        raise ClaimError(f"claims folder {str(claims_dir)!r} does not exist; expected a folder of claim YAML files "
                         f"(default {CLAIMS_DIR})")
    files = sorted(Path(claims_dir).glob("*.yaml"))
    known = [f.stem for f in files]
    if not files:
        raise ClaimError(f"claims folder {str(claims_dir)!r} has no .yaml claim files; expected one file per claim "
                         f"(as in {CLAIMS_DIR})")
    if ids:
        bad = [i for i in ids if i not in known]
        if bad:
            raise ClaimError(f"unknown claim(s) {bad}; registered: {', '.join(known) or '(none)'}")
        files = [f for f in files if f.stem in ids]
    return [parse_claim(f.stem, _read_yaml(f)) for f in files]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ClaimError(f"claim file {path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ClaimError(f"claim file {path}: expected a mapping of keys (paper, claim, checks, ...), got "
                         f"{type(data).__name__}")
    return data


def default_seeds(claim: Claim) -> list[int]:
    """The experiment's seed and the ones after it, as many as the claim needs."""
    from harness.plan import compose_config

    first = int(compose_config([f"experiment={claim.experiment}", *claim.overrides]).seed)
    return list(range(first, first + claim.seeds_needed))


def _points(claim: Claim, run: bool, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Rows of the claim's baseline and method points at ``seed``, running those not finished yet."""
    from omegaconf import OmegaConf

    from harness.launch.launcher import launch
    from harness.plan import compose_config, plan
    from harness.results import is_finished, load, point_file

    cfg = compose_config([f"experiment={claim.experiment}", *claim.overrides, f"seed={seed}"])
    planned = {p.variant: p for p in plan(cfg)}
    wanted = [v for v in (claim.baseline, claim.method) if v]
    missing = [v for v in wanted if v not in planned]
    if missing:
        raise ClaimError(f"claim {claim.id}: variant(s) {missing} are not points of experiment "
                         f"{claim.experiment}; its points: {', '.join(planned)}")
    log, todo = [], []
    if run:
        from harness.preflight import preflight

        preflight([planned[v] for v in wanted], cfg.results_dir)
    for v in wanted:
        p = planned[v]
        if is_finished(cfg.results_dir, p.point_id):
            log.append(f"{v} seed={seed}: finished earlier ({p.point_id}), reused")
        elif not run:
            raise ClaimError(f"claim {claim.id}: point {v} seed={seed} has no finished result in "
                             f"{cfg.results_dir} and --no-run was given")
        else:
            todo.append(p)
    if todo:  # through the configured launcher (--set launcher=process, launcher=slurm, ...)
        print(f"[{claim.id}] running {', '.join(p.variant for p in todo)} seed={seed}", flush=True)
        launcher = OmegaConf.to_object(cfg.launcher)
        launch(todo, launcher, results_dir=cfg.results_dir, experiment=cfg.experiment_name,
               baseline=claim.baseline).wait()
        for p in todo:
            ok = is_finished(cfg.results_dir, p.point_id)
            log.append(f"{p.variant} seed={seed}: measured now ({'ok' if ok else 'error'})")
    return load(*[point_file(cfg.results_dir, planned[v].point_id) for v in wanted]), log


def _measure(check: Check, est: pd.DataFrame, claim: Claim, confidence: float) -> Estimate:
    metric = ALIASES.get(check.metric, check.metric)
    sel = est[est.metric == metric]
    m = sel[sel.variant == claim.method]
    if m.empty:
        raise ClaimError(f"claim {claim.id}: metric {check.metric!r} not measured for {claim.method}; "
                         f"measured: {', '.join(sorted(set(est[est.variant == claim.method].metric)))}")
    m = m.iloc[0]
    if check.kind == "value":
        return Estimate(m.value, m.low, m.high, m.estimator)
    b = sel[sel.variant == claim.baseline]
    if b.empty:
        raise ClaimError(f"claim {claim.id}: metric {check.metric!r} not measured for {claim.baseline}")
    return contrast(b.iloc[0], m, check.kind, confidence, est)


@dataclass
class CheckResult:
    check: Check
    estimate: Estimate  # across seeds (the one the verdict is judged on), or the single seed's
    verdict: str
    per_seed: dict[int, tuple[Estimate, str]]  # seed -> (estimate, verdict)

    @property
    def seeds_disagree(self) -> bool:
        return len({v for _, v in self.per_seed.values()}) > 1


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    reason: str
    checks: list[CheckResult]
    measured_on: str
    log: list[str]
    seeds: list[int]


def _measure_here(check: Check, est: pd.DataFrame, claim: Claim, confidence: float, kind: str) -> Estimate:
    try:
        return _measure(check, est, claim, confidence)
    except ClaimError as exc:
        if kind in claim.comparable_on:
            raise
        # A figure this device cannot give (fraction_of_peak without a spec-sheet peak) does not stop the
        # verdict "not comparable here"; the other checks still show what was measured.
        return Estimate(math.nan, math.nan, math.nan, f"not measured on {kind}: {exc}")


def across_seeds(kind: str, per_seed: list[Estimate], confidence: float = 0.95) -> Estimate:
    """Seeds as replicates: the mean of per-seed values with a t-interval over seeds (geometric mean
    and t on logs for ratios). One seed: its own estimate and interval."""
    if len(per_seed) == 1:
        return per_seed[0]
    values = np.array([e.value for e in per_seed], dtype=float)
    if kind in ("speedup", "ratio") and (values > 0).all():
        e = log_ratio_t_ci(np.log(values), confidence)
        return Estimate(e.value, e.low, e.high, f"geometric mean over {len(values)} seeds, t-interval on logs")
    e = mean_t_ci(values, confidence)
    return Estimate(e.value, e.low, e.high, f"mean over {len(values)} seeds, t-interval across seeds")


def evaluate(claim: Claim, run: bool = True, confidence: float = 0.95, seeds: list[int] | None = None) -> Verdict:
    """Run what is missing at every seed and judge every check on the interval across seeds.
    Raises ``ClaimError`` when no verdict is possible."""
    seeds = list(seeds) if seeds else default_seeds(claim)
    log: list[str] = []
    per_seed: dict[int, list[Estimate]] = {}
    rows = None
    for seed in seeds:
        rows, seed_log = _points(claim, run, seed)
        log += seed_log
        failed = rows[rows.status != "ok"].drop_duplicates("variant")
        if len(failed):
            first = failed.iloc[0]
            raise ClaimError(f"claim {claim.id}: point {first.variant} seed={seed} failed: "
                             f"{str(first.error).splitlines()[0]}")
        est = estimates(rows, confidence)
        kind = str(rows.device.iloc[0]).split(":")[0]
        per_seed[seed] = [_measure_here(check, est, claim, confidence, kind) for check in claim.checks]
    device = str(rows.device.iloc[0])
    kind = device.split(":")[0]
    measured_on = f"{rows.device_name.iloc[0]} ({device}), {int(rows.threads.iloc[0])} threads"
    checks = []
    for i, check in enumerate(claim.checks):
        mine = {s: per_seed[s][i] for s in seeds}
        if any(math.isnan(e.value) and e.estimator.startswith("not measured") for e in mine.values()):
            first = next(iter(mine.values()))
            checks.append(CheckResult(check, first, NOT_COMPARABLE, {s: (e, NOT_COMPARABLE) for s, e in mine.items()}))
            continue
        est = across_seeds(check.kind, list(mine.values()), confidence)
        checks.append(CheckResult(check, est, check.judge(est), {s: (e, check.judge(e)) for s, e in mine.items()}))
    if kind not in claim.comparable_on:
        return Verdict(claim, NOT_COMPARABLE, f"measured on {kind}; the claim was made on {claim.claimed_on} and is "
                       f"comparable only on {', '.join(claim.comparable_on)}", checks, measured_on, log, seeds)
    verdicts = [c.verdict for c in checks]
    overall = NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts \
        else REPRODUCED
    if len(seeds) < claim.seeds_needed and overall != INCONCLUSIVE:
        return Verdict(claim, INCONCLUSIVE, f"{len(seeds)} seed(s) measured, the claim needs {claim.seeds_needed}; "
                       f"the checks alone say {overall}", checks, measured_on, log, seeds)
    return Verdict(claim, overall, "", checks, measured_on, log, seeds)


def render(v: Verdict) -> str:
    c = v.claim
    lines = [f"[{c.id}] {c.paper}; {c.source}", f"  claim: {c.claim}",
             f"  claimed on: {c.claimed_on}; measured on: {v.measured_on}",
             f"  paper's timing covered: {c.timing_covered}",
             f"  baseline {c.baseline or '-'} vs method {c.method} (experiment {c.experiment}"
             + (f", {' '.join(c.overrides)}" if c.overrides else "") + ")"]
    lines += [f"  point {line}" for line in v.log]
    lines.append(f"  seeds: {', '.join(map(str, v.seeds))} (the claim needs {c.seeds_needed})")
    for r in v.checks:
        lines.append(f"  check: {r.check.describe()}; measured {fmt.estimate(r.estimate)} ({r.estimate.estimator}) "
                     f"-> {r.verdict}")
        if len(r.per_seed) > 1:
            lines.append("    per seed: " + "; ".join(f"{s}: {fmt.estimate(e)} {verdict}"
                                                    for s, (e, verdict) in r.per_seed.items()))
            if r.seeds_disagree:
                lines.append("    the seeds' own verdicts differ; the verdict above is judged on the interval "
                             "across seeds")
    lines.append(f"  VERDICT: {v.verdict.upper()}" + (f" ({v.reason})" if v.reason else ""))
    if c.notes:
        lines.append(f"  note: {c.notes}")
    return "\n".join(lines)
