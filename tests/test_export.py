"""``harness export --to mlflow``: one MLflow run per point, read back through MLflow's own API into the
numbers ``harness report`` prints; a second export adds nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import fmt
from harness.cli import main
from harness.report import summarize, table_cells
from harness.results import load
from tests.helpers import run_cli, synthetic_point, write_set


def _runs(uri: str, experiment: str):  # noqa: ANN202  (a DataFrame of MLflow's)
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment], filter_string="", max_results=1000)


def test_export_is_idempotent_and_keeps_failed_points(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    base = synthetic_point("a/steps=9", rng.lognormal(0, 0.02, 12), 10.0, 10 + rng.normal(0, 1, 30),
                           baseline="a/steps=9", experiment="toy")
    fast = synthetic_point("b/steps=3", rng.lognormal(-1, 0.02, 12), 12.0, 12 + rng.normal(0, 1, 30),
                           baseline="a/steps=9", experiment="toy")
    broken = synthetic_point("c/steps=1", [1.0], experiment="toy")[:1]
    broken[0] |= {"status": "error", "error": "RuntimeError: boom", "metric": "error", "value": None}
    folder = write_set(tmp_path / "res", base, fast, broken)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow 3's own default backend; its file store is retired
    store = ["--tracking-uri", uri, "--artifact-location", (tmp_path / "artifacts").as_uri()]
    assert main(["export", str(folder), "--to", "mlflow", *store]) == 0
    assert capsys.readouterr().out.count("created") == 3
    assert len(list((tmp_path / "artifacts").rglob("*.parquet"))) == 3
    assert main(["export", str(folder), "--to", "mlflow", *store]) == 0
    assert capsys.readouterr().out.count("skipped (already exported)") == 3
    runs = _runs(uri, "toy").set_index("tags.mlflow.runName")
    assert len(runs) == 3
    assert runs.loc["c/steps=1", "status"] == "FAILED" and "boom" in runs.loc["c/steps=1", "tags.harness.error"]
    b = summarize(load(folder)).set_index("variant").loc["b/steps=3"]
    assert runs.loc["b/steps=3", "metrics.speedup"] == b.speedup
    assert runs.loc["b/steps=3", "metrics.fid_delta_ci_low"] == b.delta_low
    assert runs.loc["b/steps=3", "tags.estimator.speedup"] == b.speedup_estimator


@pytest.mark.slow
@pytest.mark.xdist_group("smoke_sweep")  # one worker runs the session fixture once
def test_mlflow_export_of_the_default_experiment_reads_back_as_the_report(smoke_sweep: tuple[Path, Path],
                                                                           tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    _, folder = smoke_sweep
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow 3's own default backend; its file store is retired
    store = ["--tracking-uri", uri, "--artifact-location", (tmp_path / "artifacts").as_uri()]
    out = run_cli("export", str(folder), "--to", "mlflow", *store, cwd=tmp_path)
    assert out.stdout.count("created") == 4
    rows = load(folder)
    summary = summarize(rows)
    runs = _runs(uri, str(rows.experiment.iloc[0])).set_index("tags.mlflow.runName")
    assert sorted(runs.index) == sorted(summary.variant)
    # the report's cells, rebuilt from what MLflow gives back
    header, body = table_cells(summary)
    col = {h: i for i, h in enumerate(header)}
    q = summary["quality"].iloc[0]
    for cells in body:
        variant = cells[0].removesuffix(" (baseline)")
        r = runs.loc[variant]
        get = lambda k: r.get(f"metrics.{k}", np.nan)  # noqa: E731
        assert cells[col["latency s (median [95% CI])"]] == fmt.ci(get("latency"), get("latency_ci_low"),
                                                                    get("latency_ci_high"))
        assert cells[col["speedup x [95% CI]"]] == fmt.ci(get("speedup"), get("speedup_ci_low"), get("speedup_ci_high"))
        assert cells[col[f"{q.upper()} [95% CI]"]] == fmt.ci(get(q), get(f"{q}_ci_low"), get(f"{q}_ci_high"))
        if not cells[0].endswith("(baseline)"):
            assert cells[col[f"d{q.upper()} vs baseline [95% CI]"]] == fmt.ci(get(f"{q}_delta"),
                                                                              get(f"{q}_delta_ci_low"),
                                                                              get(f"{q}_delta_ci_high"))
        assert cells[col["n"]] == fmt.num(get(f"{q}_n"), digits=6)
        assert r["params.method.steps"] == variant.split("=")[-1] and r["tags.env.torch"] == rows.torch.iloc[0]
    # the raw rows travel as the point's parquet file
    client = MlflowClient(uri)
    rid = runs.iloc[0].run_id
    assert [a.path for a in client.list_artifacts(rid)] == [Path(runs.iloc[0]["tags.harness.point_id"]).name
                                                            + ".parquet"]
    again = run_cli("export", str(folder), "--to", "mlflow", *store, cwd=tmp_path)
    assert again.stdout.count("skipped (already exported)") == 4 and len(_runs(uri, rows.experiment.iloc[0])) == 4
