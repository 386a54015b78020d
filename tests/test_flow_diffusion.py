"""The flow-DiT workload: caches really skip work, ERTACache's schedule is deterministic, the design is paired."""

from __future__ import annotations

import pytest
import torch

from harness.registry import lookup
from tasks.flow_diffusion.flow_generation import FlowGeneration, FlowGenerationConfig
from tasks.flow_diffusion.protocol import FlowModel, FlowSampler, Sampler, StepsConfig, count_block_work


@pytest.fixture(scope="module")
def task() -> FlowGeneration:
    cfg = FlowGenerationConfig(name="flow_generation", **FlowGenerationConfig.SMOKE)
    return FlowGeneration(cfg, {"name": "digits_dit", "source": "zoo:digits_dit"}, torch.device("cpu"), torch.float32)


def method(name: str, **params: object) -> FlowSampler:
    cls = lookup("method", name)
    return cls(cls.Config(name=name, **params))


def costs(sampler: Sampler, noise: torch.Tensor, labels: torch.Tensor, blocks: int) -> tuple[float, int]:
    """(effective NFE, transformer calls) of one sampling run."""
    calls = [0]
    handle = sampler.transformer.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        with count_block_work(sampler.transformer) as c:
            sampler(noise, labels)
    finally:
        handle.remove()
    return (c["attn"] + c["ff"]) / (2 * blocks * len(noise)), calls[0]


CACHES = [("first_block_cache", {"threshold": 0.2}), ("mag_cache", {"threshold": 0.2}),
          ("taylorseer", {"order": 0}), ("taylorseer", {"order": 1}), ("pab", {}), ("faster_cache", {}),
          ("ertacache", {"full_evals": 10})]


@pytest.mark.parametrize(("name", "params"), CACHES, ids=[f"{n}{p}" for n, p in CACHES])
def test_each_cache_reduces_block_evaluations(task: FlowGeneration, name: str, params: dict) -> None:
    noise, labels = task.inputs(0, 4)
    m = method(name, steps=20, **params)
    assert m.skips_compute
    sampler = m.build(task.model)
    effective, calls = costs(sampler, noise, labels, task.model.num_blocks)
    assert calls == 20  # the sampler still calls the transformer once per step
    assert effective < 20, f"{name} skipped no block evaluation"
    # The shared model stays unhooked: a plain Euler run afterwards evaluates every block.
    plain = method("flow_euler", steps=20).build(task.model)
    assert costs(plain, noise, labels, task.model.num_blocks) == (20.0, 20)
    # Reset between runs: a second run of the same sampler gives the same images.
    assert torch.equal(sampler(noise, labels), sampler(noise, labels))


def test_cache_that_skips_nothing_fails_the_point(task: FlowGeneration) -> None:
    class SilentCache(FlowSampler):  # claims to cache, hooks nothing (as TaylorSeer's default patterns on DiT)
        name = "silent_cache"
        skips_compute = True

        def build(self, model: FlowModel) -> Sampler:
            return method("flow_euler", steps=4).build(model)

    prepared = task.prepare(SilentCache(StepsConfig(name="silent_cache", steps=4)), seed=0)
    with pytest.raises(RuntimeError, match="skipped nothing"):
        prepared.evaluate()


def test_ertacache_schedule_is_deterministic(task: FlowGeneration) -> None:
    a, b = method("ertacache", steps=20, full_evals=8), method("ertacache", steps=20, full_evals=8)
    a.build(task.model)
    b.build(task.model)
    assert a.schedule.compute == b.schedule.compute
    assert sum(a.schedule.compute) == 8 and a.schedule.compute[0]
    assert a.schedule.phi == b.schedule.phi and a.schedule.phi  # one step scale per reused step
    assert all(torch.equal(a.schedule.a[i], b.schedule.a[i]) for i in a.schedule.a)
    assert set(a.schedule.a) == {i for i, c in enumerate(a.schedule.compute) if not c}
    # The ablation reuses on the same profiled schedule without any correction.
    plain = method("ertacache", steps=20, full_evals=8, correction=False, adjust_timestep=False)
    plain.build(task.model)
    assert plain.schedule.compute == a.schedule.compute and not plain.schedule.a
    assert set(plain.schedule.phi.values()) == {1.0}


def test_paired_design_same_noise_and_labels_across_methods(task: FlowGeneration) -> None:
    seen = []

    class Recorder(FlowSampler):
        name = "recorder"

        def build(self, model: FlowModel) -> Sampler:
            def run(noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
                seen.append((noise.clone(), labels.clone()))
                return noise
            return Sampler(model.transformer, run)

    for _ in range(2):
        task.prepare(Recorder(StepsConfig(name="recorder")), seed=3).call()
    task.prepare(Recorder(StepsConfig(name="recorder")), seed=4).call()
    (n0, l0), (n1, l1), (n2, _) = seen
    assert torch.equal(n0, n1) and torch.equal(l0, l1)
    assert not torch.equal(n0, n2)
    noise, labels = task.inputs(3, task.cfg.n_samples)
    assert torch.equal(noise[: len(n0)], n0) and torch.equal(labels[: len(l0)], l0)
    assert sorted(set(labels.tolist())) == list(range(10))  # class-conditional on the real label mix


def test_flowturbo_and_noise_search_costs(task: FlowGeneration) -> None:
    noise, labels = task.inputs(0, 4)
    blocks = task.model.num_blocks
    assert costs(method("flowturbo", heun_steps=1, pseudo_steps=4).build(task.model), noise, labels, blocks) == (6, 6)
    assert costs(method("flow_heun", steps=6).build(task.model), noise, labels, blocks) == (11, 11)
    search = method("noise_search", steps=4, candidates=3).build(task.model)
    assert costs(search, noise, labels, blocks) == (12, 12)
    # Best of 3 by the verifier scores at least as well as candidate 0 (the paired noise) alone.
    single = method("noise_search", steps=4, candidates=1).build(task.model)

    def score(x: torch.Tensor) -> torch.Tensor:
        return task.model.verifier(x.clamp(-1, 1)).softmax(-1).gather(1, labels.view(-1, 1)).squeeze(1)

    assert bool((score(search(noise, labels)) >= score(single(noise, labels)) - 1e-6).all())
    assert torch.equal(search(noise, labels), search(noise, labels))  # deterministic
