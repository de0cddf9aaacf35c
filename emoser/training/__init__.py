"""emoser.training: how a model learns and how it is measured.

* :mod:`~emoser.training.runtime`: seeds and devices;
* :mod:`~emoser.training.batches`: shuffled batches and one pass over them;
* :mod:`~emoser.training.loop`: the training loop (:func:`fit`);
* :mod:`~emoser.training.recipe`: the course's recipe (:data:`RECIPE`) and :func:`fit_with_recipe`;
* :mod:`~emoser.training.history`, :mod:`~emoser.training.evaluation`: what is measured;
* :mod:`~emoser.training.selection`: best-epoch selection (:class:`KeepBest`);
* :mod:`~emoser.training.checkpoints`: saving and loading a trained model.
* :mod:`~emoser.training.distributed`: data-parallel training under ``torchrun``.

Chapter: chapters/06_training.ipynb
"""
from .checkpoints import (
    MODEL_CLASSES,
    CheckpointError,
    load_checkpoint,
    register_model,
    save_checkpoint,
)
from .evaluation import Evaluation, evaluate
from .history import History
from .loop import adam, fit
from .recipe import (
    ORIGINAL_RECIPE,
    RECIPE,
    SEVEN_RECIPE,
    Recipe,
    fit_with_recipe,
    init_forget_bias,
)
from .runtime import (
    TRAINING_THREADS,
    describe_device,
    device,
    fixed_threads,
    set_seed,
    training_threads,
)
from .selection import KeepBest

__all__ = [
    "set_seed", "device", "describe_device", "History", "adam", "fit", "Recipe", "RECIPE",
    "SEVEN_RECIPE", "ORIGINAL_RECIPE", "init_forget_bias", "fit_with_recipe",
    "Evaluation", "evaluate",
    "KeepBest", "save_checkpoint", "load_checkpoint", "register_model", "MODEL_CLASSES",
    "CheckpointError", "TRAINING_THREADS", "training_threads", "fixed_threads",
]
