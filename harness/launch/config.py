"""The ``launcher`` config group: where and how a sweep's points run (README, "Running on a cluster").

Dataclass schemas stored in Hydra's ConfigStore (like ``timing``): their defaults live here only, and
``launcher.timeout_s=abc`` or ``launcher=nope`` fails at compose time, naming the field or the options.

- ``inline``: every point in this process, one after another (the default).
- ``process``: every chunk of points (``chunk``) in a fresh worker process, one at a time. A point that
  raises, crashes the interpreter, is killed (OOM killer), runs past ``timeout_s`` or past
  ``mem_limit_gb`` becomes an error row that says which, and the sweep goes on.
- ``slurm``: submitit's ``AutoExecutor.map_array``, one array task per chunk; ``cluster=local`` runs the
  same path as local processes (no Slurm needed), ``cluster=debug`` in this process.
- ``ray``: one Ray task per chunk, on an existing cluster (``address``) or a local one started here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

CHUNKS = ("workload", "point")
CLUSTERS = ("slurm", "local", "debug")


def _positive(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if value is not None and value <= 0:
            raise ValueError(f"launcher.{name} must be > 0 (or null for no limit), got {value}")


@dataclass
class LauncherConfig:
    name: str = "inline"
    # workload: one worker per run of consecutive points that share task, model and hardware, so the
    # model loads once per worker; point: one worker per point (full isolation, a model load each).
    chunk: str = "workload"
    # false: submit and return; ``harness report RESULTS`` later reads whatever has landed.
    wait: bool = True
    poll_s: float = 1.0  # how often a waiting launcher looks at the results folder (slurm, ray)

    def __post_init__(self) -> None:
        if self.chunk not in CHUNKS:
            raise ValueError(f"launcher.chunk={self.chunk!r}; valid: {', '.join(CHUNKS)}")
        _positive(self, "poll_s")


@dataclass
class IsolatedConfig(LauncherConfig):
    """A worker process per chunk, watched by a supervisor that outlives what kills the worker."""

    # Per point, from its start to its result file; null: no limit. On expiry the worker's Python
    # stacks are dumped (faulthandler) into the error row, then it is killed.
    timeout_s: float | None = None
    # Resident memory of the worker; null: no limit (the kernel's OOM killer still ends a runaway
    # worker, and its row then says SIGKILL and the peak memory seen).
    mem_limit_gb: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "timeout_s", "mem_limit_gb")


@dataclass
class InlineConfig(LauncherConfig):
    name: str = "inline"


@dataclass
class ProcessConfig(IsolatedConfig):
    name: str = "process"


@dataclass
class SlurmConfig(IsolatedConfig):
    """submitit's AutoExecutor; ``None`` leaves a knob to the cluster's defaults."""

    name: str = "slurm"
    cluster: str = "slurm"  # slurm | local (submitit's local executor: processes here) | debug (in-process)
    folder: str | None = None  # submitit's job files and logs; default <results_dir>.meta/launch/submitit
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    # One timed job per GPU: a job that shares a GPU with another timed job corrupts both timings.
    gpus_per_node: int = 1
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    timeout_min: int = 120  # Slurm's time limit for one array task (one chunk)
    array_parallelism: int = 64  # array tasks running at once (Slurm's --array=...%N); cluster=local: all
    exclusive: bool = False  # whole nodes: set it for CPU timing, which other jobs on the node disturb
    setup: list[str] = field(default_factory=list)  # shell lines run before the job (module load ...)
    # Run each chunk in a worker process under the job (timeouts, crashes and memory become error rows
    # and the chunk's other points still run); false: in the job's own process (one process start less).
    isolate: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cluster not in CLUSTERS:
            raise ValueError(f"launcher.cluster={self.cluster!r}; valid: {', '.join(CLUSTERS)}")
        if self.gpus_per_node < 0:
            raise ValueError(f"launcher.gpus_per_node must be >= 0, got {self.gpus_per_node}")
        _positive(self, "cpus_per_task", "mem_gb", "timeout_min", "array_parallelism")


@dataclass
class RayConfig(IsolatedConfig):
    name: str = "ray"
    # null: start a local Ray cluster for this run; "auto": the cluster this machine belongs to
    # (``ray start --head`` / KubeRay); or "ray://host:10001".
    address: str | None = None
    num_gpus: float = 1  # per task (chunk); Ray sets each task's CUDA_VISIBLE_DEVICES
    num_cpus: float = 1
    # Resources a local cluster declares (null: what this machine has). num_gpus on a machine
    # without GPUs declares fake ones: how the launcher is tested.
    local_num_cpus: int | None = None
    local_num_gpus: int | None = None
    # A task asking for more than any node has fails after this long, naming what the cluster has
    # (an autoscaling cluster gets this long to add a node); it never waits forever.
    schedule_timeout_s: float = 60.0
    isolate: bool = True  # as for slurm

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_gpus < 0 or self.num_cpus < 0:
            raise ValueError(f"launcher.num_gpus and launcher.num_cpus must be >= 0, got {self.num_gpus} and "
                             f"{self.num_cpus}")
        _positive(self, "schedule_timeout_s", "local_num_cpus")


LAUNCHERS = {"inline": InlineConfig, "process": ProcessConfig, "slurm": SlurmConfig, "ray": RayConfig}
for _name, _cls in LAUNCHERS.items():
    ConfigStore.instance().store(group="launcher", name=_name, node=_cls)
