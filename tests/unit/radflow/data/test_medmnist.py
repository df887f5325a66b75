"""MedMNIST .npz → DICOM: 2D CR images and 3D CT series, labels.csv with splits, clear errors on bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_voi_lut

from radflow.data.medmnist import import_medmnist
from radflow.errors import InputError


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _labels(root: Path) -> list[dict[str, str]]:
    with (root / "labels.csv").open() as handle:
        return list(csv.DictReader(handle))


def _by_study(root: Path) -> dict[str, list[pydicom.Dataset]]:
    out: dict[str, list[pydicom.Dataset]] = {}
    for path in sorted(root.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        out.setdefault(ds.StudyInstanceUID, []).append(ds)
    return out


@pytest.fixture
def images_2d(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return _npz(
        tmp_path / "tiny2d.npz",
        train_images=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        train_labels=np.array([[0], [1], [1], [0], [1]], dtype=np.uint8),
        val_images=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        val_labels=np.array([[1], [0]], dtype=np.uint8),
        test_images=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        test_labels=np.array([[0], [0], [1]], dtype=np.uint8),
    )


def test_2d_images_become_windowed_cr_images_with_labels_and_splits(images_2d: Path, tmp_path: Path) -> None:
    summary = import_medmnist(images_2d, tmp_path / "out")
    arrays = np.load(images_2d)
    rows = _labels(tmp_path / "out")
    assert [row["split"] for row in rows] == ["train"] * 5 + ["val"] * 2 + ["test"] * 3
    assert [int(row["label"]) for row in rows] == [0, 1, 1, 0, 1, 1, 0, 0, 0, 1]
    studies = _by_study(tmp_path / "out")
    assert len(studies) == 10 and summary.files == 10 and summary.positives == 5
    expected = np.concatenate([arrays["train_images"], arrays["val_images"], arrays["test_images"]])
    for i, row in enumerate(rows):
        (ds,) = studies[row["StudyInstanceUID"]]
        assert (ds.Modality, ds.PhotometricInterpretation, ds.BitsStored) == ("CR", "MONOCHROME2", 8)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1" and "PixelSpacing" in ds
        assert ds.PatientName == f"MEDMNIST^{i:06d}" and ds.PatientID
        assert np.array_equal(ds.pixel_array, expected[i])
    windowed = apply_voi_lut(np.array([[0, 255]], dtype=np.uint8), ds)
    assert windowed[0, 0] <= 0.5 and windowed[0, 1] >= 254.5  # 0..255 maps onto the whole output range
    assert "train 5, val 2, test 3" in summary.describe()


def test_import_is_deterministic(images_2d: Path, tmp_path: Path) -> None:
    import_medmnist(images_2d, tmp_path / "a")
    import_medmnist(images_2d, tmp_path / "b")
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert a == b


def test_rgb_is_converted_to_grayscale_and_said_so(tmp_path: Path) -> None:
    rgb = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    rgb[..., 1] = 200
    npz = _npz(tmp_path / "rgb.npz", train_images=rgb, train_labels=np.array([[0], [1]]))
    summary = import_medmnist(npz, tmp_path / "out")
    ds = next(iter(_by_study(tmp_path / "out").values()))[0]
    assert ds.pixel_array.shape == (4, 4) and int(ds.pixel_array[0, 0]) == round(0.587 * 200)
    assert "grayscale" in summary.describe()


def test_3d_volumes_become_ct_series_with_consistent_geometry(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    volumes = rng.random((2, 6, 8, 8)).astype(np.float32)  # floats in [0, 1] are scaled to 0..255
    npz = _npz(tmp_path / "vol.npz", train_images=volumes, train_labels=np.array([[1], [0]]))
    summary = import_medmnist(npz, tmp_path / "out")
    assert summary.kind == "3d" and summary.files == 12
    rows = _labels(tmp_path / "out")
    for row, volume in zip(rows, volumes, strict=True):
        series = sorted(
            _by_study(tmp_path / "out")[row["StudyInstanceUID"]], key=lambda ds: ds.InstanceNumber
        )
        assert len(series) == 6 and len({ds.SeriesInstanceUID for ds in series}) == 1
        assert len({ds.SOPInstanceUID for ds in series}) == 6
        z = [float(ds.ImagePositionPatient[2]) for ds in series]
        assert np.allclose(np.diff(z), float(series[0].SliceThickness))
        assert all(
            ds.Modality == "CT" and ds.RescaleIntercept == 0 and ds.PixelRepresentation == 1 for ds in series
        )
        stored = np.stack([ds.pixel_array for ds in series])
        assert np.array_equal(stored, np.rint(volume * 255).astype(np.int16))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 4, 4))}, "no <split>_images"),
        ({"train_images": np.zeros((2, 4)), "train_labels": np.zeros((2, 1))}, "train_images has shape"),
        ({"train_images": np.zeros((2, 4, 4)), "train_labels": np.zeros((3, 1))}, "train_labels has shape"),
        ({"train_images": np.zeros((2, 4, 4)), "train_labels": np.zeros((2, 3))}, "multi-label"),
    ],
)
def test_bad_arrays_raise_one_sentence(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        import_medmnist(_npz(tmp_path / "bad.npz", **arrays), tmp_path / "out")
    assert str(err.value).count(". ") == 0 and "\n" not in str(err.value)


def test_not_an_npz_and_missing_file_are_input_errors(tmp_path: Path) -> None:
    text = tmp_path / "labels.npz"
    text.write_text("not numpy")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        import_medmnist(text, tmp_path / "out")
    with pytest.raises(InputError, match="does not exist"):
        import_medmnist(tmp_path / "missing.npz", tmp_path / "out")


def test_refuses_to_overwrite_a_foreign_folder(images_2d: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not a MedMNIST import"):
        import_medmnist(images_2d, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").exists()


def test_breastmnist_corpus_file_imports(medmnist_corpus: Path, tmp_path: Path) -> None:
    npz = medmnist_corpus / "breastmnist_trainval.npz"
    summary = import_medmnist(npz, tmp_path / "breast")
    rows = _labels(tmp_path / "breast")
    arrays = np.load(npz)
    assert summary.images == {"train": 546, "val": 78} and len(rows) == 624 == summary.files
    assert sum(int(row["label"]) for row in rows) == int(
        arrays["train_labels"].sum() + arrays["val_labels"].sum()
    )
    last = sorted((tmp_path / "breast" / "val").rglob("*.dcm"))[-1]
    assert np.array_equal(pydicom.dcmread(last).pixel_array, arrays["val_images"][-1])


def test_a_train_val_file_and_a_test_file_import_as_one_cohort(images_2d: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from radflow.cli import app

    arrays = dict(np.load(images_2d))
    test = {k: arrays.pop(k) for k in ("test_images", "test_labels")}
    trainval, held_out = _npz(tmp_path / "x_trainval.npz", **arrays), _npz(tmp_path / "x_test.npz", **test)
    done = CliRunner().invoke(app, ["import-medmnist", str(held_out), str(trainval), str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    assert "x_test.npz + x_trainval.npz" in done.output and "train 5, val 2, test 3" in done.output
    rows = _labels(tmp_path / "out")
    assert [row["split"] for row in rows] == ["train"] * 5 + ["val"] * 2 + ["test"] * 3  # split order
    assert [int(row["label"]) for row in rows] == [0, 1, 1, 0, 1, 1, 0, 0, 0, 1]
    studies = _by_study(tmp_path / "out")
    assert len(studies) == 10
    for row, image in zip(rows[7:], test["test_images"], strict=True):
        (ds,) = studies[row["StudyInstanceUID"]]
        np.testing.assert_array_equal(ds.pixel_array, image)
    with pytest.raises(InputError, match=r"split 'train' is in both x_trainval\.npz and tiny2d\.npz"):
        import_medmnist([trainval, images_2d], tmp_path / "again")
    volumes = _npz(
        tmp_path / "v.npz", test_images=np.zeros((1, 4, 8, 8), np.uint8), test_labels=np.zeros((1, 1))
    )
    with pytest.raises(InputError, match="different kinds of image"):
        import_medmnist([trainval, volumes], tmp_path / "again")
