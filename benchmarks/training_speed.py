"""Training speed: the original exercise's code against emoser's default path, on the same data.

Data: TESS, YAF happy vs sad, the 70 % training split of ``emoser.train.stratified_split``
(seed 0; 279 clips), frames of 500 samples. Every variant runs in its own subprocess, one after
the other, so its peak resident memory (``ru_maxrss``) is its own.

Variants (``--variants``, comma-separated):
  original        emoser.original: float64, padded to the whole set's longest sequence, batch 10,
                  Adam lr 1e-4, fixed order, padded frames through CNN and LSTM
  default         emoser.model.AudioNet (float32) trained by emoser.train.fit with its defaults
                  (valid frames only, LSTM fast path, ReLU + max pooling in one step, no
                  bucketing, batch 10, Adam lr 1e-3)
  float64-default the same in float64
  torch-lstm      AudioNet's CNN + torch.nn.LSTM (packed sequences) instead of the hand-built layers
  chunked         default, the CNN front-end run over chunks of 256 frames (same arithmetic)
  fast-frontend   chunked + front-end block 1 as one autograd node (same function, see FastFrontendAudioNet)
  fused-lstm      default + one autograd Function for the whole LSTM recurrence
  fast            fast-frontend + fused-lstm
  to-target       the course's recipe (emoser.experiments.RECIPE, chapters 6-7: forget-gate bias 1,
                  Adam with a cosine schedule over its epochs, clipping, no bucketing), tested on the
                  30 % split after every epoch until --target accuracy (at most the recipe's epochs)
  to-target-fit-defaults  the same with emoser.train.fit's defaults (constant lr 1e-3, no forget-gate bias),
                  at most --max-epochs
  (append "@bsN" to a variant for batch size N, e.g. default@bs32)

Usage:
  python benchmarks/training_speed.py                       # original, default, to-target
  python benchmarks/training_speed.py --variants default,fast --epochs 4
  python benchmarks/training_speed.py --profile             # where one default epoch goes
  python benchmarks/training_speed.py --out benchmarks/results/cpu-2core.json

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

from emoser.frames import FrameDataset, Normalizer, collate_frames  # noqa: E402
from emoser.model import AudioNet  # noqa: E402
from emoser.original import OriginalAudioNet, original_prepare, original_train  # noqa: E402
from emoser.experiments import RECIPE, fit_with_recipe, init_forget_bias  # noqa: E402
from emoser.train import evaluate, fit, set_seed, stratified_split  # noqa: E402

FRAME = 500
BASE_VARIANTS = ("original", "default", "float64-default", "torch-lstm", "chunked", "fast-frontend",
                 "fused-lstm", "fast", "to-target", "to-target-fit-defaults")


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
        seq = x.new_zeros(n, steps, self.feature_size).index_put((mask,), self.frontend(x[mask]))
        packed = nn.utils.rnn.pack_padded_sequence(seq, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.fc(F.relu(h[-1]))


class ChunkedAudioNet(AudioNet):
    """AudioNet whose front-end takes the frames in chunks of ``chunk`` (same arithmetic per frame).

    A batch's ~1000 frames make ~32 MB intermediates in block 1; chunks of 256 stay nearer the
    caches and cut peak memory.
    """

    chunk = 256

    def frontend(self, frames, trace=None):
        if trace is not None:
            return super().frontend(frames, trace)
        return torch.cat([AudioNet.frontend(self, part) for part in frames.split(self.chunk)])


class _FirstBlock(torch.autograd.Function):
    """Average pooling 2/2, Conv1d(1 -> C, K, stride 2), max pooling 2/2 and ReLU as one node.

    The pooled output ``max(y[2q], y[2q+1])`` is computed directly: the conv outputs at even and
    odd positions are two small matrix products over windows of the raw frame (average pooling
    folded into the weights), so the full-length conv output, the pooling indices and the
    full-length ReLU never exist. Output channels-last ``M x L x C``.
    """

    @staticmethod
    def forward(ctx, frames, weight, bias):
        C, _, K = weight.shape
        w2 = weight[:, 0].repeat_interleave(2, dim=1) * 0.5        # C x 2K, average pool folded in
        L = ((frames.shape[1] // 2 - K) // 2 + 1) // 2               # pooled length
        ue = frames.unfold(1, 2 * K, 8)[:, :L]                       # windows at 8q (conv at 2q)
        uo = frames[:, 4:].unfold(1, 2 * K, 8)[:, :L]                # windows at 8q + 4 (conv at 2q+1)
        ze, zo = torch.matmul(ue, w2.t()), torch.matmul(uo, w2.t())
        odd = zo > ze
        out = torch.maximum(ze, zo).add_(bias).relu_()
        ctx.save_for_backward(frames, odd, out)
        ctx.sizes = (C, K, L)
        return out

    @staticmethod
    def backward(ctx, grad):
        frames, odd, out = ctx.saved_tensors
        C, K, L = ctx.sizes
        grad = grad * (out > 0)
        go = grad * odd
        ge = grad - go
        ue = frames.unfold(1, 2 * K, 8)[:, :L].reshape(-1, 2 * K)
        uo = frames[:, 4:].unfold(1, 2 * K, 8)[:, :L].reshape(-1, 2 * K)
        dw2 = ge.reshape(-1, C).t() @ ue + go.reshape(-1, C).t() @ uo
        dw = (dw2[:, 0::2] + dw2[:, 1::2]).mul_(0.5).unsqueeze(1)
        return None, dw, grad.sum((0, 1))


class FastFrontendAudioNet(AudioNet):
    """AudioNet with the same front-end function computed with fewer passes over memory.

    * block 1 (average pooling, conv, max pooling, ReLU) as one autograd node, see
      :class:`_FirstBlock` -- it avoids the full-length conv output and its pooling indices;
    * later blocks: max pooling before ReLU (they commute: both are monotone), so ReLU and its
      backward touch half the data;
    * the frames go through in chunks of ``chunk`` frames (cache-sized intermediates).
    """

    chunk = 256  # frames per pass: keeps the intermediate tensors small enough for the caches

    def frontend(self, frames, trace=None):
        if trace is not None or frames.requires_grad:
            return super().frontend(frames, trace)
        return torch.cat([self._frontend(part) for part in frames.split(self.chunk)])

    def _frontend(self, frames):
        y = _FirstBlock.apply(frames, self.conv1.weight, self.conv1.bias).transpose(1, 2).contiguous()
        for conv in self.conv_blocks()[1:]:
            y = F.relu(F.max_pool1d(conv(y), 2, 2))
        return y.flatten(1)


class _LstmRecurrence(torch.autograd.Function):
    """The whole LSTM recurrence as one autograd node: forward loop, hand-written BPTT."""

    @staticmethod
    def forward(ctx, xg, w_h, h0, c0):
        # xg: T x N x 4H (input part of all gates, bias included); gate order i, f, o, g
        steps, _, four_h = xg.shape
        hid = four_h // 4
        h, c = h0, c0
        hs, cs, gates = [], [], []
        w_h_t = w_h.t()
        for t in range(steps):
            z = torch.addmm(xg[t], h, w_h_t)
            a = torch.cat((torch.sigmoid(z[:, :3 * hid]), torch.tanh(z[:, 3 * hid:])), 1)
            i, f, o, g = a.split(hid, 1)
            c = f * c + i * g
            h = o * torch.tanh(c)
            hs.append(h)
            cs.append(c)
            gates.append(a)
        h_all, c_all, a_all = torch.stack(hs), torch.stack(cs), torch.stack(gates)
        ctx.save_for_backward(w_h, h0, c0, h_all, c_all, a_all)
        return h_all, c_all

    @staticmethod
    def backward(ctx, gh_all, gc_all):
        w_h, h0, c0, h_all, c_all, a_all = ctx.saved_tensors
        steps = h_all.shape[0]
        hid = h0.shape[1]
        gh_all = torch.zeros_like(h_all) if gh_all is None else gh_all
        gc_all = torch.zeros_like(c_all) if gc_all is None else gc_all
        dz_all = torch.empty_like(a_all)
        dh = torch.zeros_like(h0)
        dc = torch.zeros_like(c0)
        tanh_c_all = torch.tanh(c_all)
        for t in range(steps - 1, -1, -1):
            i, f, o, g = a_all[t].split(hid, 1)
            dh = dh + gh_all[t]
            tc = tanh_c_all[t]
            dc = dc + gc_all[t] + dh * o * (1 - tc * tc)
            c_prev = c_all[t - 1] if t > 0 else c0
            dz = dz_all[t]
            torch.mul(dc * g, i * (1 - i), out=dz[:, :hid])
            torch.mul(dc * c_prev, f * (1 - f), out=dz[:, hid:2 * hid])
            torch.mul(dh * tc, o * (1 - o), out=dz[:, 2 * hid:3 * hid])
            torch.mul(dc * i, 1 - g * g, out=dz[:, 3 * hid:])
            dc = dc * f
            dh = dz @ w_h
        h_prev = torch.cat((h0.unsqueeze(0), h_all[:-1]))
        d_w_h = dz_all.flatten(0, 1).t() @ h_prev.flatten(0, 1)
        return dz_all, d_w_h, dh, dc


def fused_layer_forward(layer, x, lengths=None, last_only=False):
    """Same result as ``emoser.lstm.LstmLayer.forward`` through :class:`_LstmRecurrence`."""
    n = x.shape[0]
    steps = int(lengths.max()) if lengths is not None else x.shape[1]
    w_x, w_h, b = layer.stacked_weights()
    xg = F.linear(x[:, :steps].transpose(0, 1), w_x, b)
    h0 = x.new_zeros(n, layer.hidden_size)
    h_all, c_all = _LstmRecurrence.apply(xg, w_h, h0, h0.clone())
    h_all, c_all = h_all.transpose(0, 1), c_all.transpose(0, 1)
    if last_only:
        idx = (lengths - 1).view(n, 1, 1).expand(n, 1, layer.hidden_size)
        return h_all.gather(1, idx).squeeze(1), c_all.gather(1, idx).squeeze(1)
    valid = (torch.arange(steps, device=x.device).view(1, steps) < lengths.view(n, 1)).unsqueeze(2)
    h_all = torch.where(valid, h_all, h_all.new_zeros(()))
    return F.pad(h_all, (0, 0, 0, x.shape[1] - steps)), None


def _use_fused_lstm(model):
    for layer in model.lstm:
        layer.forward = (lambda lyr: lambda x, lengths=None, last_only=False:
                         fused_layer_forward(lyr, x, lengths, last_only))(layer)
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


def _parse_variant(spec: str):
    name, _, bs = spec.partition("@bs")
    if name not in BASE_VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(BASE_VARIANTS)}")
    return name, (int(bs) if bs else None)


def build_model(name: str, dev):
    """The model of a fit-trained variant (seeded), and the dtype of its data."""
    set_seed(0)
    dtype = torch.float64 if name == "float64-default" else torch.float32
    cls = {"torch-lstm": TorchLstmAudioNet, "chunked": ChunkedAudioNet, "fast-frontend": FastFrontendAudioNet,
           "fast": FastFrontendAudioNet}.get(name, AudioNet)
    model = cls().to(dev, dtype)
    if name in ("fused-lstm", "fast"):
        _use_fused_lstm(model)
    return model, dtype


def run_variant(spec: str, args) -> dict:
    """Train one variant in this process; return its measurements."""
    set_threads(args.threads)
    dev = torch.device(args.device)
    name, bs = _parse_variant(spec)
    t0 = time.perf_counter()
    data, train_idx, test_idx = load_task()
    res = dict(variant=spec, n_train=len(train_idx), n_test=len(test_idx), source=data.source)
    cpu_marks = []  # process CPU time at the end of each epoch (less sensitive to a busy machine)

    def log(line):
        cpu_marks.append(time.process_time())
        print(f"  [{spec}] {line}", flush=True)
    if name == "original":
        prep = original_prepare(data.waves, data.labels, FRAME, train_idx=train_idx, test_idx=test_idx)
        res["load_seconds"] = time.perf_counter() - t0
        res["rss_before_mb"] = _rss_mb()
        torch.manual_seed(0)
        model = OriginalAudioNet()
        cpu_marks.append(time.process_time())
        hist = original_train(model, prep, epochs=args.original_epochs, batch_size=bs or 10, log=log)
        secs = [h["seconds"] for h in hist]
        res.update(batch_size=bs or 10, dtype="float64", padded_frames=int(prep.x_train.shape[0] * prep.x_train.shape[1]),
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
                hist = fit_with_recipe(model, train_set, test_set, recipe=recipe, seed=0, device=dev,
                                       log=log, callback=stop)
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
    """Split one training epoch of the default path into collation, CNN, LSTM, backward, Adam."""
    set_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    data, train_idx, test_idx = load_task()
    model, dtype = build_model(args.profile_variant, dev)
    train_set, _ = _datasets(data, train_idx, test_idx, dtype)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = dict(collate=0.0, cnn_forward=0.0, lstm_and_head_forward=0.0, backward=0.0, optimizer=0.0)
    original_frontend = model.frontend

    def timed_frontend(frames, trace=None):
        sync()
        t = time.perf_counter()
        out = original_frontend(frames, trace)
        sync()
        times["cnn_forward"] += time.perf_counter() - t
        return out
    model.frontend = timed_frontend
    # bucketed batches like fit's default: pools of 8 batches sorted by length
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train_set))
    batch_size = 10
    pool = 8 * batch_size
    batches = []
    for s in range(0, len(order), pool):
        chunk = order[s:s + pool]
        chunk = chunk[np.argsort(train_set.lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]

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
                times["backward"] += t3 - t2
                times["optimizer"] += t4 - t3
        return time.perf_counter() - total

    model.train()
    epoch(False)  # warm-up
    for k in times:
        times[k] = 0.0
    total = epoch(True)
    del model.frontend  # back to the model's own method: the profiler pass below is not timed
    times["lstm_and_head_forward"] -= times["cnn_forward"]
    # split the backward pass by operator with the profiler (a few batches)
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    sel = batches[:6]
    with profile(activities=acts) as prof:
        for b in sel:
            x, lengths, y = collate_frames([train_set[i] for i in b])
            loss = F.cross_entropy(model(x.to(dev), lengths.to(dev)), y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sync()
    cnn_ops = ("convolution_backward", "max_pool2d_with_indices_backward", "threshold_backward",
               "avg_pool2d_backward", "mkldnn_convolution", "max_pool2d_with_indices", "avg_pool2d",
               "clamp_min", "index_put", "_index_put_impl_", "index")
    split = dict(cnn_ops=0.0, other_ops=0.0)
    for ev in prof.key_averages():
        if ev.key.startswith("aten::"):
            key = "cnn_ops" if ev.key[6:] in cnn_ops else "other_ops"
            split[key] += ev.self_cpu_time_total / 1e6
    return dict(variant=args.profile_variant, epoch_seconds=total, parts=times,
                profiler_share_cnn_ops=split["cnn_ops"] / max(split["cnn_ops"] + split["other_ops"], 1e-9),
                top_ops=prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


# ------------------------------------------------------------------------------------------
# Driver
# ------------------------------------------------------------------------------------------
def machine_info(args) -> dict:
    info = dict(date=_dt.datetime.now().isoformat(timespec="seconds"), python=platform.python_version(),
                torch=torch.__version__, platform=platform.platform(), threads=args.threads,
                device=args.device, cpu_count=os.cpu_count(), load_average=os.getloadavg())
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _child(spec: str, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", spec, "--threads", str(args.threads),
           "--device", args.device, "--epochs", str(args.epochs), "--original-epochs", str(args.original_epochs),
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


def print_table(results: list[dict]) -> None:
    """Wall and CPU seconds per epoch, speed-up against the original, peak resident memory."""
    base = {k: next((r[k] for r in results if r["variant"] == "original"), None)
            for k in ("seconds_per_epoch", "cpu_seconds_per_epoch")}
    print(f"\n{'variant':<20}{'batch':>6}{'s/epoch':>9}{'speed-up':>9}{'CPU s/ep':>10}{'speed-up':>9}"
          f"{'peak RSS MB':>12}{'before':>8}")
    for r in results:
        cells = []
        for k in ("seconds_per_epoch", "cpu_seconds_per_epoch"):
            cells.append(f"{r[k]:>{9 if k == 'seconds_per_epoch' else 10}.2f}"
                         + (f"{base[k] / r[k]:>8.1f}x" if base[k] else f"{'-':>9}"))
        print(f"{r['variant']:<20}{r['batch_size']:>6}{''.join(cells)}{r['peak_rss_mb']:>12.0f}"
              f"{r['rss_before_mb']:>8.0f}")
    for r in results:
        if r["variant"].startswith("to-target"):
            if r["reached"]:
                print(f"\n{r['variant']}: {r['target']:.0%} test accuracy after epoch {r['epoch']}, "
                      f"{r['seconds_to_target']:.1f} s of training (incl. the test after each epoch)")
            else:
                print(f"\n{r['variant']}: {r['target']:.0%} not reached in {len(r['test_acc'])} epochs "
                      f"(best {r['best_test_acc']:.1%})")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="original,default,to-target")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=4, help="epochs of the fit variants (first is warm-up)")
    ap.add_argument("--original-epochs", type=int, default=2, help="epochs of the original (slow)")
    ap.add_argument("--target", type=float, default=0.99, help="test accuracy for to-target")
    ap.add_argument("--max-epochs", type=int, default=30, help="cap for to-target")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--profile", action="store_true", help="profile one epoch of the default path")
    ap.add_argument("--profile-variant", default="default")
    ap.add_argument("--inline", action="store_true", help="run variants in this process (no RSS per variant)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print("RESULT " + json.dumps(run_variant(args.child, args)), flush=True)
        return
    set_threads(args.threads)
    info = machine_info(args)
    print(f"{info['cpu']} | torch {info['torch']} | {args.threads} threads | device {args.device} | "
          f"load average {' '.join(f'{v:.1f}' for v in info['load_average'])}")
    if args.profile:
        p = profile_default(args)
        print(f"\none epoch of {p['variant']} ({p['epoch_seconds']:.2f} s), simple timers:")
        for k, v in p["parts"].items():
            print(f"  {k:<24}{v:8.2f} s  {v / p['epoch_seconds']:6.1%}")
        print(f"profiler, forward+backward operators: CNN front-end {p['profiler_share_cnn_ops']:.0%}, "
              f"LSTM and the rest {1 - p['profiler_share_cnn_ops']:.0%}\n{p['top_ops']}")
        result = dict(machine=info, profile={k: v for k, v in p.items() if k != "top_ops"})
    else:
        specs = [v.strip() for v in args.variants.split(",") if v.strip()]
        for s in specs:
            _parse_variant(s)
        results = []
        for s in specs:
            print(f"--- {s}", flush=True)
            results.append(run_variant(s, args) if args.inline else _child(s, args))
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
