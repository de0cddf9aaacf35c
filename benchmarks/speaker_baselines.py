"""The classic baselines across speakers: train on one actress, test on the other (issue 17).

For seeds 0-4, both directions (YAF -> OAF, OAF -> YAF), two tasks (happy vs sad; angry, happy,
neutral, sad) and both normalizations (``global``: the training rows' statistics for every
recording; ``per_speaker``: every speaker's features standardized with that speaker's own
statistics, as chapter 10 does with the network's waveforms), every baseline without a network
(:data:`emoser.experiments.baselines.CLASSIC_BASELINES`: median pitch with one threshold; 40 MFCCs
(mean, std) with logistic regression; median pitch and loudness with logistic regression) on the
splits of chapter 10: ``emoser.prep.speaker_indices(data, train, test, val_size=0.2, seed=seed)``,
the validation recordings left out of training (nothing is selected on them). It writes, per cell,
the test accuracy of every seed, their mean, sample standard deviation and minimum and the
per-class recall, to ``emoser/course/results/speaker-baselines.json`` (shipped with the package),
after every task, so an interrupted run keeps what it finished. No network is trained: the
features are computed once (under a minute on one CPU thread) and every split selects its rows.
For reference it also fits each cell once on *all* recordings of the training speaker (no words
held out, no seed involved; ``whole_speaker`` in the JSON): issue 17's four-emotion MFCC numbers
(77.1 %, 75.7 %) came from that protocol.

    python benchmarks/speaker_baselines.py                 # seeds 0-4, everything
    python benchmarks/speaker_baselines.py --seeds 0-1 --out /tmp/look.json    # a quick look

Needs TESS (``EMOSER_TESS_DIR``); on the stand-in corpus it refuses to run (exit code 2).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parse_seeds  # noqa: E402
from emoser.common import format_table  # noqa: E402
from emoser.data import load_tess  # noqa: E402
from emoser.experiments.baselines import (  # noqa: E402
    BASELINE_NORMALIZATIONS,
    BASELINES,
    CLASSIC_BASELINES,
    run_baselines,
    utterance_features,
)
from emoser.prep import record_field, speaker_indices, speaker_split  # noqa: E402

TASKS = {"happy_sad": ("happy", "sad"), "four_emotions": ("angry", "happy", "neutral", "sad")}
DIRECTIONS = (("YAF", "OAF"), ("OAF", "YAF"))
VAL_SIZE = 0.2
OUT = (Path(__file__).resolve().parents[1] / "emoser" / "course" / "results"
       / "speaker-baselines.json")


def features_of(data, every, every_features) -> dict[str, np.ndarray]:
    """The rows of ``every_features`` (computed on ``every``) for the recordings of ``data``."""
    row = {str(r.path): k for k, r in enumerate(every.records)}
    idx = np.array([row[str(r.path)] for r in data.records])
    return {key: value[idx] for key, value in every_features.items()}


def cell(spread, data) -> dict:
    """Accuracy per seed, mean, std, min and per-class recall of one baseline's runs."""
    labels = np.asarray(data.labels)
    accs = [float(r.accuracy) for r in spread.results]
    recall = {c: [] for c in data.classes}
    for r in spread.results:
        truth = labels[r.test_idx]
        for k, c in enumerate(data.classes):
            recall[c].append(float(np.mean(r.predictions[truth == k] == k)))
    return {"accuracy": accs, "mean": float(spread.mean), "std": float(spread.std),
            "min": float(min(accs)), "recall": recall,
            "recall_mean": {c: float(np.mean(v)) for c, v in recall.items()},
            "test_size": int(len(spread.results[0].test_idx))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-4", help="e.g. 0-4 (default) or 0,3")
    p.add_argument("--out", default=str(OUT), help="JSON file to write (default: the package's)")
    args = p.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    start = time.perf_counter()
    every = load_tess(emotions=TASKS["four_emotions"], speakers=("YAF", "OAF"))
    if every.is_standin:
        print("speaker_baselines needs TESS (set EMOSER_TESS_DIR): the stand-in corpus says "
              "nothing about the two actresses", file=sys.stderr)
        return 2
    print(every.summary(), flush=True)
    t0 = time.perf_counter()
    every_features = utterance_features(every)  # once: every split selects its rows
    feature_seconds = time.perf_counter() - t0
    print(f"features of {len(every)} recordings: {feature_seconds:.0f} s", flush=True)
    import librosa
    import sklearn
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "librosa": librosa.__version__, "scikit-learn": sklearn.__version__,
                    "threads": os.environ.get("OMP_NUM_THREADS")},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "split": {"function": "emoser.prep.speaker_indices",
                  "call": f"speaker_indices(data, train_speaker, test_speaker, "
                          f"val_size={VAL_SIZE}, seed=seed)",
                  "note": "training = its train_idx (the validation words left out, unused); "
                          "test = every recording of the other speaker"},
        "whole_speaker": "reference: trained once on every recording of the training speaker "
                         "(emoser.prep.speaker_split), tested on every recording of the other",
        "seeds": seeds,
        "baselines": {k: BASELINES[k] for k in CLASSIC_BASELINES},
        "normalizations": {"global": "the training rows' statistics for every recording "
                                     "(inside each classifier)",
                           "per_speaker": "each speaker's rows by its own mean and std: the "
                                          "training speaker's from its training rows, the "
                                          "test speaker's from its test rows (no labels)"},
        "feature_seconds": feature_seconds,
        "tasks": {},
    }
    out = Path(args.out)
    rows = []
    for task, emotions in TASKS.items():
        t_task = time.perf_counter()
        data = every if task == "four_emotions" else load_tess(emotions=emotions,
                                                                speakers=("YAF", "OAF"))
        feats = every_features if data is every else features_of(data, every, every_features)
        speakers = record_field(data, "speaker")
        counts = {s: {c: int(np.sum((speakers == s) & (data.labels == k)))
                      for k, c in enumerate(data.classes)} for s in ("YAF", "OAF")}
        entry = {"emotions": list(emotions), "classes": list(data.classes), "counts": counts,
                 "results": {}, "whole_speaker": {}}
        for a, b in DIRECTIONS:
            direction = f"{a}->{b}"
            entry["results"][direction] = {}
            for norm in BASELINE_NORMALIZATIONS:
                spreads = run_baselines(
                    data, seeds, which=CLASSIC_BASELINES, features=feats, normalization=norm,
                    indices=lambda s, a=a, b=b: speaker_indices(data, a, b, val_size=VAL_SIZE,
                                                                seed=s),
                    log=None)
                entry["results"][direction][norm] = {k: cell(v, data) for k, v in spreads.items()}
                whole = run_baselines(
                    data, [0], which=CLASSIC_BASELINES, features=feats, normalization=norm,
                    indices=lambda s, a=a, b=b: speaker_split(speakers, a, b), log=None)
                entry["whole_speaker"].setdefault(direction, {})[norm] = {
                    k: {"accuracy": float(v.mean), "recall": {c: r[0] for c, r in
                                                              cell(v, data)["recall"].items()}}
                    for k, v in whole.items()}
                for k, c in entry["results"][direction][norm].items():
                    rows.append([task, direction, norm, k,
                                 f"{100 * c['mean']:.2f} ± {100 * c['std']:.2f}",
                                 f"{100 * c['min']:.2f}"])
                    rows[-1].append(f"{100 * whole[k].mean:.2f}")
                    print("  ".join(rows[-1]), flush=True)
        entry["seconds"] = time.perf_counter() - t_task
        result["tasks"][task] = entry
        result["seconds"] = time.perf_counter() - start
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{task}: {entry['seconds']:.0f} s; wrote {out}", flush=True)
    print(format_table(rows, ["task", "direction", "normalization", "baseline",
                              "mean ± std (%)", "min (%)", "whole speaker (%)"],
                       align="llllrrr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
