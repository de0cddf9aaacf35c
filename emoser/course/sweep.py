"""What the course's runs are expected to give, measured: the seed sweep the chapters check.

``benchmarks/seed_sweep.py`` trains chapter 7's and chapter 11's protocols for many seeds on
several engines and writes ``emoser/course/results/seed-sweep.json`` (shipped with the
package, so a chapter opened in Colab finds it too). A chapter takes its assertion thresholds
from there -- the lowest accuracy any seed reached, less a stated margin -- instead of a
guessed number, and checks that its own seeds reproduce the sweep's results.

Chapter: chapters/07_evaluation.ipynb
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

__all__ = ["SWEEP_FILE", "Expected", "expected"]

#: The sweep's results inside the package.
SWEEP_FILE = "results/seed-sweep.json"


@dataclass(frozen=True)
class Expected:
    """The sweep's results for one task on one engine.

    Attributes:
        task (str): ``"ch7"`` or ``"ch11"`` (the course's recipe), or a plain-Adam task
            kept from before the recipe changed (``"ch7-adam"``, ``"ch11-adam"``, ...).
        engine (str): e.g. ``"threads1"`` (the course's engine).
        accuracy (dict[int, float]): test accuracy of every seed of the sweep.
        test_loss (dict[int, float]): test loss of every seed.
        margin (float): how far below the sweep's minimum a check may go.
        train_acc (dict[int, list[float]]): training accuracy per epoch, of every seed.
        recall (dict[int, list[float]]): test recall per class, of every seed.
        recipe (dict): the recipe the sweep trained with (:meth:`Recipe.as_dict`).
        classes (list[str]): the task's classes, in the order of ``recall``.

    Chapter: chapters/07_evaluation.ipynb
    """

    task: str
    engine: str
    accuracy: dict
    test_loss: dict
    margin: float
    train_acc: dict = field(default_factory=dict)
    recall: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)

    @property
    def minimum(self) -> float:
        """The lowest accuracy of any seed in the sweep.

        Chapter: chapters/07_evaluation.ipynb
        """
        return min(self.accuracy.values())

    @property
    def mean(self) -> float:
        """The mean accuracy over the sweep's seeds.

        Chapter: chapters/07_evaluation.ipynb
        """
        return sum(self.accuracy.values()) / len(self.accuracy)

    @property
    def floor(self) -> float:
        """The threshold a chapter asserts: the sweep's minimum less the margin.

        Chapter: chapters/07_evaluation.ipynb
        """
        return self.minimum - self.margin

    def differences(self, seeds, accuracies) -> dict:
        """``{seed: accuracy - the sweep's accuracy}`` for the seeds the sweep has.

        Chapter: chapters/07_evaluation.ipynb
        """
        return {int(s): float(a) - self.accuracy[int(s)]
                for s, a in zip(seeds, accuracies) if int(s) in self.accuracy}


@lru_cache(maxsize=1)
def _package_sweep() -> dict:
    """The package's sweep file, parsed once per process (it does not change while one runs)."""
    return json.loads(resources.files("emoser.course").joinpath(SWEEP_FILE).read_text())


def expected(task: str, engine: str = "threads1", margin: float = 0.02,
             data: dict | None = None) -> Expected:
    """The sweep's results for ``task`` on ``engine`` (read from the package's JSON file).

    Args:
        task (str): ``"ch7"`` (YAF happy vs sad), ``"ch11"`` (YAF's seven emotions, 16
            epochs), or the same protocols with plain Adam, before issue 19 changed the
            recipe: ``"ch7-adam"``, ``"ch11-adam"`` (12 epochs), ``"ch11-adam-e20"`` (20) and
            ``"ch11-adam-lr3e-3"`` (12 epochs, peak rate 3e-3).
        engine (str): ``"threads1"`` (the course's), ``"threads2"``, ``"no-native"`` or
            ``"taught"`` (the hand-built engine of chapters 6-7).
        margin (float): allowed distance below the sweep's minimum (default 0.02: two
            percentage points, a little more than two test recordings of chapter 7).
        data (dict | None): the parsed JSON (default: the package's file).

    Raises:
        KeyError: the sweep has no such task or engine.

    Chapter: chapters/07_evaluation.ipynb
    """
    if data is None:
        data = _package_sweep()
    if task not in data or engine not in data[task].get("engines", {}):
        have = {t: sorted(v.get("engines", {})) for t, v in data.items() if isinstance(v, dict)
                and "engines" in v}
        raise KeyError(f"the seed sweep has no {task!r} on {engine!r}; it has {have}")
    rows = data[task]["engines"][engine]["seeds"]
    return Expected(task=task, engine=engine,
                    accuracy={int(r["seed"]): float(r["accuracy"]) for r in rows},
                    test_loss={int(r["seed"]): float(r["test_loss"]) for r in rows},
                    margin=float(margin),
                    train_acc={int(r["seed"]): [float(a) for a in r.get("train_acc_per_epoch", [])]
                               for r in rows},
                    recall={int(r["seed"]): [float(a) for a in r.get("recall", [])] for r in rows},
                    recipe=dict(data[task].get("recipe", {})),
                    classes=list(data[task].get("emotions", [])))
