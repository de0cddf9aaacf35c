"""Command line: train AudioNet, predict the emotion of a recording, get and check the data.

Usage::

    python -m emoser train [--data PATH | --standin] [--emotions happy sad] [--speakers YAF] [--epochs 20]
                           [--seed 0] [--frame-length 500] [--out CHECKPOINT] [--lr 1e-3] [--batch-size 10]
    python -m emoser predict FILE.wav [--checkpoint CHECKPOINT]
    python -m emoser download [--target FOLDER]
    python -m emoser verify FOLDER

The checkpoint holds everything ``predict`` needs: the weights, the model's
settings, the classes, the sampling rate, the frame length and hop and the
normalization statistics of the training set. Its default place is
``$EMOSER_CACHE_DIR/audionet.pt`` (``~/.cache/emoser/audionet.pt``).

Chapter: chapters/12_your_voice.ipynb
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

__all__ = ["main", "build_parser", "default_checkpoint"]

DEFAULT_RATE = 24414


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def default_checkpoint() -> Path:
    """Where ``train`` saves and ``predict`` looks by default: ``<cache>/audionet.pt``.

    ``<cache>`` is ``$EMOSER_CACHE_DIR`` or ``~/.cache/emoser``.

    Chapter: chapters/12_your_voice.ipynb
    """
    from .data.config import cache_dir

    return cache_dir() / "audionet.pt"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m emoser``.

    Chapter: chapters/12_your_voice.ipynb
    """
    parser = argparse.ArgumentParser(
        prog="python -m emoser",
        description="Speech emotion recognition from raw waveforms (AudioNet: 1-D CNN + LSTM).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train AudioNet and save a checkpoint",
                       description="Train AudioNet on TESS (70/30 stratified split), print the "
                                   "per-epoch log and the test accuracy, save a checkpoint.")
    p.add_argument("--data", metavar="PATH", help="folder with TESS recordings (default: "
                   "$EMOSER_TESS_DIR, the cache, a download in Colab, else the stand-in corpus)")
    p.add_argument("--standin", action="store_true",
                   help="train on the generated stand-in corpus (not TESS; for trying the pipeline)")
    p.add_argument("--emotions", nargs="+", default=["happy", "sad"], metavar="EMOTION",
                   help="emotions to tell apart (default: happy sad)")
    p.add_argument("--speakers", nargs="+", default=["YAF"], metavar="SPEAKER",
                   help="speakers to use (default: YAF)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, the weights and the "
                   "shuffling (default 0)")
    p.add_argument("--frame-length", type=int, default=500, metavar="SAMPLES",
                   help="samples per frame (default 500, about 20 ms at 24414 Hz)")
    p.add_argument("--hop", type=int, default=None, metavar="SAMPLES",
                   help="samples between frame starts (default: the frame length, no overlap)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--batch-size", type=int, default=10, help="batch size (default 10)")
    p.add_argument("--clip-grad-norm", type=float, default=1.0, metavar="NORM",
                   help="clip each batch's gradient norm to NORM (default 1.0; 0 switches clipping off)")
    p.add_argument("--bucket", action="store_true",
                   help="group batches by length (faster, but on TESS happy/sad most batches then hold "
                        "one class; off by default, see chapter 6)")
    p.add_argument("--test-size", type=float, default=0.3, help="test fraction per class (default 0.3)")
    p.add_argument("--rate", type=int, default=DEFAULT_RATE, help="working sampling rate in Hz "
                   f"(default {DEFAULT_RATE})")
    p.add_argument("--device", default=None, help="cpu or cuda (default: $EMOSER_DEVICE, else a GPU "
                   "when available)")
    p.add_argument("--out", metavar="CHECKPOINT", default=None,
                   help="where to save the checkpoint (default: <cache>/audionet.pt)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("predict", help="predict the emotion of an audio file",
                       description="Print the predicted emotion and the probability of every class.")
    p.add_argument("file", metavar="FILE", help="audio file (any rate, mono or stereo)")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="checkpoint saved by 'train' (default: <cache>/audionet.pt)")

    p = sub.add_parser("download", help="download TESS into the cache (or --target)")
    p.add_argument("--target", metavar="FOLDER", default=None,
                   help="folder to download into (default: <cache>/tess)")

    p = sub.add_parser("verify", help="check a TESS copy against the published checksums")
    p.add_argument("folder", metavar="FOLDER")
    return parser


def _train(args) -> int:
    import torch

    from .data import load_tess
    from .frames import FrameDataset, Normalizer
    from .model import AudioNet
    from .train import describe_device, device, evaluate, fit, save_checkpoint, set_seed, stratified_split

    try:
        dev = device(args.device)
    except RuntimeError as exc:  # a GPU was asked for but there is none
        raise CliError(str(exc)) from exc
    data = load_tess(emotions=tuple(args.emotions), speakers=tuple(args.speakers), path=args.data,
                     rate=args.rate, standin=args.standin)
    print(f"data: {data.source} from {data.root}")
    if data.is_standin:
        print("NOTE: training on the STAND-IN synthetic corpus, not TESS: the numbers below say "
              "nothing about emotion recognition. Get TESS with 'python -m emoser download'.")
    classes = tuple(data.classes)
    labels = torch.as_tensor(data.labels).numpy()
    if len(classes) < 2:
        raise CliError(f"need at least two emotions with recordings, found {list(classes)}")
    train_idx, test_idx = stratified_split(labels, test_size=args.test_size, seed=args.seed)
    train_waves = [data.waves[i] for i in train_idx]
    normalizer = Normalizer.fit(train_waves)  # training set only: no test statistics leak in
    hop = args.hop or args.frame_length
    train_set = FrameDataset(train_waves, labels[train_idx], args.frame_length, hop, normalizer)
    test_set = FrameDataset([data.waves[i] for i in test_idx], labels[test_idx], args.frame_length,
                            hop, normalizer)
    counts = ", ".join(f"{c} {int((labels == k).sum())}" for k, c in enumerate(classes))
    print(f"{len(labels)} recordings ({counts}); {len(train_idx)} for training, {len(test_idx)} for testing; "
          f"frames of {args.frame_length} samples, hop {hop}; device {describe_device(dev)}")
    set_seed(args.seed)
    model_kwargs = {"numClass": len(classes), "inDim": args.frame_length}
    model = AudioNet(**model_kwargs)
    history = fit(model, train_set, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                  seed=args.seed, device=dev, progress=not args.no_progress,
                  clip_grad_norm=args.clip_grad_norm or None, bucket=args.bucket)
    result = evaluate(model, test_set)
    print(f"test accuracy: {100 * result.accuracy:.2f}% ({len(test_set)} recordings), "
          f"test loss {result.loss:.4f}")
    print(result.report(classes))
    out = Path(args.out) if args.out else default_checkpoint()
    save_checkpoint(out, model, model_kwargs=model_kwargs, classes=list(classes), rate=args.rate,
                    frame_length=args.frame_length, hop=hop,
                    normalizer={"mean": normalizer.mean, "std": normalizer.std},
                    history=history, test_accuracy=result.accuracy, test_loss=result.loss,
                    confusion=result.confusion, source=data.source, is_standin=bool(data.is_standin),
                    emotions=list(args.emotions), speakers=list(args.speakers), seed=args.seed,
                    split={"test_size": args.test_size, "seed": args.seed})
    print(f"saved checkpoint: {out}")
    return 0


def _predict(args) -> int:
    import torch

    from .data.audio import load_audio
    from .frames import Normalizer, frame_signal
    from .train import load_checkpoint

    path = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    if not path.is_file():
        raise CliError(f"no checkpoint at {path}; train one first with "
                       f"'python -m emoser train --out {path}'")
    model, meta = load_checkpoint(path)
    missing = [k for k in ("classes", "rate", "frame_length", "hop", "normalizer") if k not in meta]
    if missing:
        raise CliError(f"{path} lacks {', '.join(missing)}: save it with 'python -m emoser train'")
    file = Path(args.file)
    with warnings.catch_warnings():  # decoders warn before the clear error below
        warnings.simplefilter("ignore")
        try:
            wave = load_audio(file, rate=int(meta["rate"]))
        except Exception as exc:  # any decoder failure is a property of the input file
            reason = getattr(exc, "reason", None) or str(exc)
            raise CliError(f"cannot read audio file {file}: {reason}") from exc
    normalizer = Normalizer(**meta["normalizer"])
    frames = frame_signal(normalizer.apply(wave), int(meta["frame_length"]), int(meta["hop"]))
    dtype = next(model.parameters()).dtype
    x = torch.as_tensor(frames, dtype=dtype).unsqueeze(0)
    with torch.no_grad():
        probabilities = torch.softmax(model(x, torch.tensor([len(frames)])), dim=1)[0].double()
    classes = list(meta["classes"])
    print(f"predicted: {classes[int(probabilities.argmax())]}")
    for name, p in zip(classes, probabilities.tolist()):
        print(f"  {name}: {p:.4f}")
    if meta.get("is_standin"):
        print(f"note: {path} was trained on the stand-in corpus, not TESS", file=sys.stderr)
    return 0


def _download(args) -> int:
    from .data import download_tess

    folder = download_tess(target=args.target)
    print(f"TESS is in {folder}")
    return 0


def _verify(args) -> int:
    from .data import verify

    report = verify(args.folder)
    if not report.found:  # a mistyped path must not look intact
        raise CliError(f"{report.folder}: no TESS files (named SPEAKER_word_emotion.wav, e.g. "
                       f"YAF_back_happy.wav) found; {report.searched()}")
    print(report.summary())
    return 0 if report.intact else 1


_COMMANDS = {"train": _train, "predict": _predict, "download": _download, "verify": _verify}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for a user error, printed without traceback).

    Args:
        argv (list[str] | None): arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        int: 0 on success, 1 when ``verify`` finds altered or unknown files, 2 on an error.

    Chapter: chapters/12_your_voice.ipynb
    """
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (CliError, OSError, ValueError) as exc:
        print(f"emoser {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emoser {args.command}: interrupted", file=sys.stderr)
        return 130
