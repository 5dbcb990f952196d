"""The data set: determinism to the byte, shapes, balance, disjoint splits, SNRs, caching, loaders, config errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from nsdelib.common import ConfigError
from nsdelib.common.artifacts import ArtifactStore
from nsdelib.data import dataset
from nsdelib.data.dataset import DataConfig, build_dataset, load_dataset, make_loader, sample_table, stratified_split
from nsdelib.data.signals import CLASS_NAMES

SMALL = {"n_samples": 80, "image_rows": 32, "image_cols": 32}


@pytest.fixture(scope="module")
def data() -> dataset.SpectrogramData:
    return build_dataset(DataConfig.build(**SMALL), seed=0, progress=False)


def digest(data: dataset.SpectrogramData) -> str:
    h = hashlib.sha256()
    for split in data.splits().values():
        for tensor in (split.x, split.y, split.snr_db):
            h.update(tensor.numpy().tobytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_data(data: dataset.SpectrogramData) -> None:
    config = DataConfig.build(**SMALL)
    assert digest(build_dataset(config, seed=0, progress=False)) == digest(data)
    assert digest(build_dataset(config, seed=1, progress=False)) != digest(data)


def test_shapes_dtypes_and_range(data: dataset.SpectrogramData) -> None:
    for split in data.splits().values():
        n = len(split)
        assert split.x.shape == (n, 1, 32, 32) and split.x.dtype == torch.float32
        assert split.y.shape == (n,) and split.y.dtype == torch.int64
        assert split.snr_db.shape == (n,) and split.snr_db.dtype == torch.float32
        assert split.x.min() >= 0 and split.x.max() <= 1
        assert split.x.std() > 0.05  # images carry structure, not a constant
    assert data.freqs_hz.shape == (32,) and data.times_s.shape == (32,)
    assert data.class_names == list(CLASS_NAMES)


def test_classes_are_balanced_in_every_split(data: dataset.SpectrogramData) -> None:
    n_classes = len(data.class_names)
    sizes = {name: len(split) for name, split in data.splits().items()}
    assert sum(sizes.values()) == 80
    for split in data.splits().values():
        counts = torch.bincount(split.y, minlength=n_classes)
        assert (counts == counts[0]).all() and counts[0] > 0
    assert sizes["train"] > sizes["val"] == sizes["test"]


def test_splits_are_disjoint_and_cover_every_sample() -> None:
    labels = torch.arange(8).repeat_interleave(50)
    parts = stratified_split(labels, (0.7, 0.15, 0.15), torch.Generator().manual_seed(0))
    joined = torch.cat(parts)
    assert len(joined) == 400 and len(torch.unique(joined)) == 400
    assert [len(p) for p in parts] == [8 * 34, 8 * 8, 8 * 8]


def test_no_image_appears_in_two_splits(data: dataset.SpectrogramData) -> None:
    seen: dict[bytes, str] = {}
    for name, split in data.splits().items():
        for image in split.x:
            key = image.numpy().tobytes()
            assert seen.setdefault(key, name) == name


def test_snr_lies_within_the_configured_range() -> None:
    config = DataConfig.build(**SMALL, snr_db_range=(-3.0, 4.0))
    snr = torch.cat([s.snr_db for s in build_dataset(config, seed=0, progress=False).splits().values()])
    assert snr.min() >= -3.0 and snr.max() <= 4.0 and snr.max() - snr.min() > 3.0


def test_snr_knob_changes_what_the_images_show() -> None:
    quiet = build_dataset(DataConfig.build(**SMALL, snr_db_range=(-20.0, -20.0)), seed=0, progress=False)
    loud = build_dataset(DataConfig.build(**SMALL, snr_db_range=(20.0, 20.0)), seed=0, progress=False)
    assert loud.train.x.mean() > quiet.train.x.mean() + 0.02


def test_load_dataset_builds_once_then_reads_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, config = ArtifactStore(tmp_path), DataConfig.build(**SMALL)
    first = load_dataset(config, 0, store)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached data set should have been read, not rebuilt")

    monkeypatch.setattr(dataset, "build_dataset", refuse)
    second = load_dataset(config, 0, store)
    assert digest(first) == digest(second)
    assert second.config == config and second.class_names == first.class_names


def test_loader_order_is_fixed_by_its_seed(data: dataset.SpectrogramData) -> None:
    def order(seed: int) -> torch.Tensor:
        return torch.cat([y for _, y in make_loader(data.train, 7, shuffle=True, seed=seed)])

    batches = list(make_loader(data.train, 7, shuffle=False, seed=0))
    x, y = batches[0]
    assert x.shape == (7, 1, 32, 32) and y.shape == (7,)
    assert sum(len(b[1]) for b in batches) == len(data.train)
    assert torch.equal(order(3), order(3)) and not torch.equal(order(3), order(4))


def test_sample_table_lists_every_sample(data: dataset.SpectrogramData) -> None:
    table = sample_table(data)
    assert len(table) == 80 and set(table["split"]) == {"train", "val", "test"}
    assert table.groupby("class").size().eq(10).all()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"snr_db_range": (10.0, 0.0)}, r"'snr_db_range'.*low ≤ high"),
        ({"n_samples": 0}, r"'n_samples' = 0"),
        ({"classes": ("smps", "toaster")}, r"'classes'.*distinct classes among smps, "),
        ({"classes": ("smps", "smps")}, r"'classes'.*distinct classes"),
        ({"n_samples": 250}, r"'n_samples' = 250.*multiple of the number of classes \(8\)"),
        ({"n_samples": 16}, r"too few to give every class a sample in every split"),
        ({"snr_db_range": (-50.0, 0.0)}, r"'snr_db_range.0' = -50.0: Input should be greater than or equal to -40"),
        ({"class_overlap": 1.5}, r"'class_overlap' = 1.5"),
        ({"record_samples": 100}, r"'hop'.*window \(n_fft = 128\) is longer than the record \(100 samples\)"),
        ({"hop": 200}, r"'hop' = 200.*hop longer than the window"),
        ({"image_rows": 30}, r"'image_cols'.*image_rows = 30 must divide the STFT's 64 frequency bins"),
        ({"image_cols": 30}, r"'image_cols' = 30: .*must divide the STFT's 64 frames"),
        ({"colour": "red"}, r"unknown parameter 'colour'"),
    ],
)
def test_invalid_knobs_fail_with_one_clear_message(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        DataConfig.build(**changes)
    assert "\n" not in str(info.value)
