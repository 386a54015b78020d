"""The layout holds: no import cycles, harness/ is workload-agnostic, a method imports only harness
and its own workload, nothing at run time imports a training script, a new workload is two
folders and an experiment YAML, and installed packages can plug in through an entry point."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results import load
from tests.helpers import ROOT

PACKAGES = ("harness", "tasks", "methods")
FIXTURE = ROOT / "tests" / "fixtures" / "toy_workload"


def _module(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(root: Path = ROOT) -> dict[str, set[str]]:
    """Every project module and the project modules it imports anywhere (lazily, in functions, too)."""
    files = [p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")]
    modules = {_module(p, root): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                       for stmt in block.body for n in ast.walk(stmt)}  # annotations only, never run
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def test_no_import_cycles() -> None:
    graph, state, cycles = _imports(), {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in graph[node]:
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])
    # A package importing its own submodules (to register them) is how packages work, not a cycle.
    real = [c for c in cycles if not any(b.startswith(a + ".") for a, b in zip(c, c[1:]))]
    assert real == []


def test_harness_imports_no_workload_and_methods_only_their_own() -> None:
    graph = _imports()
    for name, deps in graph.items():
        top = name.split(".")[0]
        if top == "harness":
            assert not [d for d in deps if d.split(".")[0] in ("tasks", "methods")], name
        if top == "methods" and name.count(".") == 2:  # methods.<workload>.<method>
            workload = name.split(".")[1]
            bad = [d for d in deps if not (d.startswith("harness") or d.startswith(f"tasks.{workload}"))]
            assert bad == [], f"{name} imports {bad}: a method imports harness and its own workload only"
        if not name.startswith("tasks.zoo.train_"):
            assert not [d for d in deps if d.startswith("tasks.zoo.train_")], f"{name} imports a training script"


def _tree_copy(dest: Path) -> Path:
    for pkg in (*PACKAGES, "conf"):
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.safetensors"))
    return dest


@pytest.mark.slow
def test_a_new_workload_is_two_folders_and_an_experiment(tmp_path: Path) -> None:
    """Drop tasks/toy/, methods/toy/ and conf/experiment/toy.yaml into a copy of the tree, edit
    nothing else, and the harness plans, runs, reports and pairs (ABBA) the new workload."""
    tree = _tree_copy(tmp_path / "tree")
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    shutil.copytree(FIXTURE, tree, dirs_exist_ok=True)
    after = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and p in before}
    assert after == before  # only new files were added
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, "-m", "harness", "experiment=toy", "profile=smoke",
                           f"results_dir={tmp_path / 'res'}"], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = load(tmp_path / "res")
    assert set(rows.variant) == {"loop", "vectorized"} and (rows.status == "ok").all()
    assert (rows[rows.metric == "sum_rel_error"].value < 1e-5).all()
    assert "speedup = ABBA-paired" in proc.stdout and "vectorized" in proc.stdout


def test_an_installed_package_plugs_in_through_an_entry_point(tmp_path: Path) -> None:
    """A package outside the repository registers a sampler and a metric via the entry point group."""
    site = tmp_path / "site"
    (site / "ext_sampler").mkdir(parents=True)
    (site / "ext_sampler" / "__init__.py").write_text(
        "from diffusers import DDIMScheduler\n"
        "from harness.metrics import MetricInfo, register_metric\n"
        "from harness.registry import register_method\n"
        "from tasks.diffusion.sampler import SamplerConfig, SamplerMethod\n"
        "register_metric('ext_quality', MetricInfo('', True, 'a plug-in metric', 'mean'))\n"
        "@register_method('ext_ddim', SamplerConfig)\n"
        "class ExtDDIM(SamplerMethod):\n"
        "    def scheduler(self, base):\n"
        "        return DDIMScheduler.from_config(base, clip_sample=False)\n")
    dist = site / "ext_sampler-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ext-sampler\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[efficiency_harness.plugins]\next_sampler = ext_sampler\n")
    code = ("from harness.plan import compose_config, plan\n"
            "from harness.metrics import info\n"
            "points = plan(compose_config(['method=ext_ddim', 'method.steps=7']))\n"
            "print(points[0].variant, info('ext_quality').description)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ext_ddim/steps=7 a plug-in metric")
