"""LevelGrid: the level grid under SeriesDetector's novelty."""

from __future__ import annotations

import math
import pickle

from agentwatch.detectors._series_grid import LevelGrid


def _grid(**kwargs: int) -> LevelGrid:
    args = {"levels": 10, "freeze_n": 11, "max_levels": 64, "max_span_levels": 48, "max_steps": 16}
    args.update(kwargs)
    return LevelGrid(**args)


def test_nothing_is_counted_before_the_freeze() -> None:
    grid = _grid()
    for v in range(10):
        grid.learn(float(v))
    assert not grid.frozen
    assert grid.count(3.0) == 0
    assert grid.new_step_nats(3.0) == 0.0


def test_the_freeze_files_the_values_seen_so_far() -> None:
    grid = _grid()
    for v in range(11):  # 0..10 across 10 levels of width 1
        grid.learn(float(v))
    assert grid.frozen
    assert [grid.count(v + 0.5) for v in range(11)] == [1] * 11
    assert grid.count(-0.5) == 0 and grid.count(11.5) == 0


def test_a_new_level_is_less_news_the_more_often_one_was_found() -> None:
    steady, drifting = _grid(), _grid(max_span_levels=10**9)
    for k in range(1000):
        steady.learn(float(k % 11))
        drifting.learn(float(k % 11) + k / 10)
    assert steady.new_level_nats() > math.log(500)
    assert drifting.new_level_nats() < math.log(20)


def test_coarsening_merges_neighbours_and_keeps_every_count() -> None:
    grid = _grid(max_span_levels=16)
    for v in range(11):
        grid.learn(float(v))
    grid.learn(40.0)  # spans 41 levels: the width doubles twice, to 4
    assert sum(grid.count(4.0 * k + 1.0) for k in range(11)) == 12
    assert grid.count(1.0) == 4  # 0, 1, 2, 3
    assert grid.count(41.0) == 1


def test_a_step_never_taken_is_news_once() -> None:
    grid = _grid()
    for k in range(500):
        grid.learn(float(k % 2))  # 0, 1, 0, 1, ...: the levels 0 and 10 alternate
    assert grid.new_step_nats(0.0) == 0.0  # the last value was 1: 1 -> 0 is known
    assert grid.new_step_nats(1.0) > math.log(100)  # 1 -> 1 was never taken
    grid.learn(1.0)
    assert grid.new_step_nats(1.0) == 0.0


def test_levels_and_steps_stay_bounded() -> None:
    grid = _grid(max_levels=8, max_steps=8, max_span_levels=10**9)
    for k in range(5000):
        grid.learn(float(k))
    assert len(pickle.dumps(grid)) < 1024


def test_pickle_round_trip() -> None:
    grid = _grid()
    for k in range(300):
        grid.learn(math.sin(k / 7) * 10)
    restored = pickle.loads(pickle.dumps(grid))
    for v in (-20.0, 0.3, 9.9, 25.0):
        assert restored.count(v) == grid.count(v)
        assert restored.new_step_nats(v) == grid.new_step_nats(v)
    assert restored.new_level_nats() == grid.new_level_nats()
