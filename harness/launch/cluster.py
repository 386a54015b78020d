"""Slurm (through submitit) and Ray: one job or task per chunk, watched through the results folder.

The job body is the same everywhere (``run_job``): with ``isolate`` it supervises a worker process
(``harness.launch.supervise``), so a crash, a timeout or a memory limit becomes an error row and the
chunk's other points still run; without, it runs the chunk in the job's own process. The launcher
shows progress from the folder: a point is running while its lock file names this launch's chunk
(``harness.launch.lock``), done once its result file has landed. A job that ends without finishing
its chunk (Slurm's time limit, a node failure, the cgroup's OOM kill of the whole job) leaves the
point it was running with a non-empty lock file: the launcher writes that point's error row from
the job's state; the chunk's points that never started stay missing, and rerunning the same command
submits only those (finished points are skipped before anything is submitted).
"""

from __future__ import annotations

import time
from typing import Any

from harness import progress
from harness.launch.base import Launch, LaunchError, launcher_label, limits
from harness.launch.config import IsolatedConfig, RayConfig, SlurmConfig
from harness.launch.lock import PointLock
from harness.launch.supervise import record_failure, supervise
from harness.launch.worker import Chunk, final, run_chunk
from harness.results import meta_dir, point_file
from harness.where import COLUMNS as WHERE_COLUMNS
from harness.where import where_ran


def run_job(chunk: Chunk, cfg: IsolatedConfig) -> int:
    """The body of one Slurm array task or Ray task: run ``chunk``, log one line per event."""
    where = where_ran(launcher_label(cfg))
    names = {p.point_id: f"{p.variant} seed={p.seed}" for p in chunk.points}

    def log(ev: dict[str, Any]) -> None:
        if ev["event"] == "output":
            print(ev["line"], flush=True)
        elif ev["event"] != "progress":
            detail = ev.get("why") or ev.get("holder") or ev.get("status") or ""
            print(f"{names.get(ev.get('point'), ev.get('point'))}: {ev['event']} {detail}".rstrip(), flush=True)

    if cfg.isolate:
        supervise(chunk, limits(cfg), log, where)
    else:
        run_chunk(chunk, log, where)
    return len(chunk.points)


class ClusterLaunch(Launch):
    """Submits at construction; ``wait`` polls the folder and the jobs until every job has ended."""

    background = True

    def __init__(self, points: list[Any], cfg: Any, **kw: Any):
        super().__init__(points, cfg, **kw)
        self.jobs: list[Any] = self._submit() if self.chunks else []
        if self.chunks:
            print(f"submitted {len(self.chunks)} {self.cfg.name} job(s) for {sum(len(c.points) for c in self.chunks)} "
                  f"point(s): {self._describe()}", flush=True)

    def _submit(self) -> list[Any]:
        raise NotImplementedError

    def _describe(self) -> str:
        return ""

    def _ended(self, i: int) -> tuple[bool, str | None]:
        """(has job i ended, why it failed or None)."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Release what the launch holds (a local Ray cluster)."""

    def detach(self) -> None:
        print(f"not waiting: results land in {self.results_dir}; `harness report {self.results_dir}` reads what "
              "has landed, and rerunning the same command submits only the points still missing", flush=True)

    def _run(self, display: progress.SweepProgress) -> None:
        seen: dict[str, str] = {}  # point id -> last state shown (start / end)
        ended: set[int] = set()
        try:
            while True:
                for i, chunk in enumerate(self.chunks):
                    if i not in ended:
                        done, why = self._ended(i)
                        if done:
                            ended.add(i)
                            if why is not None:
                                self._job_failed(chunk, why, display.event)
                    self._show(chunk, seen, display)
                if len(ended) == len(self.chunks):
                    return
                time.sleep(self.cfg.poll_s)
        finally:
            self._finish()

    def _show(self, chunk: Chunk, seen: dict[str, str], display: progress.SweepProgress) -> None:
        for p in chunk.points:
            pid = p.point_id
            if seen.get(pid) == "end":
                continue
            state = final(chunk, pid)
            holder = PointLock(chunk.results_dir, pid).holder()
            if state is None and holder and holder.get("token") == chunk.token and pid not in seen:
                seen[pid] = "start"
                display.event({"event": "start", "point": pid})
            if state is not None:
                if pid not in seen:
                    display.event({"event": "start", "point": pid})
                seen[pid] = "end"
                display.event({"event": "end", "point": pid, "status": state, "error": _error(chunk, pid)})

    def _job_failed(self, chunk: Chunk, why: str, emit: Any) -> None:
        """The job ended without finishing: the point it was running (its lock file still names this chunk)
        gets an error row with the job's fate; points it never started stay missing."""
        for p in chunk.points:
            holder = PointLock(chunk.results_dir, p.point_id).holder()
            if final(chunk, p.point_id) is None and holder and holder.get("token") == chunk.token:
                where = {c: holder.get(c) for c in WHERE_COLUMNS} | {"launcher": chunk.launcher}
                record_failure(chunk, p, f"JobFailed: {why}", None, where, emit)


def _error(chunk: Chunk, point_id: str) -> str | None:
    import pyarrow.parquet as pq

    errors = pq.read_table(point_file(chunk.results_dir, point_id), columns=["error"]).column("error").to_pylist()
    return next((e for e in errors if e), None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


class SlurmLaunch(ClusterLaunch):
    cfg: SlurmConfig

    def _executor(self) -> Any:
        try:
            import submitit
        except ImportError:
            raise LaunchError("launcher=slurm needs submitit: pip install -e '.[slurm]'") from None
        folder = self.cfg.folder or str(meta_dir(self.results_dir) / "launch" / "submitit")
        ex = submitit.AutoExecutor(folder=folder, cluster=self.cfg.cluster)
        ex.update_parameters(**slurm_parameters(self.cfg, self.chunks[0].experiment))
        return ex

    def _submit(self) -> list[Any]:
        if self.cfg.cluster == "debug" and not self.cfg.wait:
            raise LaunchError("launcher.cluster=debug runs jobs in this process when waited for: it cannot "
                              "launcher.wait=false")
        self.executor = self._executor()
        return self.executor.map_array(run_job, self.chunks, [self.cfg] * len(self.chunks))

    def _describe(self) -> str:
        ids = [j.job_id for j in self.jobs]
        jobs = f"job ids {ids[0]}..{ids[-1]}" if len(ids) > 1 else f"job id {ids[0]}"
        return f"{jobs}; logs in {self.executor.folder}"

    def _ended(self, i: int) -> tuple[bool, str | None]:
        job = self.jobs[i]
        if self.cfg.cluster == "debug":  # runs in this process now (exception() does, without a debugger)
            exc = job.exception()
        elif not job.done():
            return False, None
        else:
            exc = job.exception()
        if exc is None:
            return True, None
        return True, f"{self.cfg.name} job {job.job_id} ended with state {job.state}: {_first_line(exc)}"


def slurm_parameters(cfg: SlurmConfig, experiment: str) -> dict[str, Any]:
    """submitit's AutoExecutor parameters for ``cfg`` (None leaves a knob to the cluster)."""
    return {
        "name": f"harness-{experiment}", "timeout_min": cfg.timeout_min, "gpus_per_node": cfg.gpus_per_node,
        "cpus_per_task": cfg.cpus_per_task, "mem_gb": cfg.mem_gb, "slurm_partition": cfg.partition,
        "slurm_account": cfg.account, "slurm_qos": cfg.qos, "slurm_array_parallelism": cfg.array_parallelism,
        "slurm_exclusive": True if cfg.exclusive else None, "slurm_setup": list(cfg.setup) or None,
        "local_setup": list(cfg.setup) or None, "stderr_to_stdout": True,
    }


_ray_users = 0  # Ray launches of this process not yet finished


class RayLaunch(ClusterLaunch):
    cfg: RayConfig

    def _submit(self) -> list[Any]:
        if not self.cfg.wait:
            raise LaunchError("launcher=ray cannot launcher.wait=false: Ray ends a driver's tasks when it exits. "
                              "Submit the whole sweep as a Ray job instead: ray job submit --no-wait -- harness "
                              "... launcher=ray launcher.address=auto")
        try:
            import ray
        except ImportError:
            raise LaunchError("launcher=ray needs Ray: pip install -e '.[ray]'") from None
        global _ray_users
        self.started_here = not ray.is_initialized()
        if self.started_here:
            if self.cfg.address:
                ray.init(address=self.cfg.address)
            else:
                ray.init(num_cpus=self.cfg.local_num_cpus, num_gpus=self.cfg.local_num_gpus, include_dashboard=False)
        # A multirun's jobs share this process's Ray connection: the last launch to finish closes it.
        _ray_users += 1
        self.connected = True
        try:
            self._check_schedulable(ray)
        except LaunchError:
            self._finish()
            raise
        task = ray.remote(run_job).options(num_cpus=self.cfg.num_cpus, num_gpus=self.cfg.num_gpus, max_retries=0)
        self.refs = [task.remote(c, self.cfg) for c in self.chunks]
        return self.refs

    def _check_schedulable(self, ray: Any) -> None:
        """Fail within ``schedule_timeout_s`` when no node can run a task: Ray would queue it forever."""
        need = {"GPU": self.cfg.num_gpus, "CPU": self.cfg.num_cpus}
        deadline = time.monotonic() + self.cfg.schedule_timeout_s
        while True:
            nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
            if any(all(r.get(k, 0) >= v for k, v in need.items()) for r in nodes):
                return
            if time.monotonic() > deadline:
                have = "; ".join(f"node {i}: {r.get('GPU', 0):g} GPU, {r.get('CPU', 0):g} CPU"
                                 for i, r in enumerate(nodes)) or "no live node"
                raise LaunchError(f"launcher=ray: a task asks for launcher.num_gpus={self.cfg.num_gpus:g} and "
                                  f"launcher.num_cpus={self.cfg.num_cpus:g}, and no node of the Ray cluster has that "
                                  f"many after {self.cfg.schedule_timeout_s:g} s (launcher.schedule_timeout_s): {have}")
            time.sleep(min(1.0, self.cfg.schedule_timeout_s))

    def _describe(self) -> str:
        import ray

        return f"Ray cluster {'started here' if self.started_here else 'at ' + str(self.cfg.address)}, " \
            f"{ray.cluster_resources().get('GPU', 0):g} GPU(s) in all"

    def _ended(self, i: int) -> tuple[bool, str | None]:
        import ray

        ready, _ = ray.wait([self.refs[i]], timeout=0)
        if not ready:
            return False, None
        try:
            ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001  (a crashed worker, a dead node: recorded, not raised)
            return True, f"ray task ended with {_first_line(exc)}"
        return True, None

    def _finish(self) -> None:
        global _ray_users
        if getattr(self, "connected", False):
            import ray

            self.connected = False
            _ray_users -= 1
            if _ray_users == 0:
                ray.shutdown()

