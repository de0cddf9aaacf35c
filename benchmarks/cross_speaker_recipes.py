"""Which ingredients let a hand-built LSTM generalize to a voice it never heard? (issue 17)

An ablation ladder, measured on the protocol of chapter 10 and of ``speaker_baselines.py``: train
on one actress (``emoser.prep.speaker_indices(data, train, test, val_size=0.2, seed=seed)``:
held-out words of the training voice for model selection), test once on every recording of the
other, for seeds 0-4, both directions and two tasks (happy vs sad; angry, happy, neutral, sad).
Every rung keeps the previous ones and adds one ingredient:

1. ``lstm_last``: log-mel frames (40 bands, 50 Hz - 8 kHz, 1024-sample windows, hop 256 ≈ 10 ms),
   standardized per speaker and band (each voice by its own statistics: the training voice's from
   its training and validation recordings, the test voice's from its unlabelled test recordings),
   two hand-built LSTM layers (:class:`emoser.nn.kernels.FastLstmLayer`: the course's cell, fast
   path), hidden size 64, the last valid state, ReLU, a linear layer: AudioNet with a standard
   time-frequency front-end instead of the learned one;
2. ``stats_pool``: the classifier sees the last state, the mean and the standard deviation of the
   second layer's states over the valid frames;
3. ``augment``: every training example's mel axis stretched by a random factor in [0.85, 1.15]
   (a cheap stand-in for vocal-tract-length perturbation: one voice becomes many) and one random
   band of up to 8 mel bands and one of up to 20 frames set to zero (SpecAugment);
4. ``regularize``: hidden size 32, dropout 0.5 on the first layer's states and the pooled vector,
   weight decay 1e-3;
5. ``input_stats``: the classifier also sees the mean and standard deviation of the normalized
   log-mel bands over the recording (the MFCC baseline's kind of features);
6. ``branch_drop``: for half of the training examples (drawn per example and batch) the LSTM's
   pooled vector is zeroed, so the input statistics must carry the decision on their own too.

Training: Adam (AMSGrad), learning rate 1e-3 with a cosine schedule, 12 epochs, batches of 10,
gradient norm clipped at 1, forget-gate bias 1 (the course's recipe otherwise); the epoch is
selected on the training voice's held-out words (accuracy, ties: loss). The test voice is never
looked at before the final test.

Writes ``emoser/course/results/cross-speaker-recipes.json`` (shipped with the package: chapter 10
reads it through :mod:`emoser.course.ladder`) after every rung (accuracy of every seed,
mean, sample std, min, pooled confusion matrix, seconds per seed; machine) and prints a table. A
rung already in the file with the same settings is skipped, so the ladder can be run in parts
(``--rungs``) and resumed.

    python benchmarks/cross_speaker_recipes.py                          # everything, seeds 0-4
    python benchmarks/cross_speaker_recipes.py --rungs lstm_last,stats_pool --seeds 0-1

Needs TESS (``EMOSER_TESS_DIR``); on the stand-in corpus it refuses to run (exit code 2).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parse_seeds  # noqa: E402
from emoser.common import format_table  # noqa: E402
from emoser.data import load_tess  # noqa: E402
from emoser.nn.kernels.layer import FastLstmLayer  # noqa: E402
from emoser.prep import record_field, speaker_indices  # noqa: E402
from emoser.training.recipe import init_forget_bias  # noqa: E402

TASKS = {"happy_sad": ("happy", "sad"), "four_emotions": ("angry", "happy", "neutral", "sad")}
DIRECTIONS = (("YAF", "OAF"), ("OAF", "YAF"))
OUT = (Path(__file__).resolve().parents[1] / "emoser" / "course" / "results"
       / "cross-speaker-recipes.json")
MEL = {"n_mels": 40, "n_fft": 1024, "hop_length": 256, "fmin": 50.0, "fmax": 8000.0}
TRAIN = {"epochs": 12, "lr": 1e-3, "batch_size": 10, "clip_grad_norm": 1.0, "amsgrad": True,
         "schedule": "cosine", "forget_bias": 1.0, "val_size": 0.2}

BASE = {"pool": "last", "hidden": 64, "warp": 0.0, "freq_mask": 0, "time_mask": 0,
        "dropout": 0.0, "weight_decay": 0.0, "input_stats": False, "branch_drop": 0.0}
LADDER = [
    ("lstm_last", "log-mel per speaker, 2 hand-built LSTM layers, last state", {}),
    ("stats_pool", "+ statistics pooling (last, mean, std)", {"pool": "stats"}),
    ("augment", "+ mel-axis warp ±15 %, SpecAugment masks",
     {"warp": 0.15, "freq_mask": 8, "time_mask": 20}),
    ("regularize", "+ hidden 32, dropout 0.5, weight decay 1e-3",
     {"hidden": 32, "dropout": 0.5, "weight_decay": 1e-3}),
    ("input_stats", "+ input statistics beside the LSTM", {"input_stats": True}),
    ("branch_drop", "+ LSTM branch dropped for half the examples", {"branch_drop": 0.5}),
]


def rung_settings(name: str) -> dict:
    """The full settings of rung ``name``: the base, updated by every rung up to it."""
    settings = dict(BASE)
    for rung, _, change in LADDER:
        settings.update(change)
        if rung == name:
            return settings
    raise SystemExit(f"unknown rung {name!r}; known: {', '.join(r for r, _, _ in LADDER)}")


def log_mels(waves, rate: int) -> list[np.ndarray]:
    """Log-mel frames (``T × n_mels``, float32) of every waveform."""
    import librosa

    out = []
    for w in waves:
        s = librosa.feature.melspectrogram(y=np.asarray(w, dtype=np.float32), sr=rate, **MEL)
        out.append(np.log(s + 1e-6).T.astype(np.float32))
    return out


def per_speaker_cmvn(mels, speakers, groups) -> dict[int, np.ndarray]:
    """Each index of each group standardized per band by its speaker's frames within the group."""
    out = {}
    for rows in groups:
        for s in np.unique(speakers[rows]):
            own = rows[speakers[rows] == s]
            frames = np.concatenate([mels[i] for i in own])
            mean, std = frames.mean(0), frames.std(0) + 1e-5
            for i in own:
                out[int(i)] = (mels[i] - mean) / std
    return out


def mean_std(seq, lengths):
    """Mean and standard deviation over the steps of a zero-padded ``N × T × C`` batch, per
    sequence over its ``lengths`` valid steps (padded steps must be zero)."""
    n = lengths.view(-1, 1).to(seq.dtype)
    mean = seq.sum(1) / n
    return mean, ((seq ** 2).sum(1) / n - mean ** 2).clamp_min(1e-6).sqrt()


class MelLstm(nn.Module):
    """Two hand-built LSTM layers over log-mel frames, a pooled read-out, a linear layer."""

    def __init__(self, n_in: int, n_classes: int, s: dict):
        super().__init__()
        self.s = s
        self.lstm1 = FastLstmLayer(n_in, s["hidden"])
        self.lstm2 = FastLstmLayer(s["hidden"], s["hidden"])
        self.drop = nn.Dropout(s["dropout"])
        width = s["hidden"] * (3 if s["pool"] == "stats" else 1)
        self.fc = nn.Linear(width + (2 * n_in if s["input_stats"] else 0), n_classes)

    def forward(self, x, lengths):
        h, _ = self.lstm1(x, lengths)
        h = self.drop(h)
        if self.s["pool"] == "last":
            z, _ = self.lstm2(h, lengths, last_only=True)
        else:  # the layer's outputs are zero at padded steps
            h2, _ = self.lstm2(h, lengths)
            mean, std = mean_std(h2, lengths)
            last = h2.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, h2.shape[2])).squeeze(1)
            z = torch.cat([last, mean, std], 1)
        z = self.drop(F.relu(z))
        if self.training and self.s["branch_drop"]:
            z = z * (torch.rand(z.shape[0], 1) >= self.s["branch_drop"]).to(z.dtype)
        if self.s["input_stats"]:  # over the valid frames only, whatever the padding holds
            valid = torch.arange(x.shape[1]).view(1, -1, 1) < lengths.view(-1, 1, 1)
            z = torch.cat([z, *mean_std(torch.where(valid, x, 0.0), lengths)], 1)
        return self.fc(z)


def augmented(m: np.ndarray, s: dict, rng) -> np.ndarray:
    """One random mel-axis warp and SpecAugment masks of ``m`` (``T × bands``)."""
    if s["warp"]:
        a = rng.uniform(1 - s["warp"], 1 + s["warp"])
        bands = m.shape[1]
        src = np.clip(np.arange(bands) / a, 0, bands - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, bands - 1)
        frac = src - lo
        m = m[:, lo] * (1 - frac) + m[:, hi] * frac
    if s["freq_mask"] or s["time_mask"]:
        m = m.copy()
        if s["freq_mask"]:
            f0 = rng.integers(0, m.shape[1] - s["freq_mask"])
            m[:, f0:f0 + rng.integers(0, s["freq_mask"] + 1)] = 0
        if s["time_mask"]:
            t0 = rng.integers(0, max(1, m.shape[0] - s["time_mask"]))
            m[t0:t0 + rng.integers(0, s["time_mask"] + 1)] = 0
    return m


def batch(feats, labels, idx, s=None, rng=None):
    seqs = [feats[int(i)] if rng is None else augmented(feats[int(i)], s, rng) for i in idx]
    lengths = torch.tensor([q.shape[0] for q in seqs])
    x = torch.zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for k, q in enumerate(seqs):
        x[k, :q.shape[0]] = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32))
    return x, lengths, torch.from_numpy(labels[idx])


def evaluate(model, feats, labels, idx):
    model.eval()
    logits = []
    with torch.no_grad():
        for k in range(0, len(idx), 50):
            x, lengths, _ = batch(feats, labels, idx[k:k + 50])
            logits.append(model(x, lengths))
    model.train()
    logits = torch.cat(logits)
    y = torch.from_numpy(labels[idx])
    return (float((logits.argmax(1) == y).float().mean()), float(F.cross_entropy(logits, y)),
            torch.softmax(logits, 1).numpy())


def train_one(mels, labels, speakers, data, a, b, seed, s, n_classes):
    """Train on speaker ``a``, select on its held-out words, test on ``b``: the test accuracy,
    the test labels and class probabilities, the selected epoch and its validation accuracy."""
    tr, va, te = speaker_indices(data, a, b, val_size=TRAIN["val_size"], seed=seed)
    feats = per_speaker_cmvn(mels, speakers, [np.concatenate([tr, va]), te])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MelLstm(MEL["n_mels"], n_classes, s)
    init_forget_bias(model, TRAIN["forget_bias"])
    opt = torch.optim.Adam(model.parameters(), lr=TRAIN["lr"], amsgrad=TRAIN["amsgrad"],
                           weight_decay=s["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=TRAIN["epochs"])
    best = None
    for epoch in range(1, TRAIN["epochs"] + 1):
        order = rng.permutation(tr)
        for k in range(0, len(order), TRAIN["batch_size"]):
            x, lengths, y = batch(feats, labels, order[k:k + TRAIN["batch_size"]], s, rng)
            loss = F.cross_entropy(model(x, lengths), y)
            if not torch.isfinite(loss):
                raise SystemExit(f"training diverged (loss {loss.item()}) in epoch {epoch}")
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), TRAIN["clip_grad_norm"])
            opt.step()
        sched.step()
        val_acc, val_loss, _ = evaluate(model, feats, labels, va)
        if best is None or (val_acc, -val_loss) > (best[0], -best[1]):
            best = (val_acc, val_loss, epoch,
                    {k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[3])
    acc, _, prob = evaluate(model, feats, labels, te)
    return acc, labels[te], prob, best[2], best[0]


def confusion_of(truth, pred, n_classes: int) -> np.ndarray:
    """Counts: rows true class, columns predicted."""
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (truth, pred), 1)
    return confusion


def ensemble_of(probs, truth, n_classes) -> dict:
    """The seeds as one ensemble: the class probabilities of all seeds averaged per recording
    (the test set, every recording of the other voice, is the same for every seed)."""
    pred = np.mean(probs, axis=0).argmax(1)
    return {"accuracy": float(np.mean(pred == truth)),
            "confusion": confusion_of(truth, pred, n_classes).tolist()}


def machine() -> dict:
    return {"platform": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def write_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2")
    parser.add_argument("--rungs", default=",".join(r for r, _, _ in LADDER))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    rungs = args.rungs.split(",")
    for r in rungs:
        rung_settings(r)  # unknown names fail here, before any work
    torch.set_num_threads(1)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results.update({"machine": machine(), "mel": MEL, "train": TRAIN, "seeds": seeds,
                    "ladder": [{"rung": r, "adds": what, "settings": rung_settings(r)}
                               for r, what, _ in LADDER],
                    "split": "emoser.prep.speaker_indices(data, train, test, val_size=0.2, "
                             "seed=seed); test = every recording of the other speaker"})
    results.setdefault("rungs", {})
    for task, emotions in TASKS.items():
        data = load_tess(emotions=emotions, speakers=("YAF", "OAF"))
        if data.is_standin:
            print("error: cross_speaker_recipes.py needs TESS (set EMOSER_TESS_DIR); "
                  "the stand-in corpus has no second real voice", file=sys.stderr)
            return 2
        labels = np.asarray(data.labels, dtype=np.int64)
        speakers = record_field(data, "speaker")
        t0 = time.perf_counter()
        mels = log_mels(data.waves, data.rate)
        print(f"{task}: log-mel features of {len(mels)} recordings in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        for rung in rungs:
            s = rung_settings(rung)
            done = results["rungs"].get(rung, {}).get(task)
            if done and done.get("settings") == s and done.get("seeds") == seeds:
                print(f"{rung} {task}: in {out.name} already", flush=True)
                continue
            cell = {"settings": s, "seeds": seeds, "classes": list(data.classes), "results": {}}
            for a, b in DIRECTIONS:
                accs, secs, epochs, vals, probs = [], [], [], [], []
                confusion = np.zeros((len(data.classes),) * 2, dtype=int)
                for seed in seeds:
                    t1 = time.perf_counter()
                    acc, truth, prob, epoch, val = train_one(mels, labels, speakers, data, a, b,
                                                             seed, s, len(data.classes))
                    probs.append(prob)
                    secs.append(time.perf_counter() - t1)
                    accs.append(acc)
                    epochs.append(epoch)
                    vals.append(val)
                    confusion += confusion_of(truth, prob.argmax(1), len(data.classes))
                    print(f"{rung} {task} {a}->{b} seed {seed}: {100 * acc:.2f} % "
                          f"(epoch {epoch}, val {100 * val:.1f} %, {secs[-1]:.0f} s)", flush=True)
                cell["results"][f"{a}->{b}"] = {
                    "accuracy": accs, "mean": float(np.mean(accs)),
                    "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                    "min": float(np.min(accs)), "selected_epoch": epochs, "val_acc": vals,
                    "confusion": confusion.tolist(), "seconds": secs,
                    "ensemble": ensemble_of(probs, truth, len(data.classes))}
            # re-read: another process may have written other rungs meanwhile (run in parts)
            latest = json.loads(out.read_text()) if out.exists() else {}
            latest.setdefault("rungs", {}).setdefault(rung, {})[task] = cell
            for key in ("machine", "mel", "train", "seeds", "ladder", "split"):
                latest[key] = results[key]
            latest["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            write_atomic(out, latest)
            results["rungs"] = latest["rungs"]
    rows = []
    for rung, what, _ in LADDER:
        for task in TASKS:
            cell = results["rungs"].get(rung, {}).get(task)
            if not cell:
                continue
            rows.append([rung, task] + [
                f"{100 * cell['results'][f'{a}->{b}']['mean']:.2f} ± "
                f"{100 * cell['results'][f'{a}->{b}']['std']:.2f} "
                f"(min {100 * cell['results'][f'{a}->{b}']['min']:.2f})" for a, b in DIRECTIONS])
    print(format_table(rows, ["rung", "task"] + [f"{a} -> {b}" for a, b in DIRECTIONS]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
