"""Command line: train AudioNet, predict the emotion of a recording, get and check the data.

Usage::

    python -m emoser train [--data PATH | --standin] [--emotions happy sad] [--speakers YAF]
                           [--seed 0] [--epochs 8] [--frame-length 500] [--out CHECKPOINT]
    python -m emoser predict FILE.wav [--checkpoint CHECKPOINT]
    torchrun --nproc_per_node=N -m emoser train [...]   # data-parallel; --batch-size: total
    python -m emoser download [--target FOLDER]
    python -m emoser verify FOLDER

``train`` runs the course's pipeline (:func:`emoser.experiments.prepare`, then
:func:`~emoser.experiments.train_and_test`) with the course recipe
(:data:`emoser.training.RECIPE`) unless an option changes a setting. The checkpoint
(:meth:`emoser.experiments.Run.save`, the one format) holds everything ``predict`` needs: the
weights, the model's settings, the classes, the sampling rate, the frame length and hop and
the normalization statistics of the training set. Its default place is
``$EMOSER_CACHE_DIR/audionet.pt`` (``~/.cache/emoser/audionet.pt``).

Chapter: chapters/12_your_voice.ipynb
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from .common import DEFAULT_FRAME_LENGTH, DEFAULT_RATE
from .data.cache import cache_dir
from .data.download import DownloadError
from .prep.framing import count_frames
from .training.recipe import RECIPE

__all__ = ["main", "build_parser", "default_checkpoint", "frames_bytes", "memory_limit"]

MIN_RATE, MAX_RATE = 1000, 192_000  # working rates the command line accepts (Hz)
MAX_FRAME_LENGTH = 100_000  # samples per frame (about 4 s at the TESS rate)
MIN_FREE_BYTES = 16 << 20  # free disk space needed to save a checkpoint


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2.

    Chapter: chapters/12_your_voice.ipynb
    """


def default_checkpoint() -> Path:
    """Where ``train`` saves and ``predict`` looks by default: ``<cache>/audionet.pt``.

    ``<cache>`` is ``$EMOSER_CACHE_DIR`` or ``~/.cache/emoser``.

    Chapter: chapters/12_your_voice.ipynb
    """
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
                   help="train on the generated stand-in corpus (not TESS; for trying the "
                        "pipeline)")
    p.add_argument("--emotions", nargs="+", default=["happy", "sad"], metavar="EMOTION",
                   help="emotions to tell apart (default: happy sad)")
    p.add_argument("--speakers", nargs="+", default=["YAF"], metavar="SPEAKER",
                   help="speakers to use (default: YAF)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default: the course recipe's {RECIPE.epochs})")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, the weights and the "
                   "shuffling (default 0)")
    p.add_argument("--frame-length", type=int, default=DEFAULT_FRAME_LENGTH, metavar="SAMPLES",
                   help=f"samples per frame (default {DEFAULT_FRAME_LENGTH}, about 20 ms at "
                        f"{DEFAULT_RATE} Hz)")
    p.add_argument("--hop", type=int, default=None, metavar="SAMPLES",
                   help="samples between frame starts (default: the frame length, no overlap)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"Adam's peak learning rate (default {RECIPE.lr:g})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"batch size (default {RECIPE.batch_size})")
    p.add_argument("--clip-grad-norm", type=float, default=None, metavar="NORM",
                   help="clip each batch's gradient norm to NORM (default "
                        f"{RECIPE.clip_grad_norm}; 0 switches clipping off)")
    p.add_argument("--bucket", action="store_true",
                   help="group batches by length (faster, but on TESS happy/sad most batches then "
                        "hold "
                        "one class; off by default, see chapter 6)")
    p.add_argument("--test-size", type=float, default=0.3,
                   help="test fraction per class (default 0.3)")
    p.add_argument("--rate", type=int, default=DEFAULT_RATE, help="working sampling rate in Hz "
                   f"(default {DEFAULT_RATE})")
    p.add_argument("--device", default=None,
                   help="cpu or cuda (default: $EMOSER_DEVICE, else a GPU "
                   "when available)")
    p.add_argument("--out", metavar="CHECKPOINT", default=None,
                   help="where to save the checkpoint (default: <cache>/audionet.pt)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("predict", help="predict the emotion of an audio file",
                       description="Print the predicted emotion and the probability of every "
                                   "class.")
    p.add_argument("file", metavar="FILE", help="audio file (any rate, mono or stereo)")
    p.add_argument("--checkpoint", metavar="PATH", default=None,
                   help="checkpoint saved by 'train' (default: <cache>/audionet.pt)")

    p = sub.add_parser("download", help="download TESS into the cache (or --target)")
    p.add_argument("--target", metavar="FOLDER", default=None,
                   help="folder to download into (default: <cache>/tess)")

    p = sub.add_parser("verify", help="check a TESS copy against the published checksums")
    p.add_argument("folder", metavar="FOLDER")
    return parser


def _check_options(args) -> None:
    """Every numeric option of ``train``, checked before any work (one-line errors)."""
    from .nn.audionet import min_frame_length

    def need(ok: bool, option: str, what: str, value) -> None:
        if not ok:
            raise CliError(f"{option} must be {what}, got {value!r}")

    finite = math.isfinite
    if args.epochs is not None:
        need(1 <= args.epochs <= 10_000, "--epochs", "between 1 and 10000 (0 would save an "
             "untrained model)", args.epochs)
    if args.lr is not None:
        need(finite(args.lr) and 0 < args.lr <= 1, "--lr", "a number in (0, 1]", args.lr)
    if args.batch_size is not None:
        need(1 <= args.batch_size <= 10_000, "--batch-size", "between 1 and 10000",
             args.batch_size)
    if args.clip_grad_norm is not None:
        need(finite(args.clip_grad_norm) and args.clip_grad_norm >= 0, "--clip-grad-norm",
             "a finite number >= 0 (0 switches clipping off)", args.clip_grad_norm)
    need(finite(args.test_size) and 0 < args.test_size < 1, "--test-size",
         "a fraction between 0 and 1", args.test_size)
    need(MIN_RATE <= args.rate <= MAX_RATE, "--rate", f"between {MIN_RATE} and {MAX_RATE} Hz",
         args.rate)
    low = min_frame_length()
    need(low <= args.frame_length <= MAX_FRAME_LENGTH, "--frame-length",
         f"between {low} and {MAX_FRAME_LENGTH} samples", args.frame_length)
    if args.hop is not None:
        need(1 <= args.hop <= args.frame_length, "--hop", "between 1 and the frame length",
             args.hop)


def frames_bytes(lengths, frame_length: int, hop: int, itemsize: int = 4) -> int:
    """Bytes that framing waveforms of these lengths (samples) will take.

    Chapter: chapters/12_your_voice.ipynb
    """
    return sum(count_frames(int(n), frame_length, hop) for n in lengths) * frame_length * itemsize


def memory_limit() -> int:
    """Bytes the command line lets framing take: ``$EMOSER_MEMORY_LIMIT_MB``, else half the RAM.

    Chapter: chapters/12_your_voice.ipynb
    """
    env = os.environ.get("EMOSER_MEMORY_LIMIT_MB", "").strip()
    if env:
        return int(float(env) * 2**20)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _check_destination(out: Path) -> None:
    """Refuse before training when the checkpoint cannot be written there."""
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; give a file name, e.g. {out / 'audionet.pt'}")
    folder = out.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise CliError(f"cannot write the checkpoint {out}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"cannot write the checkpoint {out}: {folder} is not writable")
    if out.exists() and not os.access(out, os.W_OK):
        raise CliError(f"cannot write the checkpoint {out}: the file is not writable")
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise CliError(f"cannot write the checkpoint {out}: only {free // 2**20} MB free on "
                       f"{folder}")


def _save(run, out: Path, extra: dict) -> Path:
    """Save, or keep the trained model in the cache or a temporary folder and say where."""
    try:
        return run.save(out, **extra)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        for folder in (cache_dir() / "rescued", Path(tempfile.gettempdir())):
            rescue = folder / f"audionet-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.pt"
            try:
                run.save(rescue, **extra)
            except OSError:
                continue
            raise CliError(f"could not write {out}: {reason}; the trained model was saved "
                           f"to {rescue} instead") from exc
        raise CliError(f"could not write {out}: {reason}; the trained model could not be "
                       "saved anywhere") from exc


def _train(args) -> int:
    from .training import distributed
    from .training.runtime import device

    _check_options(args)
    out = Path(args.out) if args.out else default_checkpoint()
    _check_destination(out)
    try:
        dev = device(args.device)
    except RuntimeError as exc:  # a GPU was asked for but there is none
        raise CliError(str(exc)) from exc
    if not distributed.requested():
        return _train_run(args, out, dev, world=1)
    group = distributed.start(dev)  # torchrun: one process per GPU, or gloo on CPUs
    try:  # only rank 0 prints (errors still go to stderr) and saves
        with contextlib.redirect_stdout(sys.stdout if group.rank == 0 else io.StringIO()):
            return _train_run(args, out, group.device, world=group.world_size)
    finally:
        distributed.stop()


def _train_run(args, out: Path, dev, world: int) -> int:
    """Train, test and save (rank 0 saves); ``world``: processes training together."""
    from .data import load_tess
    from .experiments.pipeline import prepare, train_and_test
    from .training import distributed
    from .training.runtime import describe_device

    changes = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
               "clip_grad_norm": args.clip_grad_norm}
    recipe = RECIPE.replace(**{k: v for k, v in changes.items() if v is not None})
    if recipe.clip_grad_norm == 0:
        recipe = recipe.replace(clip_grad_norm=None)
    if args.bucket:
        recipe = recipe.replace(bucket=True)
    data = load_tess(emotions=tuple(args.emotions), speakers=tuple(args.speakers), path=args.data,
                     rate=args.rate, standin=args.standin)
    print(f"data: {data.source} from {data.root}")
    if data.is_standin:
        print("NOTE: training on the STAND-IN synthetic corpus, not TESS: the numbers below say "
              "nothing about emotion recognition. Get TESS with 'python -m emoser download'.")
    classes = tuple(data.classes)
    if len(classes) < 2:
        raise CliError(f"need at least two emotions with recordings, found {list(classes)}")
    hop = args.hop or args.frame_length
    need = frames_bytes([len(w) for w in data.waves], args.frame_length, hop)
    if need > memory_limit():
        raise CliError(f"framing with --frame-length {args.frame_length} and --hop {hop} would "
                       f"take about {need / 2**30:.1f} GB, more than the limit of "
                       f"{memory_limit() / 2**30:.1f} GB (EMOSER_MEMORY_LIMIT_MB)")
    prepared = prepare(data, args.seed, test_size=args.test_size, frame_length=args.frame_length,
                       hop=hop)
    labels = data.labels
    counts = ", ".join(f"{c} {int((labels == k).sum())}" for k, c in enumerate(classes))
    print(f"{len(labels)} recordings ({counts}); {len(prepared.train_idx)} for training, "
          f"{len(prepared.test_idx)} for testing; frames of {args.frame_length} samples, "
          f"hop {hop}; device {describe_device(dev)}")
    batches = f"batches of {recipe.batch_size}"
    if world > 1:
        per_process = distributed.shard_size(recipe.batch_size, world)
        batches += f" in total, {per_process} per process on {world} processes"
    adam = "Adam (AMSGrad)" if recipe.amsgrad else "Adam"
    print(f"recipe: {recipe.epochs} epochs, {adam} lr {recipe.lr:g} ({recipe.schedule}), "
          f"{batches}, gradient clipping {recipe.clip_grad_norm}")
    run = train_and_test(prepared, recipe=recipe, device=dev, log=print,
                         progress=not args.no_progress)
    result = run.evaluation
    print(f"test accuracy: {100 * result.accuracy:.2f}% ({len(prepared.test_idx)} recordings), "
          f"test loss {result.loss:.4f}")
    print(result.report(classes))
    extra = {"source": data.source, "is_standin": bool(data.is_standin),
             "emotions": list(args.emotions), "speakers": list(args.speakers),
             "split": {"test_size": args.test_size, "seed": args.seed}}
    if distributed.is_main():  # one process writes the checkpoint
        print(f"saved checkpoint: {_save(run, out, extra)}")
    return 0


def _predict(args) -> int:
    from .data.audio import load_audio
    from .experiments.inference import load_trained, predict_wave

    path = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    if not path.is_file():
        raise CliError(f"no checkpoint at {path}; train one first with "
                       f"'python -m emoser train --out {path}'")
    model, meta = load_trained(path)
    file = Path(args.file)
    with warnings.catch_warnings():  # decoders warn before the clear error below
        warnings.simplefilter("ignore")
        try:
            wave = load_audio(file, rate=int(meta["rate"]))
        except Exception as exc:  # any decoder failure is a property of the input file
            reason = getattr(exc, "reason", None) or str(exc)
            raise CliError(f"cannot read audio file {file}: {reason}") from exc
    try:
        probabilities = predict_wave(model, meta, wave)
    except ValueError as exc:
        raise CliError(f"{file}: {exc}") from exc
    classes = list(meta["classes"])
    print(f"predicted: {classes[int(probabilities.argmax())]}")
    for name, p in zip(classes, probabilities.tolist()):
        print(f"  {name}: {p:.4f}")
    if meta.get("is_standin"):
        print(f"note: {path} was trained on the stand-in corpus, not TESS", file=sys.stderr)
    return 0


def _download(args) -> int:
    from .data import download_tess
    from .data.config import download_source
    from .data.download import STALL_BYTES, STALL_SECONDS

    print(f"downloading TESS (about 270 MB) unless it is already there; the download gives up "
          f"when less than {STALL_BYTES >> 20} MiB arrives in {STALL_SECONDS:g} s", flush=True)
    try:
        url, archive = download_source()  # $EMOSER_TESS_URL, $EMOSER_TESS_ARCHIVE when set
        folder = download_tess(target=args.target, url=url, archive=archive)
    except DownloadError as exc:  # every download failure is one line, without traceback
        raise CliError(" ".join(str(exc).split())) from exc
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


def _one_line(exc: BaseException) -> str:
    """An exception as one line; an OSError names its file and the system's reason."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"  # the system's words for the cause
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


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
        print(f"emoser {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except DownloadError as exc:
        print(f"emoser {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"emoser {args.command}: error: out of memory (try shorter recordings, a larger "
              "--hop or fewer emotions)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emoser {args.command}: interrupted", file=sys.stderr)
        return 130
