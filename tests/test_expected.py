"""The seed sweep the chapters check against: its file, its targets, and the thresholds."""
from __future__ import annotations

import pytest

import emoser
from emoser.course.sweep import SWEEP_FILE

TARGETS = {  # issue 19: no seed collapses, on any engine
    "ch7": {"seeds": 20, "min": 0.97, "mean": 0.995},
    # chapter 11 (seven emotions) does not meet its target yet (10 seeds >= 93 %): seed 2 of
    # the recipe with 12 epochs reached 82.4 % (neutral never predicted), seed 3 with 20 epochs
    # 70.2 % (neutral and sad merged, training accuracy stuck at 72 %); see issue 19.
}
#: Engines known to miss their task's target (issue 19 is open on them). Strict: when one meets
#: the target, the test below fails until it is taken off this list.
BELOW_TARGET = {
    # the hand-built engine chapters 6-7 train with: seed 3 ends at 92.50 % (the fast engine's
    # run of the same seed: 99.17 %), the recipe is not robust to rounding differences
    ("ch7", "taught"),
}


def _sweep_json():
    import json
    from importlib import resources

    path = resources.files("emoser.course").joinpath(SWEEP_FILE)
    return json.loads(path.read_text())


def test_expected_reads_a_known_sweep():
    data = {"ch7": {"engines": {"threads1": {"seeds": [
        {"seed": 0, "accuracy": 1.0, "test_loss": 0.01},
        {"seed": 1, "accuracy": 0.975, "test_loss": 0.05}]}}}}
    exp = emoser.course.expected("ch7", data=data, margin=0.02)
    assert exp.minimum == 0.975 and exp.mean == pytest.approx(0.9875)
    assert exp.floor == pytest.approx(0.955)
    assert exp.differences([0, 1, 7], [1.0, 0.95, 0.5]) == {0: 0.0, 1: pytest.approx(-0.025)}
    with pytest.raises(KeyError, match="no 'ch11'"):
        emoser.course.expected("ch11", data=data)


def test_the_sweep_holds_every_task_the_chapters_check():
    sweep = _sweep_json()
    for task in ("ch7", "ch11"):
        exp = emoser.course.expected(task, data=sweep)
        assert exp.accuracy and 0 < exp.minimum <= exp.mean <= 1


@pytest.mark.parametrize("task", sorted(TARGETS))
def test_the_committed_sweep_meets_the_recipe_targets_on_every_engine(task):
    sweep = _sweep_json()
    assert task in sweep, f"the sweep has no {task}: run benchmarks/seed_sweep.py"
    engines = sweep[task]["engines"]
    assert "threads1" in engines  # the course's engine
    for engine in engines:
        exp = emoser.course.expected(task, engine, data=sweep)
        target = TARGETS[task]
        meets = exp.minimum >= target["min"] and exp.mean >= target["mean"]
        if (task, engine) in BELOW_TARGET:
            assert not meets, f"{task} on {engine} now meets its target: take it off BELOW_TARGET"
            continue
        if engine != "threads2":  # 2 threads: 7 seeds so far (issue 19), the same runs as 1
            assert len(exp.accuracy) >= target["seeds"], (engine, sorted(exp.accuracy))
        assert exp.minimum >= target["min"], (engine, exp.accuracy)
        assert exp.mean >= target["mean"], (engine, exp.mean)
