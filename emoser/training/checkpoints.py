"""Checkpoints: a trained model and what is needed to use it again, in one file.

Chapter: chapters/07_evaluation.ipynb
"""
from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..nn.audionet import AudioNet
from .history import History

__all__ = ["save_checkpoint", "load_checkpoint", "register_model", "MODEL_CLASSES",
           "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError"]

#: The model classes a checkpoint may name, by a stable name (never a module path that moves):
#: loading a checkpoint never imports a module named inside it.
MODEL_CLASSES: dict[str, type] = {"AudioNet": AudioNet}

#: Names older checkpoints stored (the module path of the time) and the class they mean.
_LEGACY_NAMES = {"emoser.model.AudioNet": "AudioNet"}


class CheckpointError(ValueError):
    """A checkpoint cannot be used: not one, unreadable, or it does not fit its model.

    Chapter: chapters/07_evaluation.ipynb
    """


def register_model(cls: type, name: str | None = None) -> type:
    """Allow checkpoints of ``cls`` (an ``nn.Module``), stored under ``name`` (default its name).

    Returns ``cls``, so it also works as a class decorator.

    Chapter: chapters/07_evaluation.ipynb
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"{cls!r} is not a torch.nn.Module class")
    MODEL_CLASSES[name or cls.__name__] = cls
    return cls


def _model_name(model: nn.Module) -> str:
    for name, cls in MODEL_CLASSES.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered model class; "
                     "call emoser.training.register_model(cls) first")

CHECKPOINT_FORMAT = "emoser-checkpoint"
CHECKPOINT_VERSION = 1


def _plain(value):
    """Turn meta data into types that ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, History):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint; "
                    "use numbers, strings, lists, dicts, arrays or tensors")


def _constructor_kwargs(model: nn.Module) -> dict | None:
    """Constructor arguments read back from same-named attributes (as AudioNet keeps them).

    None when an argument has no such attribute; an argument with a default that is not kept
    as a plain value (AudioNet's ``cell`` class) is left to its default. AudioNet keeps its
    ``engine``, so a checkpoint restores it (older checkpoints: the default, ``"fast"``).
    """
    try:
        params = inspect.signature(type(model).__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    kwargs = {}
    for p in params:
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = getattr(model, p.name, None)
        if value is None or not isinstance(value, (bool, int, float, str)):
            if p.default is not p.empty and not hasattr(model, p.name):
                continue
            return None
        kwargs[p.name] = value
    return kwargs


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of earlier saves to ``path`` whose process no longer runs."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rpartition("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
            continue
        except ProcessLookupError:
            pass
        except OSError:  # exists, but not ours
            continue
        try:
            tmp.unlink()
        except OSError:
            pass


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta) -> Path:
    """Save a model's weights, what is needed to rebuild it, and any meta data.

    The constructor arguments come from ``meta["model_kwargs"]``, else from
    ``model.config`` (a dict), else from attributes named like the constructor's
    parameters (AudioNet keeps ``numClass``, ``inDim``, ... that way). The file
    is written to a temporary name first and then renamed, so an interrupted
    save never leaves a broken checkpoint.

    Args:
        path (str | PathLike): the file to write (folders are created).
        model (nn.Module): the model.
        **meta: anything else to keep: classes, rate, frame_length, hop,
            normalizer, history, ... (numbers, strings, lists, dicts, arrays,
            dataclasses such as Normalizer, and History are accepted).

    Returns:
        Path: the path written.

    Raises:
        ValueError: the constructor arguments are unknown, the model class is not
            registered (:func:`register_model`), or a weight is NaN or inf.
        OSError: the file cannot be written (nothing is left behind then).

    Chapter: chapters/07_evaluation.ipynb
    """
    path = Path(path)
    kwargs = meta.pop("model_kwargs", None)
    if kwargs is None:
        kwargs = getattr(model, "config", None)
    if kwargs is None:
        kwargs = _constructor_kwargs(model)
    if not isinstance(kwargs, dict):
        raise ValueError(f"cannot tell how to rebuild {type(model).__name__}: it has no `config` "
                         "dict and "
                         "does not keep every constructor argument as an attribute; "
                         "pass model_kwargs={...} (its constructor arguments)")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"not saving {path}: weights {', '.join(bad[:3])} hold NaN or inf "
                         "(training diverged)")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_class": _model_name(model),
        "model_kwargs": _plain(dict(kwargs)),
        "state_dict": state,
        "meta": _plain(meta),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model saved by :func:`save_checkpoint`.

    Args:
        path (str | PathLike): the checkpoint file.
        map_location: where to put the weights (default ``"cpu"``).

    Returns:
        tuple[nn.Module, dict]: the model (in evaluation mode) and the meta data,
        which also holds ``model_class`` and ``model_kwargs``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: (a ``ValueError``) the file is not an emoser checkpoint, cannot be
            read, names an unknown model class, or its weights do not fit the model built
            from its stored settings.
        OSError: the file cannot be read (e.g. permission denied).

    Chapter: chapters/07_evaluation.ipynb
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable emoser checkpoint: {reason}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an emoser checkpoint (no '{CHECKPOINT_FORMAT}' "
                              "marker)")
    name = str(payload.get("model_class"))
    cls = MODEL_CLASSES.get(_LEGACY_NAMES.get(name, name))
    if cls is None:
        raise CheckpointError(f"{path}: unknown model class {name!r} (known: "
                              f"{', '.join(MODEL_CLASSES)}); retrain with 'python -m emoser train'")
    try:
        model = cls(**payload["model_kwargs"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: the weights do not fit a {name} with the stored "
                              f"settings ({reason}); retrain with 'python -m emoser "
                              "train'") from exc
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)  # load_state_dict copied the weights into CPU parameters
    model.eval()
    meta = dict(payload["meta"])
    meta["model_class"] = payload["model_class"]
    meta["model_kwargs"] = dict(payload["model_kwargs"])
    return model, meta
