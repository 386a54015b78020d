"""The claims registry: file validation, verdict rules, and one claim end to end on the embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.claims import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    Check,
    ClaimError,
    across_seeds,
    load_claims,
    parse_claim,
)
from harness.cli import main
from harness.plan import plan
from harness.stats import Estimate
from tests.helpers import SMOKE, compose_cfg

GOOD = {"paper": "p", "source": "s", "claim": "c", "claimed_on": "any", "comparable_on": ["cpu"],
        "timing_covered": "t", "experiment": "samplers_digits", "baseline": "ddim/steps=10",
        "method": "dpm_solver/steps=10", "checks": [{"metric": "fid", "kind": "difference", "claimed": 0,
                                                     "rule": "at_most"}]}


@pytest.mark.parametrize("change, message", [
    ({"speed": 3}, "unknown key"),
    ({"checks": [{"metric": "fid", "kind": "delta", "claimed": 0, "rule": "at_most"}]}, "valid: speedup"),
    ({"checks": [{"metric": "fid", "kind": "ratio", "claimed": 1, "rule": "about"}]}, "valid: at_least"),
    ({"checks": [{"metric": "fid", "kind": "ratio", "claimed": 1, "rule": "within", "tolerance": 1.5}]}, "relative"),
    ({"comparable_on": ["tpu"]}, "valid entries: cpu, cuda"),
    ({"checks": []}, "at least one check"),
    ({"baseline": None}, "need a baseline"),
])
def test_bad_claim_files_name_the_problem(change: dict, message: str) -> None:
    with pytest.raises(ClaimError, match=message):
        parse_claim("x", {k: v for k, v in {**GOOD, **change}.items() if v is not None})


def test_missing_key_and_unknown_id() -> None:
    with pytest.raises(ClaimError, match=r"missing key\(s\) \['method'\]"):
        parse_claim("x", {k: v for k, v in GOOD.items() if k != "method"})
    with pytest.raises(ClaimError, match="registered: "):
        load_claims(ids=["no_such_claim"])


def test_verdict_rules_against_the_ci() -> None:
    e = lambda lo, hi: Estimate((lo + hi) / 2, lo, hi, "t")  # noqa: E731
    at_least = Check("latency", "speedup", 5.0, "at_least", 0.2)  # threshold 4.0
    assert [at_least.judge(e(*ci)) for ci in [(4.1, 5), (3.9, 4.5), (3, 3.9)]] == [
        REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED]
    at_most = Check("fid", "difference", 0.0, "at_most", 0.0)
    assert [at_most.judge(e(*ci)) for ci in [(-3, -1), (-1, 1), (0.5, 2)]] == [
        REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED]
    within = Check("fid", "difference", 0.0, "within", 2.0)
    assert [within.judge(e(*ci)) for ci in [(-1, 1), (1, 3), (2.5, 4)]] == [REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED]
    assert within.judge(Estimate(1.0, float("nan"), float("nan"), "exact")) == REPRODUCED  # no CI: the value


def test_seeds_as_replicates() -> None:
    per_seed = [Estimate(v, v - 1, v + 1, "paired") for v in (1.0, 2.0, 3.0)]
    e = across_seeds("difference", per_seed)
    assert e.value == 2.0 and e.low == pytest.approx(2 - 4.303 * 1 / 3 ** 0.5, abs=1e-3)  # t(0.975, 2) = 4.303
    r = across_seeds("speedup", [Estimate(v, v, v, "x") for v in (2.0, 8.0)])
    assert r.value == pytest.approx(4.0) and "geometric mean over 2 seeds" in r.estimator
    assert across_seeds("difference", per_seed[:1]) is per_seed[0]  # one seed: its own interval
    quality = parse_claim("q", GOOD)
    cost = parse_claim("c", {**GOOD, "checks": [{"metric": "latency", "kind": "speedup", "claimed": 2,
                                                 "rule": "at_least"}]})
    assert quality.seeds_needed == 3 and cost.seeds_needed == 1
    assert parse_claim("s", {**GOOD, "seeds": 5}).seeds_needed == 5
    with pytest.raises(ClaimError, match="seeds must be an integer >= 1"):
        parse_claim("s", {**GOOD, "seeds": 0})


def test_every_registered_claim_names_points_of_its_experiment() -> None:
    claims = load_claims()
    assert len(claims) >= 4
    for claim in claims:
        variants = {p.variant for p in plan(compose_cfg([f"experiment={claim.experiment}", *claim.overrides]))}
        assert {claim.method, claim.baseline} - {None} <= variants, claim.id


@pytest.mark.slow
def test_claims_end_to_end_on_the_embedded_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    overrides = [SMOKE, "task.fid_bootstrap=20", f"results_dir={tmp_path / 'res'}"]
    nfe = {**GOOD, "overrides": overrides, "checks": [
        {"metric": "nfe", "kind": "ratio", "claimed": 1.0, "rule": "within", "tolerance": 0.0},
        {"metric": "latency", "kind": "speedup", "claimed": 1.0, "rule": "at_least", "tolerance": 0.5}]}
    gpu = {**nfe, "claimed_on": "NVIDIA A100", "comparable_on": ["cuda"]}
    (tmp_path / "claims").mkdir()
    for name, data in (("nfe_equal", nfe), ("gpu_only", gpu)):
        (tmp_path / "claims" / f"{name}.yaml").write_text(yaml.safe_dump(data))
    assert main(["claims", "--claims-dir", str(tmp_path / "claims")]) == 0
    out = capsys.readouterr().out
    assert "[gpu_only]" in out and "VERDICT: NOT COMPARABLE HERE (measured on cpu; the claim was made on NVIDIA " \
        "A100 and is comparable only on cuda)" in out
    # 10 NFE vs 10 NFE: the ratio is exactly 1, so that check is reproduced whatever the noise
    assert "check: nfe ratio (method / baseline) claimed 1, rule in [1, 1]; measured 1 " in out
    assert out.count("measured now (ok)") == 2 and out.count("finished earlier") == 2  # the second claim reused
    assert "| nfe_equal |" in out
    # A quality claim: 3 seeds by default; here two, chosen on the command line, judged across them.
    fid = {**nfe, "checks": [{"metric": "fid", "kind": "difference", "claimed": 0, "rule": "within",
                              "tolerance": 1000}]}
    (tmp_path / "claims" / "fid_close.yaml").write_text(yaml.safe_dump(fid))
    assert main(["claims", "--claims-dir", str(tmp_path / "claims"), "--seeds", "0,1", "fid_close"]) == 0
    out = capsys.readouterr().out
    assert "seeds: 0, 1 (the claim needs 3)" in out and "per seed: 0: " in out and "; 1: " in out
    assert "mean over 2 seeds, t-interval across seeds" in out
    assert "VERDICT: INCONCLUSIVE (2 seed(s) measured, the claim needs 3; the checks alone say reproduced)" in out
    assert out.count("seed=1: measured now (ok)") == 2 and out.count("seed=0: finished earlier") == 2
    assert "| fid_close |" in out and "| 2 |" in out  # the summary names the seeds behind the verdict
    # --no-run judges what exists; a claim whose points are missing gets no verdict and exit 1
    (tmp_path / "claims" / "missing.yaml").write_text(yaml.safe_dump({**nfe, "baseline": "ddim/steps=20"}))
    assert main(["claims", "--claims-dir", str(tmp_path / "claims"), "--no-run", "missing"]) == 1
    assert "NO VERDICT" in capsys.readouterr().out
