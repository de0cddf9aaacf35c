"""Chapter 6's loop (train_epoch, evaluate, a cosine schedule) trains exactly as fit_with_recipe."""
from __future__ import annotations

import numpy as np
import torch

from emoser.prep import FrameDataset
from emoser.training import RECIPE, History, evaluate, fit_with_recipe
from emoser.training.batches import EpochBatches, make_loader
from emoser.training.loop import train_epoch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(20, 2)

    def forward(self, x, lengths):
        mask = (torch.arange(x.shape[1]).view(1, -1) < lengths.view(-1, 1)).unsqueeze(2)
        return self.fc((x * mask).sum(1) / lengths.view(-1, 1))


def _sets():
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(rng.integers(40, 120)) * (1 + k % 2) for k in range(40)]
    labels = np.arange(40) % 2
    return (FrameDataset(waves[:30], labels[:30], frame_length=20),
            FrameDataset(waves[30:], labels[30:], frame_length=20))


def test_chapter_6_loop_gives_fit_with_recipes_history():
    train_set, val_set = _sets()
    recipe = RECIPE.replace(epochs=3, lr=0.05)
    torch.manual_seed(0)
    reference = Tiny()
    torch.manual_seed(0)
    model = Tiny()
    history = fit_with_recipe(reference, train_set, val_set, recipe=recipe, seed=0,
                              device="cpu", log=None)

    # the loop as chapter 6 writes it
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, amsgrad=recipe.amsgrad)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
    batches = EpochBatches(train_set.lengths, recipe.batch_size, torch.Generator().manual_seed(0))
    loader = make_loader(train_set, batches, torch.device("cpu"))
    mine = History()
    for epoch in range(1, recipe.epochs + 1):
        loss, acc = train_epoch(model, loader, optimizer, torch.device("cpu"),
                                clip_grad_norm=recipe.clip_grad_norm)
        val = evaluate(model, val_set)
        scheduler.step()
        mine.epochs.append({"train_loss": loss, "train_acc": acc, "val_loss": val.loss,
                            "val_acc": val.accuracy})
    for column in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert np.allclose(mine[column], history[column], rtol=1e-6, atol=1e-7), column
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
