"""The seed sweep the chapters check against: its file, its targets, and the thresholds."""
from __future__ import annotations

import pytest

import emoser
from emoser.course.sweep import SWEEP_FILE

TARGETS = {  # issue 19: no seed collapses, on any engine
    "ch7": {"seeds": 20, "min": 0.97, "mean": 0.995},
    "ch11": {"seeds": 10, "min": 0.93, "mean": 0.93},  # issue 19 asks only for the minimum
}
#: Engines known to miss their task's target. Strict: when one meets the target, the test below
#: fails until it is taken off this list. Empty since the recipe uses AMSGrad (issue 19); with
#: plain Adam the sweep kept in the file shows what missed (see test_plain_adam_collapsed).
BELOW_TARGET: set[tuple[str, str]] = set()


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
        assert len(exp.accuracy) >= target["seeds"], (engine, sorted(exp.accuracy))
        assert exp.minimum >= target["min"], (engine, exp.accuracy)
        assert exp.mean >= target["mean"], (engine, exp.mean)


def test_the_sweep_was_trained_with_the_course_recipe():
    """A sweep of another recipe says nothing about this one: the file must follow RECIPE."""
    sweep = _sweep_json()
    assert sweep["ch7"]["recipe"] == emoser.training.RECIPE.as_dict()
    assert sweep["ch11"]["recipe"] == emoser.training.SEVEN_RECIPE.as_dict()


def test_plain_adam_collapsed():
    """The measurement that changed the recipe stays in the file, with what it showed."""
    sweep = _sweep_json()
    before = emoser.course.expected("ch11-adam", data=sweep)
    assert before.recipe["amsgrad"] is False and before.minimum < 0.6
    taught = emoser.course.expected("ch7-adam", "taught", data=sweep)
    assert taught.minimum < TARGETS["ch7"]["min"]
