"""The paper graph's wall time on N workers, projected from measured task costs ("Running this book")."""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..common import ConfigError
from .context import Context
from .precompute import Task, paper_graph
from .profiles import get_profile
from .provenance import RESULTS_ROOT
from .runner import BUILD_COPY, CHAPTER_TIMES, PRECOMPUTE_ENTRY, REPO_ROOT, WHOLE_BUILD_ENTRY, toc_entries

#: Seconds of one single-threaded worker per kind of task, measured by ``benchmarks/bench_precompute.py``.
PAPER_TASK_COSTS = REPO_ROOT / "benchmarks" / "paper_task_costs.json"
HOUR = 3600.0


@dataclass(frozen=True)
class TaskCosts:
    """Seconds of one worker per kind of task (:func:`cost_key`), the source of each figure, and by whom."""

    profile: str
    seconds: dict[str, float]
    sources: dict[str, str]
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        costs = {key: {"seconds": round(self.seconds[key], 1), "source": self.sources[key]} for key in self.seconds}
        return {"profile": self.profile, "unit": "seconds of one single-threaded worker",
                "provenance": self.provenance, "costs": costs}


def cost_key(task: Task) -> str:
    """What a task's cost depends on: its name without seed or setting, e.g. ``train learning rate nsde``."""
    what = re.sub(r"\s*\d[\d.e-]*$", "", task.what)
    return " ".join(part for part in (task.stage, what, task.kind or "") if part)


def load_task_costs(path: Path = PAPER_TASK_COSTS) -> TaskCosts:
    data = json.loads(Path(path).read_text())
    costs = data["costs"]
    return TaskCosts(data["profile"], {key: float(entry["seconds"]) for key, entry in costs.items()},
                     {key: entry["source"] for key, entry in costs.items()}, data["provenance"])


def task_seconds(tasks: Sequence[Task], costs: Mapping[str, float]) -> dict[str, float]:
    """Each task's cost by its name; one ConfigError names every kind of task the costs lack."""
    missing = sorted({cost_key(task) for task in tasks} - set(costs))
    if missing:
        raise ConfigError(f"no measured cost for {', '.join(repr(key) for key in missing)}")
    return {task.name: costs[cost_key(task)] for task in tasks}


def critical_path(tasks: Sequence[Task], seconds: Mapping[str, float]) -> float:
    """The longest chain of tasks that wait for each other: the wall time with unlimited workers."""
    finish: dict[str, float] = {}
    for task in tasks:  # a graph lists every task after the ones it waits for
        finish[task.name] = max((finish[name] for name in task.after), default=0.0) + seconds[task.name]
    return max(finish.values(), default=0.0)


def list_schedule(tasks: Sequence[Task], seconds: Mapping[str, float], workers: int) -> float:
    """The wall time on ``workers`` workers that each start the first ready task of the list when free."""
    order = {task.name: index for index, task in enumerate(tasks)}
    waiting = {task.name: set(task.after) for task in tasks}
    dependents: dict[str, list[str]] = {task.name: [] for task in tasks}
    for task in tasks:
        for name in task.after:
            dependents[name].append(task.name)
    ready = [order[name] for name, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < workers:
            name = tasks[heapq.heappop(ready)].name
            heapq.heappush(running, (now + seconds[name], name))
        now, done = heapq.heappop(running)
        for name in dependents[done]:
            waiting[name].discard(done)
            if not waiting[name]:
                heapq.heappush(ready, order[name])
    return now


def projection_table(tasks: Sequence[Task], seconds: Mapping[str, float], workers: Sequence[int] = (2, 16, 64)
                     ) -> pd.DataFrame:
    """The projected wall time on each number of workers beside its two lower bounds, in hours."""
    total, longest = sum(seconds.values()), critical_path(tasks, seconds)
    rows = []
    for n in workers:
        wall = list_schedule(tasks, seconds, n)
        rows.append({"workers": n, "projected wall time (h)": wall / HOUR, "work / workers (h)": total / n / HOUR,
                     "critical path (h)": longest / HOUR, "workers busy": total / (n * wall)})
    return pd.DataFrame(rows).set_index("workers")


def _measured_graph(path: Path) -> tuple[list[Task], dict[str, float]]:
    """The whole graph of the profile the costs at ``path`` were measured at, and each task's seconds."""
    costs = load_task_costs(path)
    tasks = paper_graph(Context(get_profile(costs.profile), 0, torch.device("cpu")), results=None)
    return tasks, task_seconds(tasks, costs.seconds)


def projected_wall_times(path: Path = PAPER_TASK_COSTS, workers: Sequence[int] = (2, 16, 64)) -> pd.DataFrame:
    """:func:`projection_table` of the whole graph of the profile the costs were measured at."""
    return projection_table(*_measured_graph(path), workers)


#: The chapter that shows each stage's results: its share of the paper graph's work is that chapter's time at paper.
STAGE_CHAPTERS = {"data": "chapters/ch01_signals", "train": "chapters/ch03_training",
                  "noise": "chapters/ch04_noise_robustness", "attack": "chapters/ch05_adversarial",
                  "attribution": "chapters/ch06_attributions", "abc": "chapters/ch07_abc",
                  "data_size": "chapters/ch08_open_questions", "frontier": "chapters/ch08_open_questions"}


def recorded_chapter_times(profile: str = "quick", root: Path = RESULTS_ROOT) -> dict[str, Any] | None:
    """The chapter times of a whole build at ``profile`` kept from a clean commit (``results/<profile>/build/``)."""
    path = root / profile / BUILD_COPY / CHAPTER_TIMES
    return json.loads(path.read_text()) if path.is_file() else None


def paper_work_by_chapter(path: Path = PAPER_TASK_COSTS) -> dict[str, float]:
    """Hours of one single-threaded worker that the paper graph spends for each chapter (its stages' tasks)."""
    tasks, seconds = _measured_graph(path)
    work: dict[str, float] = {}
    for task in tasks:
        chapter = STAGE_CHAPTERS[task.stage]
        work[chapter] = work.get(chapter, 0.0) + seconds[task.name] / HOUR
    return work


def chapter_time_table(root: Path = RESULTS_ROOT, costs: Path = PAPER_TASK_COSTS) -> pd.DataFrame:
    """Per chapter (and for the precomputation and the whole build): its wall time in the recorded ``quick`` build
    and the paper graph's work for it, in hours of one single-threaded worker."""
    quick = recorded_chapter_times("quick", root) or {"seconds": {}}
    work = paper_work_by_chapter(costs)
    entries = [entry for entry in (PRECOMPUTE_ENTRY, *toc_entries(), WHOLE_BUILD_ENTRY)
               if entry in quick["seconds"] or entry in work]
    work = {**work, PRECOMPUTE_ENTRY: float("nan"), WHOLE_BUILD_ENTRY: sum(work.values())}  # spread over chapters
    return pd.DataFrame({"quick: wall time (min)": [quick["seconds"].get(e, float("nan")) / 60 for e in entries],
                         "paper: precomputed work (CPU-h)": [work.get(e, 0.0) for e in entries]},
                        index=pd.Index([e.removeprefix("chapters/") for e in entries], name="chapter"))


def time_to_run(entry: str, root: Path = RESULTS_ROOT, costs: Path = PAPER_TASK_COSTS) -> str:
    """One sentence with a chapter's measured time at ``quick`` and its share of the paper graph's work."""
    quick = recorded_chapter_times("quick", root)
    parts = []
    if quick and entry in quick["seconds"]:
        parts.append(f"{quick['seconds'][entry] / 60:.1f} min at quick on {quick['cores']} CPU cores "
                     f"(measured at commit {quick['commit'][:7]}, {quick['date'][:10]})")
    else:
        parts.append("not yet measured at quick")
    work = paper_work_by_chapter(costs).get(entry)
    if work:
        parts.append(f"at paper, {work:.1f} hours of one CPU core for its precomputed work, which a cluster "
                     "divides among its workers (\"Running this book\")")
    return "; ".join(parts) + "."
