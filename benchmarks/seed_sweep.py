"""Seed sweep: does any seed of the course's recipe collapse, on any engine?

Runs the protocol of chapter 7 (YAF happy vs sad, 70/30 stratified split, :data:`RECIPE`) and
of chapter 11 (YAF's seven emotions, :data:`SEVEN_RECIPE`) for many seeds, on several
engines. The ``-adam`` tasks keep the measurement that changed the recipe (issue 19): the same
protocols with plain Adam instead of AMSGrad (``ch7-adam``; ``ch11-adam``: 12 epochs;
``ch11-adam-e20``: 20; ``ch11-adam-lr3e-3``: 12 epochs at a peak rate of 3e-3, a candidate cure
that failed). Engines:

``threads1``   the course's engine: fused C kernels, 1 CPU thread (what CI and the book use);
``threads2``   the same with 2 threads (matrix products sum in another order);
``no-native``  1 thread, fused kernels off (the PyTorch code of the same function);
``taught``     1 thread, ``AudioNet(engine="taught")``: the hand-built cell and layer of
               chapters 3-5 (the same function, its sums in another order), as chapters 6-7 train.

It writes one JSON file (by default ``emoser/course/results/seed-sweep.json``, shipped with the
package): per task and engine the accuracy, test loss and per-class recall of every seed, and
min / mean / max over seeds. The chapters take their assertion thresholds from this file
(:func:`emoser.course.expected`: the observed minimum less a stated margin), so a threshold is
a measurement, not a guess. Results are written after every seed: an interrupted sweep keeps
what it measured, and a later call adds to the file.

    python benchmarks/seed_sweep.py
    python benchmarks/seed_sweep.py --tasks ch7 --engines threads2 --seeds 0-4   # a quick look

Needs TESS (``EMOSER_TESS_DIR``); on the stand-in corpus it refuses to run.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parse_seeds  # noqa: E402
from emoser.data import load_tess  # noqa: E402
from emoser.experiments import run_protocol  # noqa: E402
from emoser.nn.kernels import native  # noqa: E402
from emoser.training import RECIPE, SEVEN_RECIPE  # noqa: E402

SEVEN = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
#: the course's recipe (AMSGrad) and, to keep the measurement that led to it, plain Adam
ADAM = RECIPE.replace(amsgrad=False)
TASKS = {
    "ch7": {"emotions": ("happy", "sad"), "recipe": RECIPE, "seeds": "0-19"},
    "ch11": {"emotions": SEVEN, "recipe": SEVEN_RECIPE, "seeds": "0-9"},
    # before (issue 19): plain Adam let seeds collapse
    "ch7-adam": {"emotions": ("happy", "sad"), "recipe": ADAM, "seeds": "0-19"},
    "ch11-adam": {"emotions": SEVEN, "recipe": ADAM.replace(epochs=12), "seeds": "0-9"},
    "ch11-adam-e20": {"emotions": SEVEN, "recipe": ADAM.replace(epochs=20), "seeds": "0-9"},
    # a candidate cure that failed: a 3x higher peak rate rescues seeds 2 and 3 but seed 4 never
    # leaves chance (14.3 %, every output the same) and seed 1 learns late (93.3 %)
    "ch11-adam-lr3e-3": {"emotions": SEVEN, "recipe": ADAM.replace(epochs=12, lr=3e-3),
                         "seeds": "0-9"},
}
ENGINES = {"threads1": (1, True), "threads2": (2, True), "no-native": (1, False)}
#: engines that build the model differently: AudioNet(engine="taught"), the hand-built loop
MODEL_ENGINES = {"taught": {"engine": "taught"}}


def summary(rows: list[dict]) -> dict:
    acc = np.array([r["accuracy"] for r in rows])
    return {"n": len(rows), "min": float(acc.min()), "mean": float(acc.mean()),
            "max": float(acc.max()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "worst_seed": int(rows[int(acc.argmin())]["seed"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="ch7,ch11")
    p.add_argument("--engines", default="threads1,threads2,no-native")
    p.add_argument("--seeds", default=None, help="e.g. 0-19 (default: per task, 20 and 10)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "emoser" / "course"
                                        / "results" / "seed-sweep.json"),
                   help="JSON file to write (and to extend); default: the package's copy")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else None
    result = json.loads(out.read_text()) if out and out.is_file() else {}
    result["machine"] = {"platform": platform.platform(), "processor": platform.processor(),
                         "cpus": os.cpu_count(), "torch": torch.__version__,
                         "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    unknown = [e for e in args.engines.split(",") if e not in {**ENGINES, **MODEL_ENGINES}]
    if unknown or any(t not in TASKS for t in args.tasks.split(",")):
        raise SystemExit(f"seed_sweep: unknown engine or task in --engines {args.engines} "
                         f"--tasks {args.tasks}; engines: {sorted({**ENGINES, **MODEL_ENGINES})}, "
                         f"tasks: {sorted(TASKS)}")
    for task in args.tasks.split(","):
        spec = TASKS[task]
        data = load_tess(emotions=spec["emotions"], speakers=("YAF",))
        if data.is_standin:
            raise SystemExit("seed_sweep needs TESS (set EMOSER_TESS_DIR): the stand-in corpus "
                             "says nothing about a recipe")
        seeds = parse_seeds(args.seeds or spec["seeds"])
        block = result.get(task)
        if block is None or block.get("recipe") != spec["recipe"].as_dict():
            if block is not None:  # measured with another recipe: those seeds say nothing
                print(f"{task}: the file's results used another recipe; starting afresh",
                      flush=True)
            block = result[task] = {"recipe": spec["recipe"].as_dict(),
                                    "emotions": list(spec["emotions"]), "engines": {}}
        for engine in args.engines.split(","):
            threads, kernels = ENGINES.get(engine, (1, True))
            model_kwargs = MODEL_ENGINES.get(engine)
            rows = {r["seed"]: r for r in block["engines"].get(engine, {}).get("seeds", [])}
            for seed in seeds:
                start = time.perf_counter()
                with native.override(kernels):
                    run = run_protocol(data, seed, recipe=spec["recipe"], device="cpu",
                                       threads=threads, model_kwargs=model_kwargs)
                ev = run.evaluation
                rows[seed] = {"seed": seed, "accuracy": float(ev.accuracy),
                              "test_loss": float(ev.loss),
                              "recall": [float(r) for r in ev.per_class_recall()],
                              "train_acc_per_epoch": [float(a) for a in run.history["train_acc"]],
                              "seconds": time.perf_counter() - start}
                print(f"{task} {engine} seed {seed}: {100 * ev.accuracy:.2f}% "
                      f"(loss {ev.loss:.4f}, {rows[seed]['seconds']:.0f} s)", flush=True)
                ordered = [rows[s] for s in sorted(rows)]
                block["engines"][engine] = {"threads": threads, "native": kernels,
                                            "seeds": ordered, "summary": summary(ordered)}
                if out:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(result, indent=1) + "\n")
    for task in args.tasks.split(","):
        for engine, block in result[task]["engines"].items():
            s = block["summary"]
            print(f"{task:5} {engine:10} n={s['n']:2}  min {100 * s['min']:6.2f}%  "
                  f"mean {100 * s['mean']:6.2f}%  max {100 * s['max']:6.2f}%  "
                  f"(worst seed {s['worst_seed']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
