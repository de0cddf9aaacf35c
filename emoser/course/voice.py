"""Trying a trained model on new recordings: the command line from Python,
a synthetic voice, uploads.

* :func:`run_cli` runs ``python -m emoser ...`` inside the current Python process, prints the
  command line and what it printed (errors included), and hands back the exit code and the
  parsed prediction (:class:`CliRun`).
* :func:`speak` makes a test utterance ("Say the word ...") with the eSpeak NG voice that also
  speaks the offline stand-in corpus, with happy-like or sad-like prosody. It is a voice the
  model never heard: predictions on it say nothing about TESS.
* :func:`record_or_upload` brings a recording of your own into the notebook: Colab's upload
  dialog in Google Colab, an ``ipywidgets.FileUpload`` button elsewhere.
* :func:`plot_probabilities` draws the class probabilities of several files side by side.

Chapter: chapters/12_your_voice.ipynb
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import cli
from ..common import DEFAULT_RATE, in_colab
from ..data.audio import resample
from ..data.cache import cache_dir
from ..data.standin import PROFILES, formant_say, synthesis_engine
from ..data.tess import normalize_emotion

__all__ = ["CliRun", "run_cli", "parse_prediction", "SPEAK_PROFILES", "speak", "Uploads",
           "record_or_upload", "to_wav"]


# --------------------------------------------------------------------------- the command line
@dataclass
class CliRun:
    """What one :func:`run_cli` call did.

    Attributes:
        argv (list[str]): the arguments after ``python -m emoser``.
        command (str): the command line as a reader would type it (paths shortened).
        returncode (int): 0 success, 1 ``verify`` found problems, 2 a user error.
        stdout (str): what the command printed (paths shortened).
        stderr (str): its error messages and notes (paths shortened).

    Chapter: chapters/12_your_voice.ipynb
    """

    argv: list[str]
    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def prediction(self) -> str | None:
        """The predicted class of a ``predict`` run, else None.

        Chapter: chapters/12_your_voice.ipynb
        """
        parsed = parse_prediction(self.stdout)
        return parsed[0] if parsed else None

    @property
    def probabilities(self) -> dict[str, float]:
        """Class probabilities of a ``predict`` run (empty for other runs or errors).

        Chapter: chapters/12_your_voice.ipynb
        """
        parsed = parse_prediction(self.stdout)
        return parsed[1] if parsed else {}


def parse_prediction(text: str) -> tuple[str, dict[str, float]] | None:
    """Read the output of ``python -m emoser predict``.

    Args:
        text (str): its standard output: ``predicted: sad`` then one ``  name: probability``
            line per class.

    Returns:
        tuple | None: ``(predicted class, {class: probability})``, or None if ``text`` holds
        no prediction.

    Chapter: chapters/12_your_voice.ipynb
    """
    predicted, probabilities = None, {}
    for line in text.splitlines():
        if line.startswith("predicted: "):
            predicted = line.removeprefix("predicted: ").strip()
        elif predicted is not None:
            match = re.fullmatch(r"\s+(\S+): ([0-9.eE+-]+)\s*", line)
            if match:
                probabilities[match.group(1)] = float(match.group(2))
    return (predicted, probabilities) if predicted is not None else None


def _aliases(extra: Mapping | None) -> list[tuple[str, str]]:
    """Path strings to replace in printed text, longest first (so nested folders win)."""
    pairs = {}
    for path, label in [(cache_dir(), "<cache>"), (Path.home(), "~"), *(extra or {}).items()]:
        path = Path(path).expanduser()
        for variant in {str(path), str(path.resolve()) if path.exists() else str(path)}:
            if len(variant) > 1:  # never replace "/" itself
                pairs[variant] = str(label)
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def _shorten(text: str, aliases: list[tuple[str, str]]) -> str:
    for path, label in aliases:
        text = text.replace(path, label)
    return text


@contextlib.contextmanager
def _working_folder(path):
    """``contextlib.chdir`` (Python 3.11+) for every Python the package supports."""
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(argv: Sequence, *, cwd: str | os.PathLike | None = None, aliases: Mapping | None = None,
            echo: bool = True) -> CliRun:
    """Run ``python -m emoser ARGS`` in this process, as a reader would in a terminal.

    The command runs through :func:`emoser.cli.main`, so nothing is lost between processes and
    its output is captured reliably (``!python -m emoser ...`` in a notebook works too). Paths
    in the printed command line and output are shortened: the cache folder becomes ``<cache>``,
    the home folder ``~``, and every ``aliases`` key its value (e.g. the TESS folder ``$TESS``),
    so a stored notebook names no folder of the machine that ran it.

    Args:
        argv (Sequence): arguments after ``python -m emoser`` (paths may be ``Path`` objects).
        cwd (str | PathLike | None): folder to run in, so relative paths are short (default:
            the current folder).
        aliases (Mapping | None): ``{path: label}`` replacements for printed text.
        echo (bool): print ``$ python -m emoser ...``, the output and the error messages
            (error messages go to standard output here, so the book shows them).

    Returns:
        CliRun: the exit code and what was printed.

    Chapter: chapters/12_your_voice.ipynb
    """
    argv = [str(a) for a in argv]
    short = _aliases(aliases)
    command = _shorten(shlex.join(["python", "-m", "emoser", *argv]), short)
    out, err = io.StringIO(), io.StringIO()
    with _working_folder(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse: --help, or a malformed command line
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    run = CliRun(argv, command, int(code), _shorten(out.getvalue(), short),
                 _shorten(err.getvalue(), short))
    if echo:
        print(f"$ {run.command}")
        if run.stdout:
            print(run.stdout, end="" if run.stdout.endswith("\n") else "\n")
        if run.stderr:
            print(run.stderr, end="" if run.stderr.endswith("\n") else "\n")
        if run.returncode != 0:
            print(f"(exit code {run.returncode})")
    return run


# --------------------------------------------------------------------------- a synthetic voice
#: eSpeak NG prosody per emotion: (words per minute, pitch 0-100, pitch range 0-100, volume 0-200),
#: the mean profiles of the stand-in corpus (:mod:`emoser.data.standin`), without its jitter.
SPEAK_PROFILES = dict(PROFILES)


def speak(text: str, emotion: str = "neutral", *, voice: str = "en-us+f2", rate: int = DEFAULT_RATE,
          pause: float = 0.25, seed: int = 0, engine: str = "auto") -> np.ndarray:
    """Say ``text`` with a synthetic voice and an emotion-like prosody.

    The speech comes from eSpeak NG (bundled in the ``espeakng-loader`` wheel, the engine of the
    stand-in corpus) with the speaking rate, pitch, pitch range and loudness of
    :data:`SPEAK_PROFILES`; where eSpeak NG cannot be loaded, a small formant synthesizer says
    the last word instead. It is not a person and not TESS: a model trained on TESS has never
    heard it.

    Args:
        text (str): what to say, e.g. ``"Say the word bath."``.
        emotion (str): a TESS emotion (``"happy"``, ``"sad"``, ...) choosing the prosody.
        voice (str): eSpeak NG voice (default ``"en-us+f2"``, a voice the stand-in corpus does
            not use either).
        rate (int): sampling rate of the result in Hz (default 24414, as TESS).
        pause (float): seconds of silence before and after (TESS files have some too).
        seed (int): seed of eSpeak NG's noise generator.
        engine (str): ``"auto"``, ``"espeak"`` or ``"formant"``.

    Returns:
        np.ndarray: mono float32 samples at ``rate``.

    Raises:
        ValueError: unknown emotion, empty text or a non-positive rate.
        OSError: ``engine="espeak"`` but eSpeak NG is not usable, or an unknown voice.

    Chapter: chapters/12_your_voice.ipynb
    """
    emotion = normalize_emotion(emotion)
    if not str(text).strip():
        raise ValueError("speak() needs some text to say")
    if int(rate) <= 0:
        raise ValueError(f"rate must be a positive number of samples per second, got {rate}")
    wpm, pitch, prange, volume = SPEAK_PROFILES[emotion]
    kind, synth = synthesis_engine(engine)
    if synth is not None:
        ints, sr = synth.say(str(text), voice, wpm, pitch, prange, volume, seed=1 + int(seed))
        wave = ints.astype(np.float32) / np.float32(32768.0)
    else:
        words = re.findall(r"[A-Za-z]+", str(text)) or ["word"]
        sr = 22050
        wave = formant_say(words[-1].lower(), wpm, pitch, prange, volume, 0.0, sr,
                            np.random.default_rng(seed))
    if sr != int(rate):
        wave = resample(wave, sr, int(rate))
    silence = np.zeros(int(round(pause * int(rate))), np.float32)
    return np.concatenate([silence, wave.astype(np.float32), silence])


# --------------------------------------------------------------------------- your own recording
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(name: str) -> str:
    """A plain file name: no folders, no spaces or odd characters
    (``my take 1.wav`` -> ``my_take_1.wav``)."""
    stem = _SAFE.sub("_", Path(str(name)).name).strip("._") or "recording"
    return stem


def _uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(name, content)`` of what an ``ipywidgets.FileUpload`` holds (ipywidgets 8 and 7)."""
    if not value:
        return []
    if isinstance(value, Mapping):  # ipywidgets 7: {name: {"metadata": ..., "content": bytes}}
        return [(str(name), bytes(item["content"])) for name, item in value.items()]
    return [(str(item["name"]), bytes(item["content"])) for item in value]  # 8: tuple of dicts


def to_wav(path: str | os.PathLike) -> Path:
    """Return ``path`` if soundfile can read it, else a WAV copy made with ``ffmpeg``.

    Phones often save AAC (``.m4a``) or other formats libsndfile cannot read; when ``ffmpeg``
    is installed (it is in Colab) the file is converted to ``<name>.wav`` beside it.

    Args:
        path (str | PathLike): an audio file.

    Returns:
        Path: a file that :func:`emoser.data.load_audio` can read (or ``path`` unchanged when
        it cannot be converted: ``predict`` then says what is wrong with it).

    Chapter: chapters/12_your_voice.ipynb
    """
    import soundfile as sf

    path = Path(path)
    try:
        sf.info(path)
        return path
    except Exception:  # not readable by libsndfile
        pass
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return path
    target = path.with_name(path.stem + ".wav") if path.suffix.lower() != ".wav" else \
        path.with_name(path.stem + "_converted.wav")
    result = subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", str(path), str(target)],
                            capture_output=True)
    return target if result.returncode == 0 and target.is_file() else path


@dataclass
class Uploads:
    """Recordings brought in by :func:`record_or_upload`.

    Attributes:
        folder (Path): where the files are saved.
        paths (list[Path]): the saved files (in Jupyter it grows as files are uploaded).
        widget: the ``ipywidgets`` upload box (None in Colab, whose dialog is its own).

    Chapter: chapters/12_your_voice.ipynb
    """

    folder: Path
    paths: list[Path] = field(default_factory=list)
    widget: object = None

    def _ipython_display_(self):
        from IPython.display import display

        if self.widget is not None:
            display(self.widget)
        else:
            print(self.summary())

    def summary(self) -> str:
        """One line naming the saved files (or saying that there are none yet).

        Chapter: chapters/12_your_voice.ipynb
        """
        if not self.paths:
            return "no recording uploaded yet"
        return "uploaded: " + ", ".join(p.name for p in self.paths)


def _save(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _safe_name(name)
    path.write_bytes(content)
    return to_wav(path)


def record_or_upload(folder: str | os.PathLike | None = None,
                     on_file: Callable[[Path], object] | None = None,
                     accept: str = "audio/*,.wav,.flac,.ogg,.mp3,.m4a,.aiff") -> Uploads:
    """Bring a recording of your own into the notebook.

    In Google Colab this opens Colab's upload dialog (``google.colab.files.upload``) and waits
    until you have picked your files; elsewhere it makes an ``ipywidgets.FileUpload`` button
    (display the returned object) that saves each file as soon as it arrives. Either way each
    file is saved in ``folder`` under a plain name, converted to WAV when soundfile cannot read
    it and ``ffmpeg`` can (see :func:`to_wav`), and passed to ``on_file``. (Colab's dialog also
    leaves a copy in the current folder, ``/content`` by default.)

    Args:
        folder (str | PathLike | None): where to save (default ``<cache>/uploads``).
        on_file (callable | None): called with the saved path of each file, e.g. to predict it.
        accept (str): file types the local upload button offers.

    Returns:
        Uploads: the folder, the saved paths and (outside Colab) the widget.

    Chapter: chapters/12_your_voice.ipynb
    """
    folder = Path(folder) if folder is not None else cache_dir() / "uploads"
    uploads = Uploads(folder=folder)

    def take(name: str, content: bytes) -> None:
        path = _save(folder, name, content)
        uploads.paths.append(path)
        if on_file is not None:
            on_file(path)

    if in_colab():
        from google.colab import files  # only exists in Colab

        for name, content in files.upload().items():
            take(name, content)
        return uploads

    import ipywidgets as widgets

    button = widgets.FileUpload(accept=accept, multiple=False, description="Upload a recording")
    output = widgets.Output()

    def changed(change) -> None:
        with output:
            for name, content in _uploaded_files(change["new"]):
                take(name, content)

    button.observe(changed, names="value")
    uploads.widget = widgets.VBox([button, output])
    return uploads


# --------------------------------------------------------------------------- the figure
