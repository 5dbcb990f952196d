"""Where the book's task graph runs: a local Dask cluster, a running scheduler or Slurm ("Running this book")."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dask
import torch
from dask_jobqueue import SLURMCluster
from distributed import Client, LocalCluster, get_worker

from ..common import ConfigError

#: The resource a GPU worker advertises (``dask worker --resources GPU=1``); each torch task asks for one.
GPU = "GPU"
#: Threads of the numerical libraries in each worker process: one, since each worker runs one task at a time.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
#: Keep glibc's own threshold: Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` returns memory after nearly every
#: free, and torch's many small allocations then train 1.7 times slower (benchmarks/bench_precompute.py).
KEEP_MALLOC_DEFAULT = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
#: The same setting as an environment variable, for workers started by a batch script.
KEEP_MALLOC_DEFAULT_ENV = {"DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_": "None"}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a batch system may restrict)."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True)
class SlurmJobs:
    """Slurm jobs of Dask workers (one per core, or per GPU); ``directives`` are further ``#SBATCH`` options."""

    jobs: int
    gpus_per_job: int = 0
    cores_per_job: int = 8
    memory_per_job: str = "32GB"
    walltime: str = "08:00:00"
    directives: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {self.jobs}")
        if self.gpus_per_job < 0:
            raise ConfigError(f"--gpus-per-job must be 0 or more, got {self.gpus_per_job}")
        if self.cores_per_job < max(1, self.gpus_per_job):
            raise ConfigError(f"--cores-per-job ({self.cores_per_job}) must be at least 1 and at least "
                              f"--gpus-per-job ({self.gpus_per_job})")


@dataclass(frozen=True)
class ClusterSpec:
    """A local cluster of ``workers`` processes, or one of: a running scheduler (address or file), Slurm jobs."""

    workers: int = field(default_factory=usable_cores)
    scheduler: str | None = None
    scheduler_file: Path | None = None
    slurm: SlurmJobs | None = None

    def __post_init__(self) -> None:
        chosen = [name for name, value in (("--scheduler", self.scheduler), ("--scheduler-file", self.scheduler_file),
                                           ("--cluster slurm", self.slurm)) if value is not None]
        if len(chosen) > 1:
            raise ConfigError(f"choose one cluster: {' and '.join(chosen)} were both given")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")


def local_cluster(workers: int) -> LocalCluster:
    # one-thread processes: two of them train faster than one two-thread process on a 2-core machine
    with dask.config.set(KEEP_MALLOC_DEFAULT):  # read by each nanny when it is created
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, env=ONE_THREAD,
                            dashboard_address=":0")


def slurm_cluster(jobs: SlurmJobs) -> SLURMCluster:
    """A dask-jobqueue cluster for ``jobs``, none submitted yet (``cluster.job_script()`` shows a job's script)."""
    directives = [f"--gres=gpu:{jobs.gpus_per_job}"] if jobs.gpus_per_job else []
    return SLURMCluster(
        cores=jobs.cores_per_job, processes=jobs.gpus_per_job or jobs.cores_per_job, memory=jobs.memory_per_job,
        walltime=jobs.walltime, job_extra_directives=[*directives, *jobs.directives],
        worker_extra_args=["--resources", f"{GPU}=1"] if jobs.gpus_per_job else [],
        job_script_prologue=[f"export {name}={value}"
                             for name, value in {**ONE_THREAD, **KEEP_MALLOC_DEFAULT_ENV}.items()],
        scheduler_options={"dashboard_address": ":0"},
    )


def scheduler_address(path: Path) -> str:
    """The scheduler's address in a ``dask scheduler --scheduler-file`` file, or one ConfigError."""
    try:
        info = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"scheduler file {path} does not exist; start one with "
                          f"`dask scheduler --scheduler-file {path}`") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"scheduler file {path} is not a Dask scheduler file ({exc})") from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise ConfigError(f"scheduler file {path} is not a Dask scheduler file (it names no address)")
    return info["address"]


@contextmanager
def connect(spec: ClusterSpec, log: Callable[[str], None] = print) -> Iterator[Client]:
    """A client of the cluster ``spec`` names; a local or Slurm cluster is started here and stopped after."""
    if spec.scheduler is not None or spec.scheduler_file is not None:
        address = spec.scheduler or scheduler_address(spec.scheduler_file)
        try:
            client = Client(address, timeout="30s")
        except OSError as exc:
            raise ConfigError(f"no Dask scheduler answers at {address} ({exc})") from None
        with client:
            log(f"connected to the scheduler at {address} ({len(client.scheduler_info()['workers'])} workers now)")
            yield client
        return
    if spec.slurm is not None:
        cluster = slurm_cluster(spec.slurm)
        cluster.scale(jobs=spec.slurm.jobs)
        log(f"submitted {spec.slurm.jobs} Slurm jobs; the scheduler is at {cluster.scheduler_address}")
    else:
        cluster = local_cluster(spec.workers)
        log(f"started a local cluster of {spec.workers} worker processes, one thread each")
    with cluster, Client(cluster) as client:
        log(f"Dask dashboard (with bokeh installed): {client.dashboard_link}")
        yield client


def has_gpu_workers(client: Client, spec: ClusterSpec) -> bool:
    """Whether the cluster offers GPUs: Slurm jobs with GPUs, or connected workers that advertise one."""
    if spec.slurm is not None:
        return spec.slurm.gpus_per_job > 0
    return any(GPU in worker.get("resources", {}) for worker in client.scheduler_info()["workers"].values())


def worker_device(device: str) -> str:
    """The device a task asks for on this worker: a bare CUDA request is spread over the visible GPUs by the number
    ending the worker's name (``3``, ``SLURMCluster-0-3``) modulo the GPU count."""
    if device not in ("auto", "cuda") or not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return device
    try:
        name = str(get_worker().name)
    except ValueError:  # not in a worker
        return device
    number = re.search(r"(\d+)$", name)
    return f"cuda:{int(number.group(1)) % torch.cuda.device_count()}" if number else device
