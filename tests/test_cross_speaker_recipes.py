"""The cross-speaker ablation ladder (issue 17): its pieces, and the committed results.

``benchmarks/cross_speaker_recipes.py`` is loaded as a module; its pieces get known answers on
small inputs (padding never changes the pooled statistics, a warp of factor 1 changes nothing,
per-speaker standardization gives every speaker zero mean and unit variance), and the committed
``cross-speaker-recipes.json`` is checked against the script's ladder and for inner consistency.
Chapter 10 reads it through :mod:`emoser.course.ladder`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from emoser.course import ladder

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cross_speaker_recipes.py"


@pytest.fixture(scope="module")
def ladder_script():
    spec = importlib.util.spec_from_file_location("cross_speaker_recipes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rung", ["lstm_last", "stats_pool", "input_stats", "branch_drop"])
def test_padding_changes_no_output_of_any_read_out(ladder_script, rung):
    torch.manual_seed(0)
    model = ladder_script.MelLstm(6, 3, ladder_script.rung_settings(rung)).eval()
    x = torch.randn(2, 9, 6)
    lengths = torch.tensor([9, 5])
    x[1, 5:] = 0  # padding, as the batches have it
    both = model(x, lengths)
    alone = model(x[1:2, :5], lengths[1:])
    torch.testing.assert_close(both[1:], alone, rtol=1e-5, atol=1e-6)
    # and the padding's content is never read
    x[1, 5:] = 7.0
    torch.testing.assert_close(model(x, lengths)[1:], alone, rtol=1e-5, atol=1e-6)


def test_the_hand_built_layers_are_the_course_cell(ladder_script):
    from emoser.nn import LstmCell

    model = ladder_script.MelLstm(4, 2, ladder_script.rung_settings("branch_drop"))
    assert type(model.lstm1.cell) is LstmCell and type(model.lstm2.cell) is LstmCell
    # the fast path computes the taught layer's function
    x, lengths = torch.randn(3, 7, 4), torch.tensor([7, 4, 2])
    fast, _ = model.lstm1(x, lengths)
    taught, _ = model.lstm1(x, lengths, fast=False)
    torch.testing.assert_close(fast, taught, rtol=1e-5, atol=1e-6)


def test_branch_drop_only_while_training(ladder_script):
    s = dict(ladder_script.rung_settings("branch_drop"), branch_drop=1.0, dropout=0.0)
    model = ladder_script.MelLstm(4, 2, s)
    x, lengths = torch.randn(5, 6, 4), torch.full((5,), 6)
    model.train()
    out = model(x, lengths)
    # with the LSTM branch gone, the logits are the linear layer on the input statistics only
    n = lengths.view(-1, 1).float()
    xm = x.sum(1) / n
    xs = ((x ** 2).sum(1) / n - xm ** 2).clamp_min(1e-6).sqrt()
    w = model.fc.weight[:, -8:]
    torch.testing.assert_close(out, torch.cat([xm, xs], 1) @ w.t() + model.fc.bias)
    model.eval()
    assert not torch.allclose(model(x, lengths), out)


def test_a_warp_of_factor_one_and_no_masks_change_nothing(ladder_script):
    m = np.random.default_rng(0).normal(size=(30, 40)).astype(np.float32)
    s = dict(ladder_script.BASE, warp=1e-12)
    out = ladder_script.augmented(m, s, np.random.default_rng(1))
    np.testing.assert_allclose(out, m, atol=1e-6)


def test_a_warp_moves_a_peak_up_or_down_the_mel_axis(ladder_script):
    m = np.zeros((3, 40), dtype=np.float32)
    m[:, 20] = 1.0
    s = dict(ladder_script.BASE, warp=0.15)
    peaks = {int(np.argmax(ladder_script.augmented(m, s, np.random.default_rng(k))[0]))
             for k in range(20)}
    assert len(peaks) > 1 and all(17 <= p <= 24 for p in peaks)


def test_masks_zero_one_band_and_one_stretch_of_frames_at_most(ladder_script):
    m = np.ones((50, 40), dtype=np.float32)
    s = dict(ladder_script.BASE, freq_mask=8, time_mask=20)
    masked = 0
    for k in range(10):
        out = ladder_script.augmented(m, s, np.random.default_rng(k))
        bands, frames = (out == 0).all(axis=0), (out == 0).all(axis=1)
        assert bands.sum() <= 8 and frames.sum() <= 20
        # what is zero is whole bands (every frame) or whole frames (every band), nothing else
        assert ((out == 0) == (bands[None, :] | frames[:, None])).all()
        masked += int(bands.any()) + int(frames.any())
    assert masked > 10  # it does mask, in most draws
    assert m.all()  # the input is never changed in place


def test_per_speaker_cmvn_uses_each_speakers_own_frames(ladder_script):
    rng = np.random.default_rng(0)
    mels = [rng.normal(loc=5.0 if k < 4 else -3.0, scale=1 + k, size=(10 + k, 3)) for k in range(8)]
    speakers = np.array(["A"] * 4 + ["B"] * 4)
    out = ladder_script.per_speaker_cmvn(mels, speakers, [np.arange(4), np.arange(4, 8)])
    for rows in (range(4), range(4, 8)):
        frames = np.concatenate([out[i] for i in rows])
        np.testing.assert_allclose(frames.mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(frames.std(0), 1, atol=1e-5)


def test_every_rung_keeps_the_ones_before(ladder_script):
    seen = dict(ladder_script.BASE)
    for rung, _, change in ladder_script.LADDER:
        seen.update(change)
        assert ladder_script.rung_settings(rung) == seen
    with pytest.raises(SystemExit, match="unknown rung"):
        ladder_script.rung_settings("magic")


def test_the_script_refuses_the_stand_in_corpus_with_exit_code_2(ladder_script, monkeypatch,
                                                                   capsys, tmp_path):
    monkeypatch.setattr(ladder_script, "load_tess", lambda **kw: SimpleNamespace(is_standin=True))
    out = tmp_path / "never.json"
    assert ladder_script.main(["--out", str(out), "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "needs TESS" in err and err.count("\n") == 1 and not out.exists()


# --------------------------------------------------------------------------- the results
def test_committed_ladder_is_the_scripts_ladder_with_five_seeds(ladder_script):
    result = ladder.load_result()
    assert result["seeds"] == [0, 1, 2, 3, 4]
    assert result["mel"] == ladder_script.MEL and result["train"] == ladder_script.TRAIN
    assert [s["rung"] for s in result["ladder"]] == [r for r, _, _ in ladder_script.LADDER]
    classes = {"happy_sad": ["happy", "sad"],
               "four_emotions": ["angry", "happy", "neutral", "sad"]}
    for step in result["ladder"]:
        rung = step["rung"]
        assert step["settings"] == ladder_script.rung_settings(rung)
        for task, names in classes.items():
            cell = result["rungs"][rung][task]
            assert cell["settings"] == step["settings"] and cell["classes"] == names
            for direction in ladder.DIRECTIONS:
                r = cell["results"][direction]
                accs = np.array(r["accuracy"])
                assert accs.shape == (5,) and ((0 <= accs) & (accs <= 1)).all()
                assert r["mean"] == pytest.approx(accs.mean())
                assert r["std"] == pytest.approx(accs.std(ddof=1))
                assert r["min"] == accs.min()
                # the pooled confusion holds every seed's test set: the other voice, whole
                conf = np.array(r["confusion"])
                n_test = conf.sum() // 5
                assert conf.sum() == 5 * n_test
                assert n_test in ((399, 400) if len(names) == 2 else (799, 800))
                assert np.trace(conf) == pytest.approx(accs.sum() * n_test)
                ens = np.array(r["ensemble"]["confusion"])
                assert ens.sum() == n_test
                assert np.trace(ens) / n_test == pytest.approx(r["ensemble"]["accuracy"])
                assert all(1 <= e <= result["train"]["epochs"] for e in r["selected_epoch"])


def test_ladder_rows_and_table_read_the_file():
    result = ladder.load_result()
    baselines = ladder.load_result(ladder.BASELINES_FILE)
    rows = ladder.ladder_rows(result, "four_emotions")
    assert [r["rung"] for r in rows] == [s["rung"] for s in result["ladder"]]
    last = result["rungs"][rows[-1]["rung"]]["four_emotions"]["results"]["OAF->YAF"]
    assert rows[-1]["OAF->YAF"]["mean"] == pytest.approx(100 * last["mean"])
    table = ladder.ladder_table(result, baselines, "happy_sad")
    assert table.count("\n") == len(rows) + 3  # header, rule, rungs, two baseline rows - 1
    mfcc = ladder.baseline_cell(baselines, "happy_sad", "YAF->OAF", "per_speaker")
    assert f"{mfcc:.1f}" in table
    broken = {"ladder": result["ladder"], "rungs": {}}
    with pytest.raises(KeyError, match="no results for rung"):
        ladder.ladder_rows(broken, "happy_sad")
