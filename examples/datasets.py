"""Offline real data sets for the sirnn end-to-end examples.

Every loader reads data that ships *inside* an installed PyPI package (no download at run
time) and returns a :class:`Dataset` of numpy arrays:

* ``X_train``, ``X_test``: ``float32``, already preprocessed (this is exactly what the float
  model, the calibration set and the fixed-point program consume);
* ``y_train``, ``y_test``: ``int64`` class indices in ``[0, len(classes))``;
* ``classes``: the original label of every class index;
* ``preprocessing``: a JSON-serialisable description of what was done to the raw data.

The train/test split is fixed (the archive's official split for the UEA/UCR sets, a seeded
stratified split for the faces), so every run and every machine sees the same arrays.

Data sets (install with ``pip install -e '.[data]'``, i.e. sktime and scikit-image):

``basic_motions``
    UEA BasicMotions (sktime's ``load_basic_motions``; 3-axis accelerometer + 3-axis gyroscope
    of a smart watch, 10 Hz). 40 train / 40 test, 4 classes (badminton, running, standing,
    walking). ``X`` has shape ``(N, T=100, D=6)`` (time major per sample). Each channel is
    standardised with the *training* mean and standard deviation (over all samples and
    timesteps).

``japanese_vowels``
    UEA JapaneseVowels (sktime's ``load_japanese_vowels``; 12 LPC cepstrum coefficients per
    frame, 9 speakers). 270 train / 370 test, 9 classes (speaker '1'..'9'). Sequences have 7–26
    (train) or 7–29 (test) frames. Each channel is standardised with the training mean/std
    computed over the real frames only, then every sequence is **zero-padded at the front**
    ("pre" padding, the default) to ``T = 29`` frames, so the real frames end at the last
    timestep and the last hidden state of an RNN follows the data directly. No sequence is
    truncated at T=29 (the longest has 29 frames). ``X`` has shape ``(N, 29, 12)``. A zero
    frame equals the training mean after standardisation.

``lfw_faces``
    scikit-image's ``skimage.data.lfw_subset()``: 200 grey images of 25×25 pixels in [0, 1];
    the first 100 are faces (label 1 = 'face'), the last 100 are not (label 0 = 'non-face').
    Deterministic stratified split with ``numpy.random.default_rng(0)``: 75 faces + 75
    non-faces for training, 25 + 25 for testing. ``X`` has shape ``(N, 1, 25, 25)`` (NCHW, one
    channel), pixel values kept in [0, 1] (no standardisation).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Dataset",
    "load_basic_motions",
    "load_japanese_vowels",
    "load_lfw_faces",
    "load",
    "DATASETS",
    "JAPANESE_VOWELS_T",
]

JAPANESE_VOWELS_T = 29


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample (without the batch dimension)."""
        return tuple(self.X_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> str:
        return (
            f"{self.name}: train {self.X_train.shape} test {self.X_test.shape} "
            f"classes {self.num_classes} ({', '.join(self.classes)})"
        )


def _encode_labels(y_train, y_test) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = sorted({str(v) for v in y_train} | {str(v) for v in y_test})
    index = {c: i for i, c in enumerate(classes)}
    ytr = np.array([index[str(v)] for v in y_train], dtype=np.int64)
    yte = np.array([index[str(v)] for v in y_test], dtype=np.int64)
    return ytr, yte, classes


def _sktime():
    try:
        import sktime.datasets as skd  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this data set ships inside sktime: pip install -e '.[data]' (or pip install sktime)"
        ) from exc
    return skd


def load_basic_motions() -> Dataset:
    skd = _sktime()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Xtr, ytr = skd.load_basic_motions(split="train", return_type="numpy3D")
        Xte, yte = skd.load_basic_motions(split="test", return_type="numpy3D")
    # sktime gives (N, channels, T); we use time major per sample: (N, T, channels).
    Xtr = np.transpose(np.asarray(Xtr, dtype=np.float64), (0, 2, 1))
    Xte = np.transpose(np.asarray(Xte, dtype=np.float64), (0, 2, 1))
    mean = Xtr.mean(axis=(0, 1))
    std = Xtr.std(axis=(0, 1))
    Xtr = ((Xtr - mean) / std).astype(np.float32)
    Xte = ((Xte - mean) / std).astype(np.float32)
    ytr_i, yte_i, classes = _encode_labels(ytr, yte)
    pre = {
        "layout": "N,T,D (time major per sample)",
        "standardise": "x = (raw - mean) / std per channel, train statistics",
        "mean": mean.tolist(),
        "std": std.tolist(),
        "channels": ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"],
        "split": "official UEA TRAIN/TEST (40/40)",
    }
    return Dataset("basic_motions", Xtr, ytr_i, Xte, yte_i, classes, pre,
                   "sktime.datasets.load_basic_motions (UEA BasicMotions .ts shipped in the sktime wheel)")


def _nested_to_list(X) -> list[np.ndarray]:
    """sktime nested_univ DataFrame -> list of (T_i, D) float64 arrays."""
    out = []
    ncols = X.shape[1]
    for i in range(len(X)):
        cols = [np.asarray(X.iloc[i, j], dtype=np.float64) for j in range(ncols)]
        out.append(np.stack(cols, axis=1))
    return out


def _pad(seqs: list[np.ndarray], T: int, padding: str) -> np.ndarray:
    D = seqs[0].shape[1]
    out = np.zeros((len(seqs), T, D), dtype=np.float32)
    for i, s in enumerate(seqs):
        if padding == "pre":
            s = s[-T:]  # keep the end if truncating
            out[i, T - len(s):] = s
        elif padding == "post":
            s = s[:T]
            out[i, : len(s)] = s
        else:
            raise ValueError(f"padding must be 'pre' or 'post', not {padding!r}")
    return out


def load_japanese_vowels(T: int = JAPANESE_VOWELS_T, padding: str = "pre") -> Dataset:
    skd = _sktime()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Xtr, ytr = skd.load_japanese_vowels(split="train", return_type="nested_univ")
        Xte, yte = skd.load_japanese_vowels(split="test", return_type="nested_univ")
    str_, ste = _nested_to_list(Xtr), _nested_to_list(Xte)
    frames = np.concatenate(str_, axis=0)
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    str_ = [(s - mean) / std for s in str_]
    ste = [(s - mean) / std for s in ste]
    lengths_tr = [len(s) for s in str_]
    lengths_te = [len(s) for s in ste]
    ytr_i, yte_i, classes = _encode_labels(ytr, yte)
    pre = {
        "layout": "N,T,D (time major per sample)",
        "standardise": "x = (raw - mean) / std per coefficient, train statistics over real frames",
        "mean": mean.tolist(),
        "std": std.tolist(),
        "T": T,
        "padding": f"zero padding ({padding}) to T frames, after standardisation; "
                   "'pre' = zeros first, real frames at the end",
        "length_range_train": [min(lengths_tr), max(lengths_tr)],
        "length_range_test": [min(lengths_te), max(lengths_te)],
        "truncated": int(sum(n > T for n in lengths_tr + lengths_te)),
        "split": "official UEA TRAIN/TEST (270/370)",
    }
    return Dataset("japanese_vowels", _pad(str_, T, padding), ytr_i, _pad(ste, T, padding), yte_i,
                   classes, pre,
                   "sktime.datasets.load_japanese_vowels (UEA JapaneseVowels .ts shipped in the sktime wheel)")


def load_lfw_faces(n_test_per_class: int = 25, seed: int = 0) -> Dataset:
    try:
        from skimage.data import lfw_subset
    except ImportError as exc:  # pragma: no cover
        raise ImportError(
            "this data set ships inside scikit-image: pip install -e '.[data]' (or pip install scikit-image)"
        ) from exc
    imgs = np.asarray(lfw_subset(), dtype=np.float32)  # (200, 25, 25), faces first
    y = np.array([1] * 100 + [0] * 100, dtype=np.int64)
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        test_idx.extend(rng.permutation(idx)[:n_test_per_class].tolist())
    test_mask = np.zeros(len(y), dtype=bool)
    test_mask[test_idx] = True
    X = imgs[:, None, :, :]
    pre = {
        "layout": "N,C=1,H=25,W=25 (NCHW)",
        "standardise": "none: pixel values in [0, 1] as shipped",
        "split": f"stratified, numpy.random.default_rng({seed}); {n_test_per_class} per class in test, "
                 "rest in train (images kept in original order within each split)",
        "labels": "1 = face (lfw_subset()[:100]), 0 = non-face (lfw_subset()[100:])",
    }
    return Dataset("lfw_faces", X[~test_mask], y[~test_mask], X[test_mask], y[test_mask],
                   ["non-face", "face"], pre,
                   "skimage.data.lfw_subset (lfw_subset.npy shipped in the scikit-image wheel)")


DATASETS = {
    "basic_motions": load_basic_motions,
    "japanese_vowels": load_japanese_vowels,
    "lfw_faces": load_lfw_faces,
}


def load(name: str) -> Dataset:
    try:
        return DATASETS[name]()
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {sorted(DATASETS)}") from None


if __name__ == "__main__":
    for n in DATASETS:
        print(load(n).summary())
