"""Minimal ctypes binding of the eSpeak NG library shipped in the ``espeakng-loader`` wheel.

eSpeak NG is GPL-3.0 software; emoser calls the library at run time and does not vendor it.
This file imports nothing from emoser, so it also runs as a script in a fresh process
(``python _espeak.py jobs.json out.npz``): the library keeps state between utterances (the phase
of its pitch flutter, ...), so only a fresh process makes a corpus bit-for-bit reproducible.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ENDPAUSE = 0x1000
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4  # espeak_PARAMETER


class Espeak:
    """Synchronous synthesis into NumPy arrays (one shared instance per process: :meth:`get`)."""

    _lock = threading.Lock()
    _instance = None

    def __init__(self):
        import espeakng_loader
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        cb_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.c_void_p)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [cb_type]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        # its noise generator (breathiness) is seeded from the clock: we fix it per utterance
        self._set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._set_seed is not None:
            self._set_seed.argtypes = [ctypes.c_long]
        data_path = espeakng_loader.get_data_path().encode()
        self.rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if self.rate <= 0:
            raise OSError("espeak_Initialize failed")
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = cb_type(collect)  # keep a reference: the library holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib

    @classmethod
    def get(cls) -> "Espeak":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def say(self, text: str, voice: str, rate: int, pitch: int, prange: int, volume: int,
            seed: int = 1) -> tuple[np.ndarray, int]:
        """Speak ``text``; returns (int16 samples, sampling rate)."""
        with self._lock:
            if self._set_seed is not None:
                self._set_seed(seed)
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise OSError(f"eSpeak NG has no voice {voice!r}")
            for param, value in ((_RATE, rate), (_VOLUME, volume), (_PITCH, pitch),
                                 (_RANGE, prange)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks = []
            data = text.encode()
            err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _ENDPAUSE,
                                        None, None)
            self.lib.espeak_Synchronize()
            if err != 0 or not self._chunks:
                raise OSError(f"espeak_Synth failed ({err}) for {text!r}")
            return np.concatenate(self._chunks).astype(np.int16), self.rate


def synthesize(jobs: list) -> tuple[list[np.ndarray], int]:
    """Speak ``(text, voice, rate, pitch, range, volume)`` jobs in order (seed = 1 + index)."""
    synth = Espeak.get()
    waves = [synth.say(text, voice, *params, seed=1 + i)[0]
             for i, (text, voice, *params) in enumerate(jobs)]
    return waves, synth.rate


def _main(jobs_file: str, out_file: str) -> None:
    with open(jobs_file) as fh:
        jobs = json.load(fh)
    waves, rate = synthesize(jobs)
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    np.savez(out_file, samples=np.concatenate(waves), lengths=lengths, rate=rate)


if __name__ == "__main__":
    _main(sys.argv[-2], sys.argv[-1])
