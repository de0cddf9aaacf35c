"""Data-parallel training (issue 18): ``torchrun --nproc_per_node=2 -m emoser train`` on the CPU
(gloo) trains the weights one process trains with the same global batch, writes one checkpoint
that ``predict`` reads in a single process, and a crashed peer ends the run instead of hanging.
"""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emoser import cli
from emoser.training import load_checkpoint
from emoser.training.batches import EpochBatches
from emoser.training.distributed import ShardedBatches, requested

ROOT = Path(__file__).resolve().parents[1]
RATE = 24414
WORDS = ["back", "bar", "base", "bath", "bean", "beg", "bite", "boat"]
#: 16 recordings -> 12 for training; a global batch of 11 makes batches of 11 and 1: shards of
#: 6 and 5 (uneven), then 1 and nothing (an empty shard, a zero-weight stand-in).
OPTIONS = ["--epochs", "3", "--batch-size", "11", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """16 tones of different lengths (so that shards pad differently from whole batches)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(1)
    for emotion, f0 in (("happy", 900.0), ("sad", 180.0)):
        (root / f"YAF_{emotion}").mkdir()
        for i, word in enumerate(WORDS):
            t = np.arange(int(RATE * (0.3 + 0.02 * i))) / RATE
            wave = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
            sf.write(root / f"YAF_{emotion}" / f"YAF_{word}_{emotion}.wav",
                     wave.astype(np.float32), RATE)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(script: list[str], tmp_path: Path, timeout: float, **extra_env):
    """``torchrun --nproc_per_node=2`` on loopback; (completed process, seconds)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
               EMOSER_CACHE_DIR=str(tmp_path / "cache"), TQDM_DISABLE="1", OMP_NUM_THREADS="1",
               **extra_env)
    env.pop("EMOSER_TESS_DIR", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}", *script]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                            cwd=ROOT)
    return result, time.perf_counter() - start


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_shards_of_every_rank_make_up_the_global_batches():
    lengths = np.arange(12)
    whole = EpochBatches(lengths, 11, torch.Generator().manual_seed(0)).batches()
    per_rank = [list(ShardedBatches(EpochBatches(lengths, 11, torch.Generator().manual_seed(0)),
                                    r, 2)) for r in range(2)]
    for k, batch in enumerate(whole):
        (a, na), (b, nb) = per_rank[0][k], per_rank[1][k]
        assert na == len(batch)
        assert (a + b == batch) if nb else (a == batch and b == batch[:1])
    assert [len(p) for p, _ in per_rank[0]] == [6, 1] and per_rank[1][1][1] == 0


def test_only_a_world_of_several_processes_asks_for_data_parallel_training(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not requested()
    for value, wanted in (("1", False), ("2", True), ("", False)):
        monkeypatch.setenv("WORLD_SIZE", value)
        assert requested() is wanted


def test_two_gloo_processes_train_the_single_process_weights(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EMOSER_TESS_DIR", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    single, parallel = tmp_path / "single.pt", tmp_path / "ddp.pt"
    code, out, err = run_cli(["train", "--data", corpus, "--out", single, *OPTIONS])
    assert code == 0, out + err

    result, seconds = torchrun(["-m", "emoser", "train", "--data", str(corpus), "--out",
                                str(parallel), *OPTIONS], tmp_path, timeout=240)
    print(f"torchrun, 2 gloo processes: {seconds:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stdout
    assert "batches of 11 in total, 6 per process on 2 processes" in log
    assert sum(line.startswith("epoch ") for line in log.splitlines()) == 3  # rank 0 only
    assert log.count("saved checkpoint:") == 1

    one, meta_one = load_checkpoint(single)
    two, meta_two = load_checkpoint(parallel)
    a, b = one.state_dict(), two.state_dict()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"largest weight difference, 2 processes vs 1: {diff:.2e}")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a), diff
    params = meta_two["history"]["params"]
    assert params["batch_size"] == 11 and params["world_size"] == 2
    assert params["batch_size_per_process"] == 6
    assert "world_size" not in meta_one["history"]["params"]
    losses = [[e["train_loss"] for e in m["history"]["epochs"]] for m in (meta_one, meta_two)]
    assert np.allclose(losses[0], losses[1], atol=1e-5)  # reduced over both processes

    code, out, err = run_cli(["predict", corpus / "YAF_sad" / "YAF_bar_sad.wav",
                              "--checkpoint", parallel])
    assert code == 0, out + err
    assert out.startswith("predicted: ")


@pytest.mark.parametrize("failure", ["crash", "hang"])
def test_a_failed_process_ends_the_run_with_an_error(corpus, tmp_path, failure):
    """Rank 1 raises after epoch 1 (crash) or sleeps there (hang: rank 0's collective times
    out after EMOSER_DISTRIBUTED_TIMEOUT, 5 s here); either way the run ends, non-zero."""
    out = tmp_path / "never.pt"
    hang = {"EMOSER_TEST_HANG": "1", "EMOSER_DISTRIBUTED_TIMEOUT": "5"} if failure == "hang" else {}
    result, seconds = torchrun([str(ROOT / "tests" / "ddp_crash.py"), "train", "--data",
                                str(corpus), "--out", str(out), *OPTIONS], tmp_path,
                               timeout=150, **hang)
    print(f"{failure}: the run ended after {seconds:.1f} s with exit code {result.returncode}")
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    if failure == "crash":
        assert "rank 1: simulated crash after epoch 1" in log
    else:
        assert "Timed out" in log or "timed out" in log, log[-3000:]
    assert "epoch 1/3" in result.stdout and "epoch 3/3" not in result.stdout
    assert not out.exists()  # nothing half-trained is saved
    assert seconds < 120
