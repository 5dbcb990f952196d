"""The data set: balanced classes of recorded spectrograms, split, cached as an artifact, served to models.

One sample is made in four steps, each in its own module: draw the building's mains
(``wiring.draw_mains``), synthesise a source of the sample's class locked to it
(``signals.synthesise``), pass it through freshly drawn wiring with noise at a random SNR
(``wiring.inject_into_wiring``), and turn the record into a [0, 1] image (``spectrograms``).
Samples are made a chunk at a time (one class, up to ``CHUNK`` samples, one vectorised batch), each
chunk from its own random stream derived from the seed, the class name and the chunk's position:
the same seed gives the same bytes, and adding or removing a class leaves the others' samples as
they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from ..common.artifacts import ArtifactStore
from ..common.config import Section
from ..common.errors import ConfigError
from ..common.seeding import generator
from .signals import CLASS_NAMES, Timebase, source_class, synthesise
from .spectrograms import SpectrogramSpec, frames_for
from .wiring import Reception, WiringModel, draw_mains, inject_into_wiring

#: Samples generated in one vectorised batch. Part of the recipe: changing it changes the draws.
CHUNK = 250
SPLIT_NAMES = ("train", "val", "test")


class DataConfig(Section):
    """The data set's recipe: which classes, how many samples, the physics knobs and the image geometry."""

    # defaults are validated too: the cross-field checks must see a changed field's untouched partner
    model_config = ConfigDict(validate_default=True)

    classes: tuple[str, ...] = Field(default=CLASS_NAMES, min_length=2, description="signal classes, in label order")
    n_samples: int = Field(default=2000, ge=1, description="samples in all splits together (a multiple of the classes)")
    split_fractions: tuple[float, float, float] = Field(
        default=(0.70, 0.15, 0.15), description="train / validation / test fractions, stratified by class"
    )
    sample_rate_hz: float = Field(default=1e6, ge=1e6, le=1e7, description="sampling rate of the coupler")
    record_samples: int = Field(default=4160, ge=16, le=65536, description="length of one recorded waveform")
    n_fft: int = Field(default=128, ge=8, le=4096, description="STFT window length in samples (even)")
    hop: int = Field(default=64, ge=1, description="STFT hop in samples (at most n_fft)")
    image_rows: int = Field(default=64, ge=2, description="image height: frequency rows (divides n_fft/2)")
    image_cols: int = Field(default=64, ge=2, description="image width: time columns (divides the STFT frames)")
    level_range_db: tuple[float, float] = Field(
        default=(-30.0, 50.0), description="levels in dB re noise power mapped to 0 and 1 (clipped outside)"
    )
    snr_db_range: tuple[float, float] = Field(
        default=(-10.0, 15.0), description="difficulty: SNR of each sample drawn uniformly in this range (dB)"
    )
    class_overlap: float = Field(
        default=0.5, ge=0.0, le=1.0, description="difficulty: 0 typical class parameters, 1 extreme overlapping ones"
    )
    channel_variability: float = Field(
        default=0.7, ge=0.0, le=1.0, description="difficulty: strength of the wiring's echoes (0 direct path only)"
    )
    impulsive_share: float = Field(
        default=0.3, ge=0.0, le=0.9, description="difficulty: fraction of the noise power that is impulsive"
    )

    @field_validator("classes")
    @classmethod
    def _known_unique_classes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            try:
                source_class(name)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if len(set(value)) != len(value):
            raise ValueError("each class may appear only once")
        return value

    @field_validator("n_samples")
    @classmethod
    def _balanced_and_splittable(cls, value: int, info: ValidationInfo) -> int:
        classes = info.data.get("classes")
        if classes and value % len(classes):
            raise ValueError(
                f"must be a multiple of the number of classes ({len(classes)}) so that classes are balanced"
            )
        return value

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, value: tuple[float, float, float], info: ValidationInfo) -> tuple[float, float, float]:
        if min(value) <= 0 or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("train, validation and test fractions must all be positive and sum to 1")
        classes, n_samples = info.data.get("classes"), info.data.get("n_samples")
        if classes and n_samples and min(value) * n_samples / len(classes) < 0.5:
            raise ValueError(f"{n_samples} samples are too few to give every class a sample in every split")
        return value

    @field_validator("n_fft")
    @classmethod
    def _window_fits(cls, value: int, info: ValidationInfo) -> int:
        if value % 2:
            raise ValueError("the STFT window must have an even number of samples")
        record = info.data.get("record_samples")
        if record is not None and value > record:
            raise ValueError(
                f"the STFT window is longer than the signal (record_samples = {record}); use n_fft ≤ {record}"
            )
        return value

    @field_validator("hop")
    @classmethod
    def _no_gaps(cls, value: int, info: ValidationInfo) -> int:
        n_fft = info.data.get("n_fft")
        if n_fft is not None and value > n_fft:
            raise ValueError(f"a hop longer than the window (n_fft = {n_fft}) would skip samples; use hop ≤ {n_fft}")
        return value

    @field_validator("image_rows")
    @classmethod
    def _rows_divide_bins(cls, value: int, info: ValidationInfo) -> int:
        n_fft = info.data.get("n_fft")
        if n_fft is not None and (n_fft // 2) % value:
            raise ValueError(f"must divide the {n_fft // 2} frequency bins of the STFT (n_fft / 2)")
        return value

    @field_validator("image_cols")
    @classmethod
    def _cols_divide_frames(cls, value: int, info: ValidationInfo) -> int:
        record, n_fft, hop = (info.data.get(k) for k in ("record_samples", "n_fft", "hop"))
        if None not in (record, n_fft, hop) and frames_for(record, n_fft, hop) % value:
            raise ValueError(f"must divide the {frames_for(record, n_fft, hop)} STFT frames of a record")
        return value

    @field_validator("level_range_db")
    @classmethod
    def _increasing_levels(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] >= value[1]:
            raise ValueError("the level mapped to 0 must lie below the level mapped to 1")
        return value

    @field_validator("snr_db_range")
    @classmethod
    def _non_negative_span(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            span = value[1] - value[0]
            raise ValueError(f"the SNR span is negative ({span:g} dB); give (low, high) with low ≤ high")
        if min(value) < -40 or max(value) > 60:
            raise ValueError("SNRs must lie within [-40, 60] dB")
        return value

    def table(self) -> pd.DataFrame:
        """Every knob with its value and meaning, for display in the book."""
        rows = {
            name: {"value": getattr(self, name), "meaning": field.description}
            for name, field in type(self).model_fields.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index")

    @property
    def samples_per_class(self) -> int:
        """Samples of each class over all splits."""
        return self.n_samples // len(self.classes)

    @property
    def spectrogram(self) -> SpectrogramSpec:
        """The STFT and image settings."""
        return SpectrogramSpec(
            self.sample_rate_hz, self.record_samples, self.n_fft, self.hop,
            self.image_rows, self.image_cols, self.level_range_db,
        )

    @property
    def wiring(self) -> WiringModel:
        """The wiring's knobs."""
        return WiringModel(self.sample_rate_hz, self.snr_db_range, self.channel_variability, self.impulsive_share)


@dataclass(frozen=True)
class Split:
    """One split: images ``x [N, 1, F, T]`` float32 in [0, 1], labels ``y [N]`` int64, ``snr_db [N]`` float32."""

    x: torch.Tensor
    y: torch.Tensor
    snr_db: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class SpectrogramData:
    """The three splits with the axes of their images, and the config and seed that made them."""

    train: Split
    val: Split
    test: Split
    class_names: list[str]
    freqs_hz: torch.Tensor
    times_s: torch.Tensor
    config: DataConfig
    seed: int

    def splits(self) -> dict[str, Split]:
        """The splits by name, in the order train, val, test."""
        return {"train": self.train, "val": self.val, "test": self.test}


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the previous setting.

    The chunks' element-wise work gains little from a second thread and loses badly when the cores
    are shared (threads then wait on each other); one thread also makes the bytes independent of the
    number of cores, since no reduction is split differently.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class Recording:
    """One batch of a class as the coupler records it: the injected source and what arrives."""

    class_name: str
    source: torch.Tensor
    reception: Reception


def simulate(config: DataConfig, class_name: str, n: int, rng: torch.Generator) -> Recording:
    """Record ``n`` samples of ``class_name``: mains, source locked to it, wiring and noise."""
    mains = draw_mains(n, rng)
    theta = mains.phase(config.record_samples, config.sample_rate_hz)
    timebase = Timebase(config.sample_rate_hz, config.record_samples, theta)
    source = synthesise(class_name, timebase, config.class_overlap, rng)
    return Recording(class_name, source, inject_into_wiring(source, mains, config.wiring, rng))


def record_examples(config: DataConfig, seed: int, per_class: int = 1) -> dict[str, Recording]:
    """``per_class`` fresh recordings of every class (a stream of their own, not the data set's samples)."""
    with _one_torch_thread():
        return {name: simulate(config, name, per_class, generator(seed, "examples", name)) for name in config.classes}


def stratified_split(
    labels: torch.Tensor, fractions: tuple[float, float, float], rng: torch.Generator
) -> list[torch.Tensor]:
    """Indices of the train, val and test splits: each class divided by ``fractions``, then shuffled."""
    parts: list[list[torch.Tensor]] = [[], [], []]
    for label in torch.unique(labels):
        members = torch.nonzero(labels == label).squeeze(1)
        members = members[torch.randperm(len(members), generator=rng)]
        n_val, n_test = (int(f * len(members) + 0.5) for f in fractions[1:])
        bounds = [0, len(members) - n_val - n_test, len(members) - n_test, len(members)]
        for part, (lo, hi) in zip(parts, zip(bounds, bounds[1:])):
            part.append(members[lo:hi])
    joined = [torch.cat(part) for part in parts]
    return [idx[torch.randperm(len(idx), generator=rng)] for idx in joined]


def build_dataset(config: DataConfig, seed: int, progress: bool = True) -> SpectrogramData:
    """Generate the data set of ``config`` for ``seed`` (no cache; ``load_dataset`` caches it).

    A progress bar appears on stderr when the build takes longer than a few seconds.
    """
    with _one_torch_thread():
        return _build(config, seed, progress)


def _build(config: DataConfig, seed: int, progress: bool) -> SpectrogramData:
    spec = config.spectrogram
    per_class = config.samples_per_class
    # sample i belongs to class i // per_class, so the split is known before any sample is drawn and
    # each chunk's images go straight to their place in their split (no second copy of the data set)
    labels = torch.arange(len(config.classes)).repeat_interleave(per_class)
    parts = stratified_split(labels, config.split_fractions, generator(seed, "split"))
    owner, slot = torch.empty_like(labels), torch.empty_like(labels)
    for index, part in enumerate(parts):
        owner[part], slot[part] = index, torch.arange(len(part))
    splits = [
        Split(torch.empty(len(part), 1, spec.rows, spec.cols), labels[part], torch.empty(len(part))) for part in parts
    ]
    chunks = [(label, name, start) for label, name in enumerate(config.classes) for start in range(0, per_class, CHUNK)]
    for label, name, start in tqdm(chunks, desc="spectrograms", unit="chunk", delay=3.0, disable=not progress):
        n = min(CHUNK, per_class - start)
        recording = simulate(config, name, n, generator(seed, "dataset", name, start))
        images = spec.image(recording.reception.received)
        rows = torch.arange(label * per_class + start, label * per_class + start + n)
        for index, split in enumerate(splits):
            mine = owner[rows] == index
            split.x[slot[rows[mine]]] = images[mine]
            split.snr_db[slot[rows[mine]]] = recording.reception.snr_db[mine]
    train, val, test = splits
    return SpectrogramData(train, val, test, list(config.classes), spec.freqs_hz(), spec.times_s(), config, seed)


def _to_payload(data: SpectrogramData) -> dict[str, Any]:
    """Plain tensors and strings, loadable with ``torch.load(weights_only=True)``."""
    payload: dict[str, Any] = {
        "class_names": list(data.class_names), "freqs_hz": data.freqs_hz, "times_s": data.times_s,
    }
    for name, split in data.splits().items():
        payload.update({f"{name}.x": split.x, f"{name}.y": split.y, f"{name}.snr_db": split.snr_db})
    return payload


def _from_payload(payload: dict[str, Any], config: DataConfig, seed: int) -> SpectrogramData:
    splits = {
        name: Split(payload[f"{name}.x"], payload[f"{name}.y"], payload[f"{name}.snr_db"]) for name in SPLIT_NAMES
    }
    return SpectrogramData(**splits, class_names=list(payload["class_names"]), freqs_hz=payload["freqs_hz"],
                           times_s=payload["times_s"], config=config, seed=seed)


def load_dataset(config: DataConfig, seed: int, store: ArtifactStore) -> SpectrogramData:
    """The data set of ``config`` for ``seed``, built once and then read from ``store``."""
    key = {"data": config.model_dump(mode="json"), "seed": seed}
    payload = store.scoped(__name__).fetch("dataset", key, lambda: _to_payload(build_dataset(config, seed)))
    return _from_payload(payload, config, seed)


def make_loader(split: Split, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """Batches ``(x, y)`` of a split; with ``shuffle`` the order is fixed by ``seed``."""
    if batch_size < 1:
        raise ConfigError(f"invalid loader: parameter 'batch_size' = {batch_size!r}: must be at least 1")
    return DataLoader(
        TensorDataset(split.x, split.y), batch_size=batch_size, shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
    )


def sample_table(data: SpectrogramData) -> pd.DataFrame:
    """One row per sample (split, class, SNR): the long format seaborn plots from."""
    frames = [
        pd.DataFrame(
            {"split": name, "class": [data.class_names[i] for i in split.y.tolist()], "snr_db": split.snr_db.numpy()}
        )
        for name, split in data.splits().items()
    ]
    return pd.concat(frames, ignore_index=True)
