"""Audio files as data: .wav files (one, or a folder with one subfolder per class) read with the
standard library's `wave`, mixed down to mono, resampled to the model's rate and cut into
windows of the model's input length, so a speech or sound model is judged on real sound.

Resampling uses scipy.signal.resample_poly (a polyphase filter with anti-aliasing); the
rate is the one in the spec (`audio:DIR:rate=16000`), else the value a sample-rate input is
held at (--hold sr=16000), else 16000.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from paretolab.core.measure.data import ArrayDataset, DataError, is_state
from paretolab.core.tensors import TensorSpec, format_shape

AUDIO_SUFFIXES = (".wav", ".wave")
DEFAULT_RATE = 16000
_RATE_NAMES = ("sr", "sample_rate", "sampling_rate", "samplerate", "rate")
_RECORD_HINT = "paretolab record MODEL -o inputs.npz -- python your_script.py"


def _wavs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def is_audio(path: Path) -> bool:
    """A .wav file, or a folder holding .wav files (directly or one subfolder per class) and no images."""
    if path.is_file():
        return path.suffix.lower() in AUDIO_SUFFIXES
    if not path.is_dir():
        return False
    from paretolab.core.measure.images import IMAGE_SUFFIXES

    folders = [path] + [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    files = [p.suffix.lower() for d in folders for p in d.iterdir() if p.is_file()]
    return any(s in AUDIO_SUFFIXES for s in files) and not any(s in IMAGE_SUFFIXES for s in files)


def opens_audio(spec: str) -> bool:
    """Whether a --data spec names audio: "audio:PATH[:rate=R][:hop=H]" or a .wav file or folder."""
    return spec.startswith("audio:") or is_audio(Path(spec).expanduser())


def parse_audio_spec(spec: str) -> tuple[Path, int | None, int | None]:
    """"audio:DIR:rate=16000:hop=8000" (or a bare path) -> (path, rate, hop)."""
    text = spec[len("audio:"):] if spec.startswith("audio:") else spec
    parts = text.split(":")
    options = {}
    while len(parts) > 1 and "=" in parts[-1]:  # options at the end; a Windows "C:\..." keeps its colon
        for item in parts.pop().split(","):
            key, _, value = item.partition("=")
            if key.strip() not in ("rate", "hop") or not value.strip().isdigit() or int(value) < 1:
                raise DataError(f"'{spec}': '{item}' is not rate=HZ or hop=SAMPLES; write e.g. audio:clips:rate=16000:hop=8000")
            options[key.strip()] = int(value)
    return Path(":".join(parts)).expanduser(), options.get("rate"), options.get("hop")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A PCM .wav (8, 16, 24 or 32 bit) as float32 mono in [-1, 1], and its sample rate."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise DataError(f"{path} is not a PCM .wav file ParetoLab can read ({exc}); "
                        "convert it to 16-bit PCM, e.g. ffmpeg -i in.wav -c:a pcm_s16le out.wav") from None
    raw = np.frombuffer(frames, np.uint8)
    if width == 1:  # 8-bit wav is unsigned
        samples = (raw.astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # 24-bit little-endian: sign-extend into int32
        triples = raw[: len(raw) // 3 * 3].reshape(-1, 3).astype(np.int32)
        value = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        samples = (np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)).astype(np.float32)
    elif width in (2, 4):
        ints = np.frombuffer(frames[: len(frames) // width * width], f"<i{width}")
        samples = (ints / float(1 << (8 * width - 1))).astype(np.float32)
    else:
        raise DataError(f"{path}: {8 * width}-bit samples are not supported; convert it to 16-bit PCM")
    samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32), rate


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`samples` at `target` Hz, through a polyphase filter that removes what the new rate cannot hold."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def windows(samples: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Windows of `length` every `hop` samples; a clip shorter than one window is padded with silence."""
    if len(samples) < length:
        return np.pad(samples, (0, length - len(samples)))[None]
    starts = range(0, len(samples) - length + 1, hop)
    return np.stack([samples[s:s + length] for s in starts])


def _signal_input(inputs: Sequence[TensorSpec]) -> TensorSpec:
    """The input that takes the sound: the one float input with samples in its last axis."""
    candidates = [s for s in inputs if s.dtype.startswith(("float", "int16")) and s.shape and s.value is None
                  and not is_state(s)]
    if not candidates:
        raise DataError("the model has no input that takes audio samples; give an .npz with one array per input")
    spec = candidates[0]
    if len(spec.sample_shape) > 1:
        raise DataError(f"input '{spec.name}' takes {format_shape(spec.shape)} (frames or features, not raw samples): "
                        f"ParetoLab cannot make them from .wav files the way your code does; record the inputs your "
                        f"own pipeline gives the model instead: {_RECORD_HINT}")
    return spec


def _rate(inputs: Sequence[TensorSpec], given: int | None) -> int:
    if given:
        return given
    held = [s.value for s in inputs if s.value is not None and s.name.lower() in _RATE_NAMES]
    return int(held[0]) if held else DEFAULT_RATE


def audio_dataset(spec: str, inputs: Sequence[TensorSpec]) -> ArrayDataset:
    """The windows of every .wav under the spec's path, shaped for the model's signal input; other
    inputs are held at their value (--hold) or start at zeros (a recurrent state). Labels come
    from class subfolders (root/yes/1.wav, root/no/2.wav)."""
    path, given_rate, hop = parse_audio_spec(spec)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; give a .wav file or a folder of them")
    signal = _signal_input(inputs) if inputs else TensorSpec("audio", ("batch", None), "float32")
    length = signal.sample_shape[0] if signal.sample_shape else None
    if not isinstance(length, int) or length < 1:
        raise DataError(f"input '{signal.name}' of the model takes {format_shape(signal.shape)}: a free number of samples; "
                        f"give the window length with --input-shape {signal.name}=1x16000")
    rate, hop = _rate(inputs, given_rate), hop or length
    files, file_labels, classes = _audio_files(path)
    clips, labels = [], []
    for file, label in zip(files, file_labels):
        samples, file_rate = read_wav(file)
        cut = windows(resample(samples, file_rate, rate), length, hop)
        clips.append(cut)
        labels += [label] * len(cut)
    signal_array = np.concatenate(clips)
    if signal.dtype == "int16":  # a model that takes raw PCM integers
        signal_array = np.clip(np.round(signal_array * 32768), -32768, 32767)
    signal_array = signal_array.astype(signal.dtype)
    count = len(signal_array)
    arrays = [_companion(s, count) if s is not signal else signal_array for s in inputs] or [signal_array]
    name = f"{path.name} ({len(files)} .wav, {count} windows of {length} at {rate} Hz, hop {hop})"
    label_array = np.asarray(labels, np.int64) if classes else None
    return ArrayDataset(name, arrays, label_array, batch_axes=[s.batch_axis for s in inputs] or None)


def _companion(spec: TensorSpec, count: int) -> np.ndarray:
    """An input beside the signal: its held value, or zeros for a state (as on a model's first call)."""
    dims = tuple(d for d in spec.sample_shape if isinstance(d, int))
    if len(dims) != len(spec.sample_shape):
        raise DataError(f"input '{spec.name}' is {format_shape(spec.shape)}; fix its shape with --input-shape")
    if spec.value is not None:
        return np.full((count, *dims), spec.value, spec.dtype)
    if is_state(spec):
        return np.zeros((count, *dims), spec.dtype)
    raise DataError(f"audio files give input samples, but the model also takes '{spec.name}' {format_shape(spec.shape)}; "
                    f"hold it at a value (--hold {spec.name}=VALUE) or record real inputs: {_RECORD_HINT}")


def _audio_files(path: Path) -> tuple[list[Path], list[int], list[str]]:
    """The .wav files and their class indices: one subfolder per class when there are two or more."""
    if path.is_file():
        return [path], [0], []
    class_dirs = [d for d in sorted(path.iterdir()) if d.is_dir() and not d.name.startswith(".") and _wavs_in(d)]
    if len(class_dirs) >= 2:
        labelled = [(f, i) for i, d in enumerate(class_dirs) for f in _wavs_in(d)]
        return [f for f, _ in labelled], [i for _, i in labelled], [d.name for d in class_dirs]
    files = _wavs_in(path) + (_wavs_in(class_dirs[0]) if class_dirs else [])
    if not files:
        raise DataError(f"{path} has no .wav files; put them in the folder (or one subfolder per class)")
    return files, [0] * len(files), []
