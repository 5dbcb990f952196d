"""The projected wall time of a task graph: list scheduling in the graph's order, bounded by the critical path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nsdelib.book.context import setup
from nsdelib.book.precompute import Task, make_dataset, paper_graph
from nsdelib.book.projection import (
    PAPER_TASK_COSTS,
    TaskCosts,
    chapter_time_table,
    cost_key,
    critical_path,
    list_schedule,
    paper_work_by_chapter,
    load_task_costs,
    projected_wall_times,
    projection_table,
    task_seconds,
    time_to_run,
)
from nsdelib.book.runner import PRECOMPUTE_ENTRY, WHOLE_BUILD_ENTRY
from nsdelib.common import ConfigError


def graph() -> list[Task]:
    """a → b (long) and a → c, d (short); e after c."""
    return [Task("s", make_dataset, what="a"), Task("s", make_dataset, what="b", after=("s a",)),
            Task("s", make_dataset, what="c", after=("s a",)), Task("s", make_dataset, what="d", after=("s a",)),
            Task("s", make_dataset, what="e", after=("s c",))]


SECONDS = {"s a": 1.0, "s b": 10.0, "s c": 2.0, "s d": 3.0, "s e": 4.0}


def test_the_critical_path_is_the_longest_chain() -> None:
    assert critical_path(graph(), SECONDS) == 11.0  # a, b


@pytest.mark.parametrize(("workers", "wall"), [(1, 20.0), (2, 11.0), (3, 11.0), (64, 11.0)])
def test_workers_start_the_first_ready_task_of_the_graph(workers: int, wall: float) -> None:
    # two workers: b on one from 1 to 11; c (1-3), d (3-6), e (6-10) on the other
    assert list_schedule(graph(), SECONDS, workers) == wall


def test_the_order_of_the_graph_decides_which_ready_task_starts() -> None:
    tasks = graph()
    reordered = [tasks[0], tasks[2], tasks[3], tasks[4], tasks[1]]  # b last: it starts only after c and d
    assert list_schedule(reordered, SECONDS, 2) == 14.0  # c, d from 1; e after c (3-7); b after d (4-14)


def test_a_kind_of_task_without_a_cost_is_named() -> None:
    with pytest.raises(ConfigError, match=r"no measured cost for 's c', 's e'"):
        task_seconds(graph(), {key: value for key, value in SECONDS.items() if key not in ("s c", "s e")})


def test_the_table_lies_between_its_bounds() -> None:
    table = projection_table(graph(), SECONDS, (1, 2))
    assert table["projected wall time (h)"].tolist() == [20 / 3600, 11 / 3600]
    assert table["work / workers (h)"].tolist() == [20 / 3600, 10 / 3600]
    assert table["workers busy"].tolist() == [1.0, 20 / 22]


def test_the_committed_costs_cover_every_task_of_the_paper_graph() -> None:
    costs = load_task_costs()
    assert costs.profile == "paper" and set(costs.sources) == set(costs.seconds)
    tasks = paper_graph(setup("paper", 0, "cpu"), results=None)  # the whole graph, whatever is recorded
    assert {cost_key(task) for task in tasks} == set(costs.seconds)
    assert all(costs.sources[key] for key in costs.seconds) and min(costs.seconds.values()) > 0
    table = projected_wall_times(PAPER_TASK_COSTS, (2, 16, 64))
    walls = table["projected wall time (h)"]
    assert walls.is_monotonic_decreasing
    assert (walls >= table["critical path (h)"] - 1e-9).all() and (walls >= table["work / workers (h)"] - 1e-9).all()


def test_costs_are_written_and_read_back(tmp_path: Path) -> None:
    costs = TaskCosts("ci", {"data set": 1.24}, {"data set": "measured"}, {"produced by": "a test"})
    (tmp_path / "costs.json").write_text(json.dumps(costs.to_json()))
    assert load_task_costs(tmp_path / "costs.json") == TaskCosts("ci", {"data set": 1.2}, {"data set": "measured"},
                                                                 {"produced by": "a test"})


def test_the_chapters_share_out_the_whole_paper_graph() -> None:
    work = paper_work_by_chapter()
    costs = load_task_costs()
    tasks = paper_graph(setup("paper", 0, "cpu"), results=None)  # the whole graph, whatever is recorded
    assert sum(work.values()) == pytest.approx(sum(task_seconds(tasks, costs.seconds).values()) / 3600)
    assert work["chapters/ch05_adversarial"] > work["chapters/ch04_noise_robustness"] > 0


def test_a_chapter_states_its_measured_quick_time_or_that_it_has_none(tmp_path: Path) -> None:
    assert time_to_run("chapters/ch04_noise_robustness", root=tmp_path).startswith("not yet measured at quick; at")
    (tmp_path / "quick" / "build").mkdir(parents=True)
    (tmp_path / "quick" / "build" / "chapter_times.json").write_text(json.dumps(
        {"profile": "quick", "cores": 2, "commit": "abcdef123", "date": "2026-12-05T04:00:00+00:00",
         "seconds": {"chapters/ch04_noise_robustness": 90.0, "chapters/ch02_nsde_theory": 30.0,
                     PRECOMPUTE_ENTRY: 300.0, WHOLE_BUILD_ENTRY: 480.0}}))
    sentence = time_to_run("chapters/ch04_noise_robustness", root=tmp_path)
    assert sentence.startswith("1.5 min at quick on 2 CPU cores (measured at commit abcdef1, 2026-12-05); at paper")
    table = chapter_time_table(root=tmp_path)
    assert table.loc["ch02_nsde_theory", "quick: wall time (min)"] == 0.5
    assert table.loc["ch02_nsde_theory", "paper: precomputed work (CPU-h)"] == 0
    assert table.index[0] == PRECOMPUTE_ENTRY and table.iloc[0, 0] == 5.0, "the build's models come first"
    assert table.index[-1] == WHOLE_BUILD_ENTRY and table.iloc[-1, 0] == 8.0, "the whole build's time comes last"
    work = table["paper: precomputed work (CPU-h)"]
    assert work.iloc[-1] == pytest.approx(work.iloc[1:-1].sum()), "the whole build's work is its chapters' together"
