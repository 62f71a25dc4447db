"""Input samples for calibration, fidelity checks and on-device validation.

`SyntheticDataset` (default, offline) draws plausible inputs per `ModelSpec.data_kind`;
`NpyDataset` is the hook for real data. Both give float32 arrays of shape (n, *input_shape) for
the splits "calibration", "heldout" and "validation", which never share a sample, and both can
check before any work that they will (`check`). No TensorFlow here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from unpu.cache import file_digest

if TYPE_CHECKING:
    from unpu.models import ModelSpec

SPLITS = ("calibration", "heldout", "validation")
ShapeLike = Union["ModelSpec", Sequence[int]]
NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats: what becomes float32 exactly enough


class DatasetError(ValueError):
    """The dataset cannot give the inputs the job needs; the message is one line."""


class DatasetFileMissing(DatasetError, FileNotFoundError):
    """The dataset's file does not exist."""


def content_key(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset's part of a cache key: its config, with its data file (`path`) replaced by the
    SHA-256 of the file's bytes: a file edited in place changes the key, a file moved does not."""
    key = dict(conf)
    path = key.pop("path", None)
    if path is not None:
        key["sha256"] = file_digest(path)
    return key


def first_non_finite(x: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first NaN or infinity in `x`, or None."""
    bad = np.argwhere(~np.isfinite(x))
    return tuple(int(i) for i in bad[0]) if len(bad) else None


def _split_index(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return SPLITS.index(split)


def _shape_and_kind(spec_or_shape: ShapeLike) -> tuple[tuple[int, ...], str | None]:
    shape = getattr(spec_or_shape, "input_shape", None)
    if shape is not None:
        return tuple(int(d) for d in shape), getattr(spec_or_shape, "data_kind", None)
    return tuple(int(d) for d in spec_or_shape), None


class SyntheticDataset:
    """Deterministic synthetic inputs, shaped like the real data of each kind.

    - image (H, W, C): values in [0, 1] with spatial structure: a smooth random field
      (bilinearly upsampled 4×4 noise per channel, partly shared across channels like natural
      colour), a random linear gradient and a little pixel noise; not white noise, so conv
      activations and int8 ranges resemble those of photos.
    - spectrogram (T, F[, 1]), e.g. KWS MFCCs: per-coefficient scale decaying with the
      coefficient index (c0 dominant, as in MFCCs), smooth in time (AR(1), rho = 0.8), plus a
      "word" burst in the middle of the window.
    - vibration (axes/samples, bins), e.g. the seed autoencoder's (3, 256): magnitude spectra
      in [0, 1] along the last axis: harmonics of a random shaft frequency over a 1/f noise
      floor, one row per axis/sample.
    - features (640,) = 5 frames × 128 log-mel bins (MLPerf AD): log-mel energies in dB: a
      spectral tilt falling 30–60 dB across the bins, a recording gain of ±10 dB, 2–6
      stationary machine tones and 3 dB frame noise.
    - a plain shape (no ModelSpec) or an unknown kind: N(0, 1).

    Sample i of a split comes from its own generator seeded with (seed, split, i), so streams
    are reproducible, prefix-stable (the first k of n samples do not depend on n) and the splits
    never share a sample.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def check(self, spec_or_shape: ShapeLike | None, needs: Sequence[tuple[str, int, str]]) -> None:
        """Nothing can go wrong: any number of finite samples of any shape."""

    def samples(self, spec_or_shape: ShapeLike, n: int, split: str) -> np.ndarray:
        shape, kind = _shape_and_kind(spec_or_shape)
        split_id = _split_index(split)
        draw = _GENERATORS.get(kind or "", _normal)
        out = np.empty((int(n), *shape), dtype=np.float32)
        for i in range(int(n)):
            rng = np.random.default_rng([self.seed, split_id, i])
            out[i] = draw(rng, shape)
        return out


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def _upsample(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a (h, w, c) grid to (size[0], size[1], c)."""
    h, w = grid.shape[:2]
    ys = np.linspace(0, h - 1, size[0])
    xs = np.linspace(0, w - 1, size[1])
    y0 = np.minimum(ys.astype(int), h - 2)
    x0 = np.minimum(xs.astype(int), w - 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _image(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) != 3:
        return _normal(rng, shape)
    h, w, c = shape
    shared = rng.standard_normal((4, 4, 1))
    field = _upsample(0.6 * shared + 0.4 * rng.standard_normal((4, 4, c)), (h, w))
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    gradient = (rng.uniform(-0.3, 0.3) * yy + rng.uniform(-0.3, 0.3) * xx)[..., None]
    img = 0.5 + 0.2 * field + gradient + 0.03 * rng.standard_normal(shape)
    return np.clip(img, 0.0, 1.0)


def _spectrogram(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    t, f = shape[0], int(np.prod(shape[1:]))
    scale = 8.0 / (1.0 + np.arange(f))  # MFCC-like decay with the coefficient index
    noise = rng.standard_normal((t, f))
    x = np.empty((t, f))
    x[0] = noise[0]
    for i in range(1, t):
        x[i] = 0.8 * x[i - 1] + 0.6 * noise[i]
    burst = np.exp(-0.5 * ((np.arange(t) - t / 2) / (t / 6)) ** 2)[:, None] * rng.standard_normal(f)
    return ((x + 2.0 * burst) * scale).reshape(shape)


def _vibration(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    bins = shape[-1]
    rows = int(np.prod(shape[:-1]))
    k = np.arange(1, bins + 1)
    fundamental = rng.uniform(4, bins / 8)
    out = np.empty((rows, bins))
    for r in range(rows):
        floor = 0.05 / np.sqrt(k) * (1 + 0.3 * rng.standard_normal(bins)) ** 2
        peaks = sum(
            rng.uniform(0.2, 1.0) / h * np.exp(-0.5 * ((k - h * fundamental) / 1.5) ** 2) for h in range(1, 6)
        )
        out[r] = floor + peaks
    return np.clip(out / out.max(), 0.0, 1.0).reshape(shape)


def _features(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    mels = 128 if shape[-1] % 128 == 0 else shape[-1]
    frames = int(np.prod(shape)) // mels
    tilt = np.linspace(0.0, rng.uniform(-60.0, -30.0), mels) + rng.uniform(-10.0, 10.0)
    tones = np.zeros(mels)
    for centre in rng.integers(5, mels - 5, size=rng.integers(2, 7)):
        tones += rng.uniform(5, 15) * np.exp(-0.5 * ((np.arange(mels) - centre) / 1.5) ** 2)
    spectrum = tilt + tones + 3.0 * rng.standard_normal((frames, mels))
    return spectrum.reshape(shape)


_GENERATORS = {"image": _image, "spectrogram": _spectrogram, "vibration": _vibration, "features": _features}


class NpyDataset:
    """Real samples from a .npy file or an .npz archive (array under `key`, default 'x').

    The array (N, *input_shape) of numbers is cut into three contiguous, disjoint slices in the
    order calibration | heldout | validation, sized by `fractions`. Every problem is a DatasetError
    naming the file: a split asked for more samples than its slice holds, a sample shape that is
    not the model input, an array of strings or objects, a sample with a NaN or an infinity.
    """

    def __init__(self, path: str, key: str = "x", fractions: Sequence[float] = (0.5, 0.25, 0.25)) -> None:
        self.path = os.fspath(path)
        self.key = key
        if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or sum(fractions) <= 0:
            raise DatasetError(f"fractions must be three non-negative numbers, got {list(fractions)}")
        self.fractions = tuple(float(f) / sum(fractions) for f in fractions)
        self._data: np.ndarray | None = None

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            self._data = self._load()
        return self._data

    def _load(self) -> np.ndarray:
        if not os.path.exists(self.path):
            raise DatasetFileMissing(f"dataset file not found: {self.path}")
        try:
            data = self._read()
        except DatasetError:
            raise
        except (ValueError, OSError, EOFError) as exc:  # numpy's many ways of saying "not an array file"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DatasetError(f"{self.path}: cannot read the array: {first}") from None
        if data.dtype.kind not in NUMERIC_KINDS:
            raise DatasetError(f"{self.path}: holds {_kind_name(data.dtype)} (dtype {data.dtype}), not numbers")
        if data.ndim < 1:
            raise DatasetError(f"{self.path}: holds a single value, not an array of samples")
        return data

    def _read(self) -> np.ndarray:
        if self.path.endswith(".npz"):
            with np.load(self.path, allow_pickle=False) as archive:
                if self.key not in archive:
                    raise DatasetError(f"{self.path}: no array {self.key!r} (has {', '.join(archive.files)})")
                return archive[self.key]
        if self.path.endswith(".npy"):
            return np.load(self.path, mmap_mode="r", allow_pickle=False)
        raise DatasetError(f"{self.path}: expected a .npy or .npz file")

    def bounds(self, split: str) -> tuple[int, int]:
        """[start, stop) of `split` in the array."""
        idx = _split_index(split)
        total = len(self.data)
        edges = [math.floor(total * sum(self.fractions[:i]) + 1e-9) for i in range(len(SPLITS) + 1)]
        return edges[idx], edges[idx + 1]

    def check(self, spec_or_shape: ShapeLike | None, needs: Sequence[tuple[str, int, str]]) -> None:
        """DatasetError unless every split in `needs` ((split, count, the setting that asks for it))
        holds `count` finite samples of the model's input shape (None: any shape)."""
        shape = tuple(self.data.shape[1:]) if spec_or_shape is None else spec_or_shape
        for split, count, setting in needs:
            self.samples(shape, count, split, setting)

    def samples(self, spec_or_shape: ShapeLike, n: int, split: str, setting: str = "") -> np.ndarray:
        shape, _ = _shape_and_kind(spec_or_shape)
        data = self.data
        if tuple(data.shape[1:]) != shape:
            raise DatasetError(f"{self.path}: samples have shape {tuple(data.shape[1:])}, model input is {shape}")
        start, stop = self.bounds(split)
        if stop - start < n:
            asked = f" ({setting})" if setting else ""
            raise DatasetError(f"{self.path}: split {split!r} has {stop - start} of {len(data)} samples, "
                               f"{n} requested{asked}")
        with np.errstate(over="ignore"):  # an overflow is reported below, as the sample it is in
            x = np.asarray(data[start : start + n], dtype=np.float32)
        bad = first_non_finite(x)  # as float32: 1e39 in a float64 file is an infinity here
        if bad is not None:
            index = (start + bad[0], *bad[1:])
            value = data[index]
            what = f"{value} overflows float32" if np.isfinite(value) else f"{value}"
            raise DatasetError(f"{self.path}: sample {index[0]} ({split} split) is not finite: {what} at index {list(index)}")
        return x


def _kind_name(dtype: np.dtype) -> str:
    return {"U": "strings", "S": "byte strings", "O": "Python objects", "c": "complex numbers", "V": "records",
            "M": "dates", "m": "time spans"}.get(dtype.kind, "values that are not numbers")
