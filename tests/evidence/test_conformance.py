"""Every registered loader against the contract of workbench.evidence.base.Loader and against the others' samples."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from workbench import safeio
from workbench.errors import MalformedEvidence
from workbench.evidence import REGISTRY, LoadContext, Loaded, Loader

from .conftest import SAMPLES

LOADERS = list(REGISTRY)
IDS = [loader.name for loader in LOADERS]
DTYPES = {"int": "Int64", "float": "float64", "bool": "boolean", "datetime": "datetime64[ns, UTC]"}


def test_every_builtin_has_a_sample():
    assert set(SAMPLES) == set(REGISTRY.names())


def test_names_unique_and_generic_last():
    names = REGISTRY.names()
    assert len(names) == len(set(names))
    assert names[-1] == "pipeline_log"


@pytest.mark.parametrize("loader", LOADERS, ids=IDS)
def test_declaration(loader: Loader):
    assert isinstance(loader.name, str) and loader.name.isidentifier() and loader.name.islower()
    assert loader.columns and all(
        t in {"str", "int", "float", "bool", "datetime", "object"} for t in loader.columns.values()
    )
    doc = type(loader).__doc__ or ""
    assert doc.strip(), f"{loader.name} has no docstring"
    assert "Columns:" in doc
    for column in loader.columns:
        assert f"{column} (" in doc, f"{loader.name}: column {column!r} not documented"


@pytest.mark.parametrize("loader", LOADERS, ids=IDS)
def test_own_sample(loader: Loader, sample_paths: dict[str, Path]):
    path = sample_paths[loader.name]
    assert loader.detect(path) is True
    assert REGISTRY.detect(path) is loader
    loaded = loader.load(path, LoadContext(relpath=SAMPLES[loader.name][0]))
    assert isinstance(loaded, Loaded)
    assert loaded.kind == loader.name and loaded.path == SAMPLES[loader.name][0]
    assert list(loaded.frame.columns) == list(loader.columns)
    assert len(loaded.frame) > 0
    assert loaded.warnings == []
    for column, desc in loader.columns.items():
        if desc in DTYPES:
            assert str(loaded.frame[column].dtype) == DTYPES[desc], f"{loader.name}.{column}"
    if "line" in loader.columns:
        assert loaded.frame["line"].min() >= 1


@pytest.mark.parametrize("loader", LOADERS, ids=IDS)
def test_empty_frame_matches_columns(loader: Loader):
    frame = loader.make_frame([])
    assert list(frame.columns) == list(loader.columns) and frame.empty


@pytest.mark.parametrize("loader", LOADERS, ids=IDS)
def test_others_samples_are_not_mine(loader: Loader, sample_paths: dict[str, Path]):
    claimed = [name for name, path in sample_paths.items() if name != loader.name and loader.detect(path)]
    assert claimed == []


@pytest.mark.parametrize("loader", LOADERS, ids=IDS)
def test_detect_never_raises(loader: Loader, tmp_path: Path):
    (tmp_path / "adir.log").mkdir()
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(7).randbytes(8192))  # noqa: S311
    noise_txt = tmp_path / "noise.txt"
    noise_txt.write_bytes(random.Random(8).randbytes(5000))  # noqa: S311
    assert loader.detect(tmp_path / "adir.log") is False
    assert loader.detect(tmp_path) is False
    assert loader.detect(tmp_path / "missing" / "frozen_deps.txt") is False
    assert loader.detect(empty) in (True, False)
    assert loader.detect(noise) is False
    assert loader.detect(noise_txt) is False
    assert loader.detect(Path("bad\x00name.txt")) is False


@pytest.mark.parametrize("loader", LOADERS, ids=IDS)
def test_hostile_input_gives_loaded_or_malformed(loader: Loader, sample_paths: dict[str, Path], tmp_path: Path):
    """Other loaders' samples, random bytes and truncations: a result with the right columns, or MalformedEvidence."""
    rng = random.Random(loader.name)  # noqa: S311 - reproducible noise
    inputs = [path.read_bytes() for path in sample_paths.values()]
    inputs += [rng.randbytes(3000), b"", b"\n\n", b"{}", b"[]", b'{"a": {"b": [' * 50000, b"\xff\xfe\x00\x00"]
    inputs += [data[: len(data) // 2] for data in inputs[: len(sample_paths)]]
    suffix = "".join(Path(SAMPLES[loader.name][0]).suffixes) or ".txt"
    for i, data in enumerate(inputs):
        path = tmp_path / f"in{i}{suffix}"
        path.write_bytes(data)
        try:
            loaded = loader.load(path, LoadContext(relpath=path.name))
        except MalformedEvidence as exc:
            assert exc.path == path.name
            continue
        assert list(loaded.frame.columns) == list(loader.columns)
        assert all(w.path == path.name for w in loaded.warnings)


@pytest.mark.parametrize("loader", LOADERS, ids=IDS)
def test_unreadable_file(loader: Loader, sample_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    """A file that cannot be opened (tests run as root, so opening is made to fail): detect False, load raises."""
    path = sample_paths[loader.name]
    real_open = safeio._open_fd  # every evidence open goes through workbench.safeio

    def refusing_open(name: str):
        if Path(name) == path:
            raise PermissionError(13, "Permission denied", name)
        return real_open(name)

    monkeypatch.setattr(safeio, "_open_fd", refusing_open)
    assert loader.detect(path) in (True, False)
    with pytest.raises(MalformedEvidence, match="Permission denied"):
        loader.load(path, LoadContext("x"))


def test_frames_are_dataframes(sample_paths: dict[str, Path]):
    for name, path in sample_paths.items():
        assert isinstance(REGISTRY.by_name(name).load(path, LoadContext("x")).frame, pd.DataFrame)
