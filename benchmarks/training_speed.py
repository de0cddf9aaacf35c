"""Training speed: the original exercise's code against emoser's default path, on the same data.

Data: TESS, YAF happy vs sad, the 70 % training split of ``emoser.prep.stratified_split``
(seed 0; 279 clips), frames of 500 samples. Every variant runs in its own subprocess, one after
the other, so its peak resident memory (``ru_maxrss``) is its own.

Variants (``--variants``, comma-separated):
  original        emoser.original: float64, padded to the whole set's longest sequence, batch 10,
                  Adam lr 1e-4, fixed order, padded frames through CNN and LSTM; on a GPU with
                  the one change that lets it run there at all (the zero state made on the
                  input's device: OriginalLSTMLayer.state_on_input_device)
  default         emoser.nn.AudioNet (float32) trained by emoser.training.fit with its defaults
                  (valid frames only; the front-end as matrix products over the receptive field,
                  emoser.nn.kernels.frontend_gemm; the LSTM layers as one wavefront with
                  hand-written BPTT, emoser.nn.kernels.lstm_stack_last; on a CPU the LSTM steps,
                  block 1 and the pooling of blocks 2-3 as fused C kernels,
                  emoser.nn.kernels.native; no bucketing; batch 10, Adam lr 1e-3)
  float64-default the same in float64
  torch-lstm      AudioNet's CNN + torch.nn.LSTM (packed sequences) instead of the hand-built layers
  float64-torch-lstm  the same in float64
  previous-default  the default path before emoser.nn.kernels: nn.Conv1d modules with ReLU +
                  max pooling in one step (relu_max_pool2), LSTM fast path recorded step by
                  step by autograd
  modules-frontend  default, but the front-end through the nn.Conv1d modules (gemm_frontend=False)
  unfused-lstm    default, but the LSTM layers one after the other, every step recorded by autograd
  no-wavefront    default, but the LSTM layers one after the other (each fused)
  no-native       default, but without the fused C kernels of emoser.nn.kernels.native
                  (EMOSER_NATIVE=0): block 1 and the LSTM steps as PyTorch operations
  fast-math-native  default, but the fused C kernels built with the flags they had until issue 20
                  (-O3 -ffast-math -march=native; benchmark only: those flags turned NaN into
                  finite numbers and collapsed a training seed), for the speed comparison
  to-target       the course's recipe (emoser.training.RECIPE, chapters 6-7: forget-gate bias 1,
                  Adam with a cosine schedule over its epochs, clipping, no bucketing), tested on
                  the 30 % split after every epoch until --target accuracy (at most the recipe's
                  epochs)
  to-target-fit-defaults  the same with emoser.training.fit's defaults (constant lr 1e-3, no
                  forget-gate bias), at most --max-epochs
  (append "@bsN" to a variant for batch size N, e.g. default@bs32)

Usage:
  python benchmarks/training_speed.py                       # original, default, to-target
  python benchmarks/training_speed.py --variants default,fast --epochs 4
  python benchmarks/training_speed.py --profile             # where one default epoch goes
  python benchmarks/training_speed.py --out benchmarks/results/cpu-2core.json
  python benchmarks/training_speed.py --variants original,default --rounds 3
                                                            # medians of 3 alternating rounds

Chapter: chapters/08_speed.ipynb
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from emoser.experiments.original import OriginalAudioNet, original_prepare, original_train  # noqa: E402
from emoser.nn import AudioNet  # noqa: E402
from emoser.nn.kernels import engine as fast_engine  # noqa: E402
from emoser.nn.kernels import native  # noqa: E402
from emoser.prep import FrameDataset, Normalizer, collate_frames, stratified_split  # noqa: E402
from emoser.training import RECIPE, fit, fit_with_recipe, init_forget_bias, set_seed  # noqa: E402

FRAME = 500
BASE_VARIANTS = ("original", "default", "float64-default", "torch-lstm", "float64-torch-lstm",
                 "previous-default", "modules-frontend", "unfused-lstm", "no-wavefront",
                 "no-native", "to-target", "to-target-fit-defaults", "fast-math-native")


# ------------------------------------------------------------------------------------------
# Experimental variants (same function as AudioNet, faster arithmetic)
# ------------------------------------------------------------------------------------------
class TorchLstmAudioNet(AudioNet):
    """AudioNet's CNN front-end with ``torch.nn.LSTM`` (cuDNN on a GPU) in place of our layers."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.lstm = nn.ModuleList()
        self.rnn = nn.LSTM(self.feature_size, self.hiddenSize, num_layers=self.lstmLayerNum,
                           batch_first=True)

    def forward(self, x, lengths):
        n = x.shape[0]
        steps = int(lengths.max())
        x = x[:, :steps]
        mask = torch.arange(steps, device=x.device).view(1, steps) < lengths.view(n, 1)
        feats = fast_engine.fast_frontend(self, x[mask])
        seq = x.new_zeros(n, steps, self.feature_size).index_put((mask,), feats)
        packed = nn.utils.rnn.pack_padded_sequence(seq, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.fc(F.relu(h[-1]))


def switch_off(model: AudioNet, frontend: bool = False, fused: bool = False,
               wavefront: bool = False) -> AudioNet:
    """Turn pieces of the default path back into the literal computation (same function)."""
    if frontend:
        model.gemm_frontend = False
    if fused:  # AudioNet runs the wavefront only over fused layers: this switches it off too
        for layer in model.lstm:
            layer.fused = False
    if wavefront:
        model.wavefront_lstm = False
    return model


# ------------------------------------------------------------------------------------------
# Data and one variant
# ------------------------------------------------------------------------------------------
def load_task():
    """YAF happy vs sad and the course's 70/30 split (seed 0)."""
    from emoser.data import load_tess
    data = load_tess(emotions=("happy", "sad"), speakers=("YAF",))
    train_idx, test_idx = stratified_split(data.labels, test_size=0.3, seed=0)
    return data, train_idx, test_idx


def _datasets(data, train_idx, test_idx, dtype):
    waves = data.waves
    norm = Normalizer.fit([waves[i] for i in train_idx])
    make = lambda idx: FrameDataset([waves[i] for i in idx], data.labels[idx], FRAME,  # noqa: E731
                                    normalizer=norm, dtype=dtype)
    return make(train_idx), make(test_idx)


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads, without calling ``torch.set_num_threads`` when nothing changes.

    ``torch.set_num_threads`` also switches MKL's dynamic threading off (pytorch#13868): from
    then on every contiguous ``tanh``/``exp`` on a tiny tensor (the LSTM's ``tanh(c)``) is an
    OpenMP parallel region, which costs milliseconds instead of a microsecond when the cores
    are busy. On a machine with ``n`` cores the default is already ``n`` threads.
    """
    if n != torch.get_num_threads():
        torch.set_num_threads(n)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


#: The flags of the fused kernels until issue 20, for the variant fast-math-native only.
FAST_MATH_CFLAGS = ("-O3", "-ffast-math", "-fPIC")
FAST_MATH_ARCH_FLAGS = (("-march=native",), ("-mcpu=native",), ())


def _parse_variant(spec: str):
    name, _, bs = spec.partition("@bs")
    if name not in BASE_VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(BASE_VARIANTS)}")
    return name, (int(bs) if bs else None)


def build_model(name: str, dev):
    """The model of a fit-trained variant (seeded), and the dtype of its data."""
    set_seed(0)
    dtype = torch.float64 if name.startswith("float64-") else torch.float32
    model = (TorchLstmAudioNet if name.endswith("torch-lstm") else AudioNet)().to(dev, dtype)
    if name == "previous-default":
        switch_off(model, frontend=True, fused=True)
    elif name == "modules-frontend":
        switch_off(model, frontend=True)
    elif name == "unfused-lstm":
        switch_off(model, fused=True)
    elif name == "no-wavefront":
        switch_off(model, wavefront=True)
    return model, dtype


def run_variant(spec: str, args) -> dict:
    """Train one variant in this process; return its measurements."""
    set_threads(args.threads)
    dev = torch.device(args.device)
    name, bs = _parse_variant(spec)
    if name == "no-native":
        os.environ[native.ENV_NATIVE] = "0"
    elif name == "fast-math-native":  # the old build's flags (another cache key: its own library)
        native.CFLAGS, native._ARCH_FLAGS = FAST_MATH_CFLAGS, FAST_MATH_ARCH_FLAGS
    t0 = time.perf_counter()
    data, train_idx, test_idx = load_task()
    res = dict(variant=spec, n_train=len(train_idx), n_test=len(test_idx), source=data.source)
    if name != "original" and dev.type == "cpu":
        res["native"] = native.status()
    cpu_marks = []  # process CPU time at the end of each epoch (less sensitive to a busy machine)

    def log(line):
        cpu_marks.append(time.process_time())
        print(f"  [{spec}] {line}", flush=True)
    if name == "original":
        prep = original_prepare(data.waves, data.labels, FRAME, train_idx=train_idx,
                                test_idx=test_idx)
        res["load_seconds"] = time.perf_counter() - t0
        res["rss_before_mb"] = _rss_mb()
        torch.manual_seed(0)
        model = OriginalAudioNet()
        if dev.type != "cpu":  # the original's CPU zero state breaks on a GPU (SPEC, known defects)
            for layer in (model.lstm1, model.lstm2):
                layer.state_on_input_device = True
            model.to(dev)
            for f in ("x_train", "y_train", "lengths_train", "x_test", "y_test", "lengths_test"):
                setattr(prep, f, getattr(prep, f).to(dev))
        cpu_marks.append(time.process_time())
        hist = original_train(model, prep, epochs=args.original_epochs, batch_size=bs or 10,
                              log=log)
        secs = [h["seconds"] for h in hist]
        res.update(batch_size=bs or 10, dtype="float64",
                   padded_frames=int(prep.x_train.shape[0] * prep.x_train.shape[1]),
                   valid_frames=int(prep.true_lengths_train.sum()))
    else:
        model, dtype = build_model(name, dev)
        train_set, test_set = _datasets(data, train_idx, test_idx, dtype)
        res["load_seconds"] = time.perf_counter() - t0
        res["rss_before_mb"] = _rss_mb()
        kw = dict(progress=False, seed=0, device=dev, log=log)
        cpu_marks.append(time.process_time())
        if bs:
            kw["batch_size"] = bs
        if name.startswith("to-target"):
            hit = {}

            def stop(record):
                if record["val_acc"] >= args.target and not hit:
                    hit.update(record)
                return bool(hit)
            if name == "to-target":  # the course's recipe, as chapters 6 and 7 train
                init_forget_bias(model, RECIPE.forget_bias)
                recipe = RECIPE.replace(batch_size=bs) if bs else RECIPE
                hist = fit_with_recipe(model, train_set, test_set, recipe=recipe, seed=0,
                                       device=dev, log=log, callback=stop)
            else:
                hist = fit(model, train_set, test_set, epochs=args.max_epochs, callback=stop, **kw)
            cum = np.cumsum(hist["seconds"]).tolist()
            res.update(target=args.target, reached=bool(hit), epoch=hit.get("epoch"),
                       seconds_to_target=cum[hit["epoch"] - 1] if hit else None,
                       best_test_acc=max(hist["val_acc"]), test_acc=hist["val_acc"],
                       epoch_seconds=hist["seconds"])
            secs = hist["seconds"]
        else:
            hist = fit(model, train_set, epochs=args.epochs, **kw)
            secs = hist["seconds"]
            res["final_train_acc"] = hist["train_acc"][-1]
        res.update(batch_size=hist.params["batch_size"], dtype=str(dtype).replace("torch.", ""),
                   valid_frames=int(train_set.lengths.sum()))
    res["epoch_seconds"] = secs
    post = secs[1:] if len(secs) > 1 else secs
    res["seconds_per_epoch"] = statistics.median(post)
    cpu = np.diff(cpu_marks).tolist()
    res["cpu_seconds_per_epoch"] = statistics.median(cpu[1:] if len(cpu) > 1 else cpu)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        res["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return res


# ------------------------------------------------------------------------------------------
# Profile of one default epoch
# ------------------------------------------------------------------------------------------
def profile_default(args) -> dict:
    """Split one training epoch into collation, CNN and LSTM forward, LSTM and CNN backward, Adam.

    Simple timers around each part; the backward pass is split where the gradient reaches the
    CNN's output features (a tensor hook fires there: the LSTM and the head are done, the CNN
    is next). Batches as in ``fit``'s default: shuffled, batch 10, no bucketing.
    """
    set_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    data, train_idx, test_idx = load_task()
    model, dtype = build_model(args.profile_variant, dev)
    train_set, _ = _datasets(data, train_idx, test_idx, dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    parts = ("collate", "cnn_forward", "lstm_and_head_forward", "lstm_and_head_backward",
             "cnn_backward", "optimizer")
    times = dict.fromkeys(parts, 0.0)
    marks = {}
    own_frontend = fast_engine.fast_frontend  # what AudioNet's fast engine calls

    def timed_frontend(net, frames):
        sync()
        t = time.perf_counter()
        out = own_frontend(net, frames)
        sync()
        times["cnn_forward"] += time.perf_counter() - t
        if out.requires_grad:
            out.register_hook(lambda grad: marks.__setitem__("cnn_backward_starts",
                                                             time.perf_counter()))
        return out
    fast_engine.fast_frontend = timed_frontend
    order = np.random.default_rng(0).permutation(len(train_set))
    batches = [order[i:i + 10] for i in range(0, len(order), 10)]

    def epoch(record):
        total = time.perf_counter()
        for b in batches:
            t = time.perf_counter()
            x, lengths, y = collate_frames([train_set[i] for i in b])
            x, lengths, y = x.to(dev), lengths.to(dev), y.to(dev)
            t1 = time.perf_counter()
            logits = model(x, lengths)
            loss = F.cross_entropy(logits, y)
            sync()
            t2 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sync()
            t3 = time.perf_counter()
            opt.step()
            sync()
            t4 = time.perf_counter()
            if record:
                times["collate"] += t1 - t
                times["lstm_and_head_forward"] += t2 - t1  # minus the CNN part below
                split = marks.pop("cnn_backward_starts", t3)
                times["lstm_and_head_backward"] += split - t2
                times["cnn_backward"] += t3 - split
                times["optimizer"] += t4 - t3
        return time.perf_counter() - total

    model.train()
    epoch(False)  # warm-up
    for k in times:
        times[k] = 0.0
    total = epoch(True)
    fast_engine.fast_frontend = own_frontend  # the profiler pass below is not timed
    times["lstm_and_head_forward"] -= times["cnn_forward"]
    result = dict(variant=args.profile_variant, epoch_seconds=total, parts=times, top_ops="")
    if not getattr(args, "profile_ops", True):
        return result
    from torch.profiler import ProfilerActivity, profile  # the operators of a few batches
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for b in batches[:6]:
            x, lengths, y = collate_frames([train_set[i] for i in b])
            loss = F.cross_entropy(model(x.to(dev), lengths.to(dev)), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sync()
    result["top_ops"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return result


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------
def machine_info(args) -> dict:
    info = dict(date=_dt.datetime.now().isoformat(timespec="seconds"),
                python=platform.python_version(), torch=torch.__version__,
                platform=platform.platform(), threads=args.threads,
                device=args.device, cpu_count=os.cpu_count(), load_average=os.getloadavg())
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in fh
                               if ln.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _child(spec: str, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", spec,
           "--threads", str(args.threads), "--device", args.device, "--epochs", str(args.epochs),
           "--original-epochs", str(args.original_epochs),
           "--target", str(args.target), "--max-epochs", str(args.max_epochs)]
    env = dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
    lines = proc.stdout.splitlines()
    for ln in lines:
        if not ln.startswith("RESULT "):
            print(ln, flush=True)
    results = [ln[len("RESULT "):] for ln in lines if ln.startswith("RESULT ")]
    if proc.returncode or not results:
        raise SystemExit(f"variant {spec} failed (exit status {proc.returncode})")
    return json.loads(results[-1])


def merge_rounds(rounds: list[dict]) -> dict:
    """One variant's result over several rounds: the medians of its per-round numbers.

    The rounds alternate with the other variants, so a machine that slows down for a while
    (other virtual machines on the same host) slows all variants alike.
    """
    res = dict(rounds[0])
    if len(rounds) > 1:
        for k in ("seconds_per_epoch", "cpu_seconds_per_epoch"):
            res["round_" + k] = [r[k] for r in rounds]
            res[k] = statistics.median(res["round_" + k])
        res["epoch_seconds"] = [r["epoch_seconds"] for r in rounds]
        res["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    return res


def print_table(results: list[dict]) -> None:
    """Wall and CPU seconds per epoch, speed-up against the original, peak resident memory."""
    base = {k: next((r[k] for r in results if r["variant"] == "original"), None)
            for k in ("seconds_per_epoch", "cpu_seconds_per_epoch")}
    print(f"\n{'variant':<20}{'batch':>6}{'s/epoch':>9}{'speed-up':>9}{'CPU s/ep':>10}"
          f"{'speed-up':>9}{'peak RSS MB':>12}{'before':>8}")
    for r in results:
        cells = []
        for k in ("seconds_per_epoch", "cpu_seconds_per_epoch"):
            cells.append(f"{r[k]:>{9 if k == 'seconds_per_epoch' else 10}.2f}"
                         + (f"{base[k] / r[k]:>8.1f}x" if base[k] else f"{'-':>9}"))
        print(f"{r['variant']:<20}{r['batch_size']:>6}{''.join(cells)}{r['peak_rss_mb']:>12.0f}"
              f"{r['rss_before_mb']:>8.0f}")
    orig = next((r for r in results
                 if r["variant"] == "original" and "round_seconds_per_epoch" in r), None)
    if orig:
        print("\nspeed-up in each round "
              "(original's seconds per epoch / the variant's, same round):")
        for r in results:
            if r is not orig and "round_seconds_per_epoch" in r:
                ratios = [o / v for o, v in zip(orig["round_seconds_per_epoch"],
                                                r["round_seconds_per_epoch"])]
                print(f"  {r['variant']:<20}" + "  ".join(f"{x:5.1f}x" for x in ratios))
    for r in results:
        if r["variant"].startswith("to-target"):
            if r["reached"]:
                print(f"\n{r['variant']}: {r['target']:.0%} test accuracy "
                      f"after epoch {r['epoch']}, "
                      f"{r['seconds_to_target']:.1f} s of training "
                      "(incl. the test after each epoch)")
            else:
                print(f"\n{r['variant']}: {r['target']:.0%} not reached "
                      f"in {len(r['test_acc'])} epochs "
                      f"(best {r['best_test_acc']:.1%})")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="original,default,to-target")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=4,
                    help="epochs of the fit variants (first is warm-up)")
    ap.add_argument("--original-epochs", type=int, default=2, help="epochs of the original (slow)")
    ap.add_argument("--target", type=float, default=0.99, help="test accuracy for to-target")
    ap.add_argument("--max-epochs", type=int, default=30, help="cap for to-target")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--profile", action="store_true", help="profile one epoch of the default path")
    ap.add_argument("--profile-variant", default="default")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the list of variants this many times, alternating, "
                         "and report medians "
                         "(to-target variants run once)")
    ap.add_argument("--inline", action="store_true",
                    help="run variants in this process (no RSS per variant)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print("RESULT " + json.dumps(run_variant(args.child, args)), flush=True)
        return
    set_threads(args.threads)
    info = machine_info(args)
    print(f"{info['cpu']} | torch {info['torch']} | {args.threads} threads | "
          f"device {args.device} | "
          f"load average {' '.join(f'{v:.1f}' for v in info['load_average'])}")
    if args.profile:
        p = profile_default(args)
        print(f"\none epoch of {p['variant']} ({p['epoch_seconds']:.2f} s), simple timers:")
        for k, v in p["parts"].items():
            print(f"  {k:<24}{v:8.2f} s  {v / p['epoch_seconds']:6.1%}")
        print(p["top_ops"])
        result = dict(machine=info, profile={k: v for k, v in p.items() if k != "top_ops"})
    else:
        specs = [v.strip() for v in args.variants.split(",") if v.strip()]
        for s in specs:
            _parse_variant(s)
        runs = {s: [] for s in specs}
        for r in range(args.rounds):
            for s in specs:
                if r and s.startswith("to-target"):
                    continue
                print(f"--- {s}"
                      + (f" (round {r + 1} of {args.rounds})" if args.rounds > 1 else ""),
                      flush=True)
                runs[s].append(run_variant(s, args) if args.inline else _child(s, args))
        results = [merge_rounds(runs[s]) for s in specs]
        print_table(results)
        info["load_average_after"] = os.getloadavg()
        result = dict(machine=info, results=results)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
