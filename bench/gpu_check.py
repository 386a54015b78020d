"""GPU check: the CUDA paths of the harness in one short run (under 5 minutes on one H100/H200), one table.

    .venv/bin/python bench/gpu_check.py                   # on a machine with a CUDA GPU
    .venv/bin/python bench/gpu_check.py --cpu-dry-run     # the same steps on CPU at tiny sizes (plumbing only)

Steps (each in its own process with a time limit; a failed step is reported and the next one runs):
1. cuda_tests: the CUDA-gated tests (tests/test_timing_modes.py, tests/test_attention.py; they skip on CPU).
2. event_ratio: CUDA-event timing against a known 4:1 ratio (4 matmuls vs 1), eager, with the L2
   flush and with CUDA-graph replay; passes when the eager ratio is within 5% of 4.
3. attention_grid: experiment=attention in the GPU's half precision (--hardware), the FlashAttention
   benchmarks' hidden 2048 = 16 heads x 128, (batch, seqlen) = (8, 2048) and (2, 8192) (16k tokens),
   causal and not, SDPA math/flash/efficient/cudnn against the materialised baseline, timing.l2_flush=true;
   passes when every point ran and flash is faster than the baseline in every setting.
4. attention_claims: flashattention2_peak_fraction and rettention_attn_latency on the GPU (verdicts).
5. token_bleu: the tensorbleu_a100 claim with hardware=cuda (token_bleu on the GPU against NLTK).
6. default_cuda: the default experiment with hardware=cuda (timing.max_time_s=2 to stay in budget).
The results go to --out (default results/gpu_check/), one folder per step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from harness import fmt  # noqa: E402

GRID = [(8, 2048), (2, 8192)]  # (batch, seqlen): 16k tokens, as the FlashAttention benchmarks
GPU_POINTS = "[{name:naive_attention},{name:sdpa,backend:math},{name:sdpa,backend:flash}," \
             "{name:sdpa,backend:efficient},{name:sdpa,backend:cudnn}]"
CPU_POINTS = "[{name:naive_attention},{name:sdpa,backend:math},{name:sdpa,backend:flash}]"


def harness(*args: str, timeout: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def verdicts(stdout: str) -> dict[str, str]:
    """Claim id -> verdict from the summary table ``harness claims`` prints."""
    out = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 5 and cells[1] not in ("claim", "---"):
            out[cells[1]] = f"{cells[-2]} (measured {cells[3]})"
    return out


def cuda_tests(a: argparse.Namespace) -> tuple[bool, str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-k", "cuda", "tests/test_timing_modes.py",
                           "tests/test_attention.py"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return proc.returncode in (0, 5), last  # 5: nothing collected


def event_ratio(a: argparse.Namespace) -> tuple[bool, str]:
    from dataclasses import replace

    import numpy as np

    from harness.timing import TimingPolicy, measure

    device = torch.device(a.device)
    n = 4096 if device.type == "cuda" else 256
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    x = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty_like(x)

    def work(k: int) -> Callable[[], None]:
        def f() -> None:
            for _ in range(k):
                torch.mm(x, x, out=out)
        return f

    policy = TimingPolicy(min_repeats=20, min_time_s=0.2, max_time_s=3.0, target_rel_ci=0.01)
    modes = {"eager": policy, "l2_flush": replace(policy, l2_flush=True)}
    if device.type == "cuda":
        modes["cuda_graph"] = replace(policy, cuda_graph=True)
    ratios = {}
    for name, pol in modes.items():
        many, one = measure(work(4), pol, device), measure(work(1), pol, device)
        ratios[name] = float(np.median(many.samples_s) / np.median(one.samples_s))
    text = ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())
    return abs(ratios["eager"] / 4 - 1) < 0.05, f"4:1 ratio measured ({many.clock}): {text}"


def attention_grid(a: argparse.Namespace) -> tuple[bool, str]:
    sys.path.insert(0, str(ROOT / "bench"))
    from attention_grid import grid, table

    from harness.results import load

    out = Path(a.out) / "attention"
    points = GPU_POINTS if a.device == "cuda" else CPU_POINTS
    shape = ["task.heads=16", "task.head_dim=128"] if a.device == "cuda" else ["task.heads=2", "task.head_dim=64"]
    sizes = GRID if a.device == "cuda" else [(2, 256), (1, 512)]
    for batch, seqlen in sizes:
        proc = harness("-m", "experiment=attention", f"hardware={a.hardware}", f"points={points}", "report=false",
                       f"task.batch_size={batch}", f"task.seqlen={seqlen}", "task.causal=false,true", *shape,
                       "timing.l2_flush=true", f"results_dir={out}", *a.extra, timeout=240)
        if proc.returncode != 0:
            return False, f"harness exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    rows = load(out)
    g = grid(rows[rows.status == "ok"], "naive_attention")
    print(table(g, "naive_attention"), flush=True)
    failed = sorted(set(rows[rows.status != "ok"].variant))
    flash = g[g.variant == "sdpa/backend=flash"]
    speedups = [s.value for s in flash.speedup if s is not None]
    ok = not failed and len(speedups) == 2 * len(sizes) and min(speedups) > 1
    best = g.dropna(subset=["tflops"]).tflops.map(lambda e: e.value).max()
    return ok, (f"flash vs naive {min(speedups):.3g}-{max(speedups):.3g}x over {len(speedups)} settings; "
                f"best {best:.4g} TFLOP/s; failed points: {', '.join(failed) or 'none'}")


def attention_claims(a: argparse.Namespace) -> tuple[bool, str]:
    small = [] if a.device == "cuda" else ["--set", "task.seqlen=256", "--set", "task.heads=2", "--set",
                                           "task.batch_size=1", "--set", "task.head_dim=64"]
    proc = harness("claims", "flashattention2_peak_fraction", "rettention_attn_latency", "--set",
                   f"hardware={a.hardware}", "--set", f"results_dir={Path(a.out) / 'attention_claims'}", *small,
                   *sum((["--set", e] for e in a.extra), []), timeout=240)
    print(proc.stdout, flush=True)
    v = verdicts(proc.stdout)
    return proc.returncode == 0, "; ".join(f"{k}: {s}" for k, s in v.items()) or proc.stderr[-300:]


def token_bleu(a: argparse.Namespace) -> tuple[bool, str]:
    small = [] if a.device == "cuda" else ["--set", "task.batch_size=8", "--set", "task.length=64"]
    hw = "cuda" if a.device == "cuda" else "cpu"
    proc = harness("claims", "tensorbleu_a100", "--set", f"hardware={hw}", "--set",
                   f"results_dir={Path(a.out) / 'token_bleu'}", *small, timeout=240)
    print(proc.stdout, flush=True)
    v = verdicts(proc.stdout)
    return proc.returncode == 0, "; ".join(f"{k}: {s}" for k, s in v.items()) or proc.stderr[-300:]


def default_cuda(a: argparse.Namespace) -> tuple[bool, str]:
    hw = "cuda" if a.device == "cuda" else "cpu"
    extra = ["timing.max_time_s=2"] if a.device == "cuda" else ["profile=smoke"]
    proc = harness(f"hardware={hw}", f"results_dir={Path(a.out) / 'default'}", *extra, timeout=240)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("unipc/steps=10", "hardware "))]
    return proc.returncode == 0, " | ".join(lines) or proc.stderr[-300:]


STEPS = {"cuda_tests": cuda_tests, "event_ratio": event_ratio, "attention_grid": attention_grid,
         "attention_claims": attention_claims, "token_bleu": token_bleu, "default_cuda": default_cuda}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hardware", default="auto", help="hardware config for the attention steps: auto (h200/h100 "
                    "by device name, else cuda: no spec-sheet peak), or a conf/hardware name")
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu_check"))
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    ap.add_argument("--cpu-dry-run", action="store_true", help="run every step on CPU at tiny sizes (plumbing only)")
    ap.add_argument("--extra", nargs="*", default=[], help="extra Hydra overrides for the attention steps")
    a = ap.parse_args()
    if not a.cpu_dry_run and not torch.cuda.is_available():
        print("gpu_check: torch.cuda.is_available() is False; this check needs a CUDA GPU (or --cpu-dry-run)")
        return 2
    a.device = "cpu" if a.cpu_dry_run else "cuda"
    if a.hardware == "auto":
        name = torch.cuda.get_device_name(0) if a.device == "cuda" else ""
        a.hardware = "cpu" if a.cpu_dry_run else "h200" if "H200" in name else "h100" if "H100" in name else "cuda"
    where = torch.cuda.get_device_name(0) if a.device == "cuda" else "CPU (dry run: tiny sizes, no CUDA paths)"
    print(f"gpu_check on {where}, torch {torch.__version__}, hardware config {a.hardware}", flush=True)
    rows, start = [], time.perf_counter()
    for name in a.steps:
        t0 = time.perf_counter()
        print(f"\n== {name}", flush=True)
        try:
            ok, figures = STEPS[name](a)
        except Exception as exc:  # noqa: BLE001  (a failed step is a row of the table; the next step runs)
            ok, figures = False, f"{type(exc).__name__}: {exc}"
        rows.append([name, f"{time.perf_counter() - t0:.0f}", "pass" if ok else "FAIL", figures])
    print(f"\ngpu_check summary ({where}; {time.perf_counter() - start:.0f} s in all)")
    print(fmt.table(["step", "s", "status", "figures"], rows, markdown=True))
    return 0 if all(r[2] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
