"""An offline STAND-IN for TESS: a small generated corpus with TESS's naming and layout.

When no TESS copy can be had, the course still runs on this corpus: two synthetic speakers
(YAF, OAF) say "Say the word ..." for TESS's 200 words in all seven emotions. Speech comes from the
eSpeak NG library bundled in the ``espeakng-loader`` wheel (GPL-3.0; called through ctypes, not
vendored); if it cannot be loaded, a small glottal-pulse + formant synthesizer is used instead.
Each emotion is a prosody profile (speaking rate, mean pitch, pitch range) and a voice colour
(level in dB, spectral tilt), modelled on what TESS measures (chapters 1, 10, 11): sad is slower,
lower, flatter, 6 dB quieter and darker than happy; angry, fear and happy are the loudest,
neutral and sad the darkest. The older speaker (OAF) is recorded 11 dB quieter than YAF, as in
TESS, so her happy speech is quieter than YAF's sad speech. Per-utterance jitter is small, about
TESS's own spread (1.5 dB in level): the classes are learnable, and a speaker shift hurts.

Numbers measured on it are NOT TESS results; :func:`emoser.data.load_tess` labels them so.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ..common import DEFAULT_RATE
from . import _espeak
from ._espeak import Espeak, synthesize
from .cache import cache_dir
from .tess import EMOTIONS, SPEAKERS, normalize_emotion, normalize_speaker

__all__ = ["STANDIN_WORDS", "MARKER", "PROFILES", "COLOURS", "make_standin_corpus", "standin_info",
           "standin_source"]

def _tess_words() -> tuple[str, ...]:
    """TESS's 200 target words, from the published file names in ``tess-sha256.tsv``."""
    lines = Path(__file__).with_name("tess-sha256.tsv").read_text().splitlines()[1:]
    return tuple(sorted({line.split("\t")[1].split("_")[1].lower() for line in lines if line}))


#: Words of the stand-in corpus: TESS's own 200 words (from the published file names), so that
#: its tasks have TESS's sizes (YAF happy vs sad: 400 recordings) and the chapters' training
#: budgets, chosen on TESS, fit it too.
STANDIN_WORDS = _tess_words()
#: Marker file written into a generated corpus (its presence labels a folder as stand-in).
MARKER = "STANDIN.json"
_VERSION = 2  # 2: TESS-like levels, tilt and speaker gain, smaller jitter (1: overlapping classes)

# emotion -> mean (rate in words/min, pitch 0-100, pitch range 0-100, volume 0-200)
PROFILES = {
    "angry": (175, 50, 60, 135), "disgust": (140, 40, 50, 100), "fear": (195, 62, 30, 95),
    "happy": (185, 62, 70, 110), "neutral": (160, 46, 35, 100), "ps": (165, 66, 85, 110),
    "sad": (150, 36, 18, 88),
}
# emotion -> voice colour: (level in dB relative to happy, spectral tilt: > 0 brighter, < 0 darker)
# levels as TESS's YAF (chapter 11: happy -21.2, angry -23.7, fear -23.8, sad -27.6 dB RMS, ...)
COLOURS = {
    "angry": (-2.5, 0.6), "disgust": (-10.0, 0.1), "fear": (-2.6, 0.2), "happy": (0.0, 0.2),
    "neutral": (-9.0, -0.4), "ps": (-7.5, 0.2), "sad": (-6.4, -0.6),
}
_LEVEL_DB = -19.0  # speech RMS of YAF's happy utterances, dB re full scale (before silence)
_JITTER = (8.0, 3.0, 6.0, 0.0)  # per-utterance standard deviations of the prosody
_COLOUR_JITTER = (1.5, 0.05)  # ... and of the colour (TESS: about 1.5-2 dB within a class)
_LOW, _HIGH = (90, 5, 0, 30), (260, 95, 100, 190)  # limits of the eSpeak NG parameters we use
# speaker -> (eSpeak voice, pitch offset, rate offset, recording level in dB)
_SPEAKER_VOICES = {"YAF": ("en-us+f3", 6, 0, 0.0), "OAF": ("en-us+f4", -6, -10, -11.0)}


_VOWELS = {  # rough first three formants (Hz) of vowel letters
    "a": (800, 1250, 2600), "e": (550, 1900, 2600), "i": (350, 2300, 3000),
    "o": (550, 900, 2500), "u": (380, 1000, 2400), "y": (400, 2100, 2900),
}


def formant_say(word: str, rate: float, pitch: float, prange: float, volume: float,
                 voice_shift: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Fallback voice: glottal pulses with an F0 contour through formant resonators.

    Chapter: chapters/01_data.ipynb
    """
    from scipy.signal import lfilter

    syllables = ["ay", "e", "o", word]  # "say the word <word>"
    out = []
    f0_mean = 120 + 1.8 * pitch + voice_shift
    for k, syl in enumerate(syllables):
        vowel = next((c for c in syl if c in _VOWELS), "a")
        dur = (0.16 if k < 3 else 0.35) * 175.0 / rate
        n = int(dur * sr)
        t = np.arange(n) / sr
        accent = (prange / 100.0) * 0.45 * (1 if k in (0, 3) else -0.3)
        f0 = f0_mean * (1 + accent * np.sin(np.pi * t / dur)) * (1 - 0.08 * k / 3)
        phase = np.cumsum(f0 / sr)
        src = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
        src = lfilter([1.0], [1, -0.97], src)  # glottal roll-off
        for f, bw in zip(_VOWELS[vowel], (80, 100, 140)):
            r = np.exp(-np.pi * bw / sr)
            src = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r], src)
        env = np.minimum(1, np.minimum(t / 0.02, (dur - t) / 0.04))
        burst = rng.normal(0, 0.3, int(0.04 * sr)) * np.hanning(int(0.04 * sr))
        out += [burst, src * env]
    wave = np.concatenate(out)
    return (wave / (np.abs(wave).max() + 1e-9) * 0.5 * volume / 100).astype(np.float32)


def synthesis_engine(requested: str):
    """Return ("espeak", _Espeak) or ("formant", None).

    Chapter: chapters/01_data.ipynb
    """
    if requested not in ("auto", "espeak", "formant"):
        raise ValueError(f"engine must be 'auto', 'espeak' or 'formant', not {requested!r}")
    if requested == "formant":
        return "formant", None
    try:
        return "espeak", Espeak.get()
    except Exception as exc:  # library missing or unusable here
        if requested == "espeak":
            raise OSError(f"eSpeak NG (espeakng-loader) is not usable here: {exc}") from exc
        return "formant", None


def standin_info(folder: str | os.PathLike) -> dict | None:
    """Return the stand-in marker of ``folder`` (a dict), or None if it is not a stand-in corpus.

    Chapter: chapters/01_data.ipynb
    """
    try:
        return json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def standin_source(folder: str | os.PathLike | None = None) -> str:
    """The label printed with every result on the stand-in corpus.

    Chapter: chapters/01_data.ipynb
    """
    info = standin_info(folder) if folder is not None else None
    engine = (info or {}).get("engine_name", "eSpeak NG")
    return f"STAND-IN synthetic corpus ({engine}), not TESS"


def make_standin_corpus(folder: str | os.PathLike | None = None, *, words=None,
                        speakers=SPEAKERS, emotions=EMOTIONS, seed: int = 0,
                        rate: int = DEFAULT_RATE, engine: str = "auto",
                        force: bool = False) -> Path:
    """Generate (once) the offline stand-in corpus and return its folder.

    Layout and names follow TESS: ``<folder>/YAF_happy/YAF_back_happy.wav``. Generation is
    deterministic (``seed``); a folder already holding a corpus made with the same settings is
    reused. Prosody per emotion: happy is faster, higher and wider in pitch, louder; sad is
    slower, lower, narrower, quieter and darker (see :data:`PROFILES`, :data:`COLOURS`); every
    utterance gets a little random jitter, about as much as TESS varies within a class.

    Args:
        folder: where to build it (default ``<cache>/standin``, see :func:`cache_dir`).
        words: the target words (default :data:`STANDIN_WORDS`, TESS's 200 words).
        speakers / emotions: which groups to generate (default: both speakers, all emotions).
        seed (int): random seed of the prosody jitter.
        rate (int): sampling rate of the written files (default 24414, as TESS).
        engine (str): "auto" (eSpeak NG if usable, else formant synthesizer), "espeak", "formant".
        force (bool): rebuild even if an identical corpus exists.

    Returns:
        Path: the corpus folder (contains ``STANDIN.json`` describing it).

    Raises:
        FileExistsError: ``folder`` is a non-empty folder that is not a stand-in corpus.

    Chapter: chapters/01_data.ipynb
    """
    folder = Path(folder).expanduser() if folder is not None else cache_dir() / "standin"
    words = tuple(str(w).lower() for w in (STANDIN_WORDS if words is None else words))
    if not words or any(not w.isalpha() for w in words):
        raise ValueError(f"stand-in words must be non-empty alphabetic words, not {words!r}")
    speakers = tuple(normalize_speaker(s) for s in speakers)
    emotions = tuple(normalize_emotion(e) for e in emotions)
    kind, synth = synthesis_engine(engine)
    engine_name = f"eSpeak NG {synth.version}" if synth else "formant synthesizer"
    settings = {"version": _VERSION, "words": list(words), "speakers": list(speakers),
                "emotions": list(emotions), "seed": seed, "rate": rate, "engine": kind}
    info = standin_info(folder)
    if info is not None and not force and info.get("settings") == settings:
        return folder
    if folder.exists() and info is None and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty and holds no {MARKER}; "
                              "refusing to overwrite it with a stand-in corpus")

    # the prosody of every utterance, drawn in a fixed order from one seeded generator
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    plan, colours = [], []
    for speaker in speakers:
        voice, pitch_shift, rate_shift, gain_db = _SPEAKER_VOICES[speaker]
        for emotion in emotions:
            mean = np.array(PROFILES[emotion], float) + (rate_shift, pitch_shift, 0, 0)
            level, tilt = COLOURS[emotion]
            for word in words:
                jittered = mean + rng.normal(0, 1, 4) * _JITTER
                wpm, pitch, prange, vol = (round(float(v)) for v in np.clip(jittered, _LOW, _HIGH))
                plan.append((speaker, emotion, word, voice, pitch_shift, wpm, pitch, prange, vol))
                dl, dt = rng.normal(0, 1, 2) * _COLOUR_JITTER
                colours.append((_LEVEL_DB + gain_db + level + dl, float(np.clip(tilt + dt, -1, 1))))
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-build-", dir=folder.parent))
    try:
        if synth is not None:
            jobs = [(f"Say the word {p[2]}.", p[3], *p[5:]) for p in plan]
            voiced, isolated = _espeak_in_fresh_process(jobs, work)
        else:
            voiced, isolated = [], True
            for i, (_s, _e, word, _v, shift, wpm, pitch, prange, vol) in enumerate(plan):
                urng = np.random.default_rng([seed, i])
                voiced.append((formant_say(word, wpm, pitch, prange, vol, 3 * shift, 22050,
                                            urng), 22050))
        for i, ((speaker, emotion, word, *_), (wave, sr)) in enumerate(zip(plan, voiced)):
            sub = work / f"{speaker}_{emotion}"
            sub.mkdir(exist_ok=True)
            wave = _finish(wave, sr, rate, np.random.default_rng([seed, i, 1]), *colours[i])
            sf.write(sub / f"{speaker}_{word}_{emotion}.wav", wave, rate, subtype="PCM_16")
        (work / MARKER).write_text(json.dumps({
            "settings": settings, "engine_name": engine_name, "files": len(plan),
            "deterministic": isolated,
            "source": f"STAND-IN synthetic corpus ({engine_name}), not TESS",
            "note": "Generated by emoser.data.make_standin_corpus; not recordings of people."},
            indent=1))
        os.chmod(work, 0o755)  # mkdtemp made it private; the corpus is ordinary data
        if folder.exists():
            shutil.rmtree(folder)
        try:
            os.replace(work, folder)
        except OSError:  # another process finished the same build first
            if (standin_info(folder) or {}).get("settings") != settings:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = sum(p.stat().st_size for p in folder.rglob("*.wav"))
    print(f"emoser: generated the stand-in corpus once ({len(plan)} files, {size / 1e6:.1f} MB, "
          f"{time.perf_counter() - started:.1f} s, {engine_name}); cached in the emoser cache, "
          f"reused from now on", file=sys.stderr)
    return folder


def _espeak_in_fresh_process(jobs: list, work: Path) -> tuple[list, bool]:
    """Synthesize in a new interpreter (bit-for-bit reproducible, see :mod:`._espeak`); if no
    process can be started, synthesize here (same sound, not bit-identical between builds)."""
    jobs_file, out_file = work / "jobs.json", work / "voiced.npz"
    jobs_file.write_text(json.dumps(jobs))
    try:
        # run the file by path, from the work folder: nothing of the caller's is imported
        code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
        subprocess.run([sys.executable, "-c", code, str(Path(_espeak.__file__)), str(jobs_file),
                        str(out_file)], cwd=work, check=True, capture_output=True, timeout=600)
        with np.load(out_file) as z:
            samples, lengths, sr = z["samples"], z["lengths"], int(z["rate"])
        ints, isolated = np.split(samples, np.cumsum(lengths)[:-1]), True
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        ints, sr = synthesize(jobs)
        isolated = False
    finally:
        jobs_file.unlink(missing_ok=True)
        out_file.unlink(missing_ok=True)
    return [(w.astype(np.float32) / 32768.0, sr) for w in ints], isolated


def _finish(wave: np.ndarray, sr: int, rate: int, rng: np.random.Generator,
            level_db: float = -20.0, tilt: float = 0.0) -> np.ndarray:
    """Resample, colour (spectral tilt), set the speech level, add recording-like silence and a
    faint noise floor.

    ``tilt`` > 0 brightens (pre-emphasis ``x[n] - 0.9 tilt x[n-1]``), < 0 darkens (one-pole
    low-pass with pole ``0.9 |tilt|``); then the speech is scaled to RMS ``level_db`` dB re full
    scale (measured before the silence is added).
    """
    from scipy.signal import lfilter

    from .audio import resample

    if sr != rate:
        wave = resample(wave, sr, rate)
    wave = np.asarray(wave, np.float64)
    if tilt > 0:
        wave = lfilter([1.0, -0.9 * tilt], [1.0], wave)
    elif tilt < 0:
        a = 0.9 * -tilt
        wave = lfilter([1.0 - a], [1.0, -a], wave)
    wave = wave * (10 ** (level_db / 20) / (np.sqrt(np.mean(np.square(wave))) + 1e-12))
    wave = wave.astype(np.float32)
    lead, tail = (int(rng.uniform(a, b) * rate) for a, b in ((0.08, 0.35), (0.05, 0.25)))
    wave = np.concatenate([np.zeros(lead, np.float32), wave, np.zeros(tail, np.float32)])
    wave = wave + rng.normal(0, 3e-4, len(wave)).astype(np.float32)
    return np.clip(wave, -0.99, 0.99)
