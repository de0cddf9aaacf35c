"""Shared or separate convolutions? The measurement behind chapter 5's exercise 3.

Trains AudioNet with ``convOutNum=32`` and ``sharedConv=True`` (blocks 2 and 3 share one
convolution, as in the original exercise) and ``sharedConv=False`` (each block its own) with the
protocol of chapter 7 (YAF happy vs sad, a 70/30 stratified split per seed, :data:`RECIPE`,
float32, 1 CPU thread, the course's engine) for the same seeds, and writes
``emoser/course/results/sharing-sweep.json`` (shipped with the package): per variant the test
accuracy and loss of every seed and the parameter count. Chapter 5 quotes it through
:func:`emoser.course.exercises.sharing_results`; it does not train (minutes per seed).

    python benchmarks/sharing_sweep.py               # seeds 0-9, about 15 min on one CPU thread
    python benchmarks/sharing_sweep.py --seeds 0-1   # a quick look

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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parse_seeds  # noqa: E402
from emoser.data import load_tess  # noqa: E402
from emoser.experiments import run_protocol  # noqa: E402
from emoser.nn import AudioNet  # noqa: E402
from emoser.training import RECIPE  # noqa: E402

VARIANTS = {"shared": {"convOutNum": 32, "sharedConv": True},
            "unshared": {"convOutNum": 32, "sharedConv": False}}
OUT = Path(__file__).resolve().parents[1] / "emoser" / "course" / "results" / "sharing-sweep.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-9", help="e.g. 0-9 (default) or 0,3,7")
    p.add_argument("--out", default=str(OUT), help="JSON file to write (default: the package's)")
    args = p.parse_args(argv)
    data = load_tess(emotions=("happy", "sad"), speakers=("YAF",))
    if data.is_standin:
        raise SystemExit("sharing_sweep needs TESS (set EMOSER_TESS_DIR): the stand-in corpus "
                         "says nothing about the architecture")
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "torch": torch.__version__,
                          "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
              "recipe": RECIPE.as_dict(), "emotions": ["happy", "sad"], "threads": 1,
              "variants": {}}
    for name, kwargs in VARIANTS.items():
        rows = []
        for seed in parse_seeds(args.seeds):
            start = time.perf_counter()
            run = run_protocol(data, seed, recipe=RECIPE, model_kwargs=kwargs, device="cpu",
                               threads=1)
            rows.append({"seed": seed, "accuracy": float(run.evaluation.accuracy),
                         "test_loss": float(run.evaluation.loss),
                         "seconds": time.perf_counter() - start})
            print(f"{name:8} seed {seed}: {100 * run.evaluation.accuracy:6.2f}% "
                  f"(loss {run.evaluation.loss:.4f}, {rows[-1]['seconds']:.0f} s)", flush=True)
        params = sum(q.numel() for q in AudioNet(**kwargs).parameters())
        result["variants"][name] = {"model_kwargs": kwargs, "parameters": params, "seeds": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
