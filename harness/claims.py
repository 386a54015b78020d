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

Thresholds: for ``speedup``/``ratio`` the tolerance is relative (at_least: claimed * (1 - tol));
for ``difference``/``value`` it is absolute (at_least: claimed - tol); ``within`` uses both sides.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harness import CONF_DIR, fmt
from harness.analysis import ALIASES, estimates
from harness.contrast import KINDS as CONTRASTS
from harness.contrast import contrast
from harness.stats import Estimate

CLAIMS_DIR = CONF_DIR / "claims"
KINDS = CONTRASTS | {"value": "method"}
RULES = ("at_least", "at_most", "within")
DEVICE_TYPES = ("cpu", "cuda")
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_COMPARABLE = (
    "reproduced", "not reproduced", "inconclusive", "not comparable here")


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

    def __post_init__(self) -> None:
        bad = [d for d in self.comparable_on if d not in DEVICE_TYPES]
        if bad or not self.comparable_on:
            raise ClaimError(f"claim {self.id}: comparable_on {list(self.comparable_on)}; valid entries: "
                             f"{', '.join(DEVICE_TYPES)}")
        if not self.checks:
            raise ClaimError(f"claim {self.id}: needs at least one check")
        if self.baseline is None and any(c.kind != "value" for c in self.checks):
            raise ClaimError(f"claim {self.id}: checks other than 'value' need a baseline")


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
    files = sorted(Path(claims_dir).glob("*.yaml"))
    known = [f.stem for f in files]
    if ids:
        bad = [i for i in ids if i not in known]
        if bad:
            raise ClaimError(f"unknown claim(s) {bad}; registered: {', '.join(known) or '(none)'}")
        files = [f for f in files if f.stem in ids]
    return [parse_claim(f.stem, yaml.safe_load(f.read_text()) or {}) for f in files]


def _points(claim: Claim, run: bool) -> tuple[pd.DataFrame, list[str]]:
    """Rows of the claim's baseline and method points, running those not finished yet."""
    from harness.plan import compose_config, plan
    from harness.results import is_finished, load, point_file
    from harness.runner import new_run_id, run_point

    cfg = compose_config([f"experiment={claim.experiment}", *claim.overrides])
    planned = {p.variant: p for p in plan(cfg)}
    wanted = [v for v in (claim.baseline, claim.method) if v]
    missing = [v for v in wanted if v not in planned]
    if missing:
        raise ClaimError(f"claim {claim.id}: variant(s) {missing} are not points of experiment "
                         f"{claim.experiment}; its points: {', '.join(planned)}")
    log, run_id = [], new_run_id()
    for v in wanted:
        p = planned[v]
        if is_finished(cfg.results_dir, p.point_id):
            log.append(f"{v}: finished earlier ({p.point_id}), reused")
        elif not run:
            raise ClaimError(f"claim {claim.id}: point {v} has no finished result in {cfg.results_dir} and "
                             "--no-run was given")
        else:
            print(f"[{claim.id}] running {v}", flush=True)
            status, _ = run_point(p, run_id=run_id, experiment=cfg.experiment_name, results_dir=cfg.results_dir,
                                  baseline=claim.baseline)
            log.append(f"{v}: measured now ({status})")
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
class Verdict:
    claim: Claim
    verdict: str
    reason: str
    checks: list[tuple[Check, Estimate | None, str]]
    measured_on: str
    log: list[str]


def evaluate(claim: Claim, run: bool = True, confidence: float = 0.95) -> Verdict:
    """Run what is missing and judge every check. Raises ``ClaimError`` when no verdict is possible."""
    rows, log = _points(claim, run)
    failed = rows[rows.status != "ok"].drop_duplicates("variant")
    if len(failed):
        first = failed.iloc[0]
        raise ClaimError(f"claim {claim.id}: point {first.variant} failed: {str(first.error).splitlines()[0]}")
    est = estimates(rows, confidence)
    device = str(rows.device.iloc[0])
    kind = device.split(":")[0]
    measured_on = f"{rows.device_name.iloc[0]} ({device}), {int(rows.threads.iloc[0])} threads"
    checks = []
    for check in claim.checks:
        m = _measure(check, est, claim, confidence)
        checks.append((check, m, check.judge(m)))
    if kind not in claim.comparable_on:
        return Verdict(claim, NOT_COMPARABLE, f"measured on {kind}; the claim was made on {claim.claimed_on} and is "
                       f"comparable only on {', '.join(claim.comparable_on)}", checks, measured_on, log)
    verdicts = [v for _, _, v in checks]
    overall = NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts \
        else REPRODUCED
    return Verdict(claim, overall, "", checks, measured_on, log)


def render(v: Verdict) -> str:
    c = v.claim
    lines = [f"[{c.id}] {c.paper}; {c.source}", f"  claim: {c.claim}",
             f"  claimed on: {c.claimed_on}; measured on: {v.measured_on}",
             f"  paper's timing covered: {c.timing_covered}",
             f"  baseline {c.baseline or '-'} vs method {c.method} (experiment {c.experiment}"
             + (f", {' '.join(c.overrides)}" if c.overrides else "") + ")"]
    lines += [f"  point {line}" for line in v.log]
    for check, est, verdict in v.checks:
        lines.append(f"  check: {check.describe()}; measured {fmt.estimate(est)} ({est.estimator}) -> {verdict}")
    lines.append(f"  VERDICT: {v.verdict.upper()}" + (f" ({v.reason})" if v.reason else ""))
    if c.notes:
        lines.append(f"  note: {c.notes}")
    return "\n".join(lines)
