"""Audio files as --data: .wav read, mixed down, resampled and cut into the model's windows."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from paretolab.core.measure.audio import audio_dataset, read_wav
from paretolab.core.measure.data import DataError, open_dataset
from paretolab.core.tensors import TensorSpec


def write_wav(path: Path, signal: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> Path:
    """`signal` (float in [-1, 1]) as PCM of `width` bytes, copied into every channel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scaled = np.clip(signal, -1, 1 - 1e-6)
    if width == 1:
        raw = (scaled * 128 + 128).astype(np.uint8).tobytes()
        data = np.repeat(np.frombuffer(raw, np.uint8)[:, None], channels, 1).tobytes()
    elif width == 3:
        ints = (scaled * (1 << 23)).astype(np.int32)
        triples = np.stack([(ints >> s) & 0xFF for s in (0, 8, 16)], 1).astype(np.uint8)
        data = np.repeat(triples[:, None, :], channels, 1).tobytes()
    else:
        ints = (scaled * (1 << (8 * width - 1))).astype(f"<i{width}")
        data = np.repeat(ints[:, None], channels, 1).tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(data)
    return path


def tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


@pytest.mark.parametrize(("width", "channels"), [(1, 1), (2, 2), (3, 1), (4, 2)])
def test_every_pcm_width_reads_back_as_the_same_sound(tmp_path: Path, width: int, channels: int) -> None:
    signal = tone(440, 8000, 0.25)
    samples, rate = read_wav(write_wav(tmp_path / "a.wav", signal, 8000, width, channels))
    assert rate == 8000 and samples.dtype == np.float32 and samples.shape == signal.shape
    assert np.abs(samples - signal).max() < (0.02 if width == 1 else 1e-3)


def test_a_class_folder_becomes_labelled_windows_at_the_models_rate(tmp_path: Path) -> None:
    write_wav(tmp_path / "clips" / "yes" / "1.wav", tone(1000, 8000, 1.0), 8000)  # 8 kHz: resampled to 16 kHz
    write_wav(tmp_path / "clips" / "no" / "2.wav", tone(300, 44100, 0.5), 44100, 2, 2)
    spec = TensorSpec("audio", ("batch", 4000), "float32")
    data = open_dataset(str(tmp_path / "clips"), [spec])  # detected as audio by its .wav files
    # no/2.wav: 0.5 s -> 8000 samples -> 2 windows; yes/1.wav: 1 s -> 16000 samples -> 4 windows
    assert len(data) == 6 and data.labels is not None and list(data.labels) == [0, 0, 1, 1, 1, 1]
    window = data.load(np.array([2]))[0][0]
    peak = np.argmax(np.abs(np.fft.rfft(window))) * 16000 / 4000  # the 1 kHz tone survives resampling
    assert window.shape == (4000,) and abs(peak - 1000) <= 4
    hopped = open_dataset(f"audio:{tmp_path / 'clips' / 'yes'}:rate=8000:hop=2000", [spec])
    assert len(hopped) == 3 and hopped.labels is None  # 8000 samples at 8 kHz, windows of 4000 every 2000


def test_held_rate_and_state_inputs_come_along(tmp_path: Path) -> None:
    write_wav(tmp_path / "one.wav", tone(200, 16000, 0.1), 16000)  # 1600 samples: shorter than a window
    inputs = [TensorSpec("input", ("batch", 512), "float32"), TensorSpec("state", (2, "batch", 128), "float32", 1),
              TensorSpec("sr", (), "int64", None, value=8000)]
    data = audio_dataset(str(tmp_path / "one.wav"), inputs)  # the held sr: 8000 Hz, 800 samples
    signal, state, sr = data.load(np.arange(len(data)))
    assert len(data) == 1 and signal.shape == (1, 512) and state.shape == (2, 1, 128) and not state.any()
    assert int(sr) == 8000
    pcm = audio_dataset(str(tmp_path / "one.wav"), [TensorSpec("pcm", ("batch", 1600), "int16")])  # raw integers
    (samples,) = pcm.load(np.arange(1))
    assert samples.dtype == np.int16 and abs(int(samples.max()) - 16384) <= 2  # a 0.5 tone peaks at half of 32768


def test_models_that_take_frames_or_a_free_length_are_refused_in_one_line(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", tone(200, 16000, 0.1), 16000)
    with pytest.raises(DataError, match="record") as frames:
        open_dataset(str(tmp_path), [TensorSpec("mel", ("batch", 100, 80), "float32")])
    with pytest.raises(DataError, match="--input-shape wave=1x16000") as free:
        open_dataset(str(tmp_path), [TensorSpec("wave", ("batch", "samples"), "float32")])
    with pytest.raises(DataError, match="hold it at a value"):
        open_dataset(str(tmp_path), [TensorSpec("wave", ("batch", 400), "float32"), TensorSpec("gain", (), "float32", None)])
    assert "\n" not in str(frames.value) + str(free.value)


def test_an_image_folder_with_a_stray_wav_stays_an_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    from paretolab.core.measure.images import ImageFolderDataset

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "a.png")
    write_wav(tmp_path / "imgs" / "note.wav", tone(200, 8000, 0.1), 8000)
    assert isinstance(open_dataset(str(tmp_path / "imgs"), [TensorSpec("x", ("batch", 3, 8, 8), "float32")]),
                      ImageFolderDataset)


def test_a_wav_that_is_not_pcm_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(DataError, match="bad.wav is not a PCM .wav"):
        open_dataset(str(tmp_path / "bad.wav"), [TensorSpec("x", ("batch", 400), "float32")])
