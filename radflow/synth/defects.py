"""Real-world defects planted once per cohort, and the record of what went where (defects.json)."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radflow.synth.ct import INTERCEPT, slice_dataset
from radflow.synth.files import BASIC_TEXT_SR, make_uid
from radflow.synth.headers import instance_dataset, series_info
from radflow.synth.plan import Study
from radflow.synth.studies import SeriesFiles


@dataclass(frozen=True)
class Defect:
    """One planted defect: its files (relative paths) and what the cleaning stage should make of them."""

    kind: str
    paths: list[str]
    disposition: str
    reasons: list[str] = field(default_factory=list)
    detail: str = ""


def pick_targets(seed: int, studies: list[Study]) -> dict[str, Study]:
    """Which study hosts which defect: four radiograph roles (first two distinct), two distinct CT studies."""
    rng = np.random.default_rng([seed, 9001])
    rad = [studies[int(i)] for i in rng.permutation(len(studies)) if studies[int(i)].kind == "radiograph"]
    ct = [studies[int(i)] for i in rng.permutation(len(studies)) if studies[int(i)].kind == "ct"]
    roles = ("duplicate", "no_extension", "truncated", "non_image")
    targets = {role: rad[i % len(rad)] for i, role in enumerate(roles)}
    return targets | {"localizer": ct[0], "missing_slice": ct[1]}


def duplicate_instance(series: SeriesFiles) -> Defect:
    """The same instance written a second time under another name (identical bytes)."""
    path, ds = series.files[0]
    copy_path = path.replace(".dcm", "_copy.dcm")
    series.files.append((copy_path, ds))
    detail = "Identical copies of one SOP instance: one is accepted and the other deduplicated."
    return Defect("duplicate_instance", [path, copy_path], "deduplicated", [], detail)


def nested_without_extension(series: SeriesFiles) -> Defect:
    """A valid image moved into a nested folder under a name with no extension."""
    path = f"{series.folder}/nested/deeper/IM0001"
    series.files[0] = (path, series.files[0][1])
    return Defect(
        "no_extension_nested", [path], "accepted", [], "A valid image in a nested folder, no extension."
    )


def missing_slice(series: SeriesFiles) -> Defect:
    """Drop the middle slice of a CT series, leaving a gap of twice the spacing."""
    k = len(series.files) // 2
    del series.files[k]
    paths = [path for path, _ in series.files]
    detail = f"Slice {k} of {len(paths) + 1} (spatial order) was never written."
    return Defect("missing_slice", paths, "quarantined", ["MISSING_SLICES"], detail)


def truncated_copy(seed: int, series: SeriesFiles) -> tuple[SeriesFiles, Defect]:
    """A repeat exposure in its own series whose file is later cut short inside the pixel data."""
    study = series.study
    info = series_info(seed, study, 2, series.info.modality, "PA REPEAT")
    ds = copy.deepcopy(series.files[0][1])
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = info.uid, info.number, info.description
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = make_uid(seed, "truncated", study.folder)
    extra = SeriesFiles(study, info, [(f"{study.folder}/series2/IM0001.dcm", ds)])
    detail = "Pixel data cut to half its declared length."
    return extra, Defect(
        "truncated", [extra.files[0][0]], "quarantined", ["UNREADABLE", "DECODE_FAILED"], detail
    )


def text_report(seed: int, study: Study) -> tuple[SeriesFiles, Defect]:
    """A Basic Text SR (a report, no pixel data) in its own series of a radiograph study."""
    info = series_info(seed, study, 9, "SR", "REPORT")
    ds = instance_dataset(seed, study, info, BASIC_TEXT_SR, 1)
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic imaging report")])
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
    item.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
    item.TextValue = "Chest radiograph reviewed; see image."
    ds.ContentSequence = Sequence([item])
    extra = SeriesFiles(study, info, [(f"{study.folder}/series9/SR0001.dcm", ds)])
    return extra, Defect(
        "non_image",
        [extra.files[0][0]],
        "quarantined",
        ["NON_IMAGE_SOP", "NO_PIXEL_DATA"],
        "A Basic Text SR report without pixel data.",
    )


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def localizer(seed: int, series: SeriesFiles) -> tuple[SeriesFiles, Defect]:
    """AP and lateral scout images (ImageType ...\\LOCALIZER) projected from the study's CT volume."""
    study, geometry, volume = series.study, series.geometry, series.volume
    assert geometry is not None and volume is not None
    info = series_info(seed, study, 99, "CT", "TOPOGRAM")
    extra = SeriesFiles(study, info)
    top = geometry.position(geometry.n_slices - 1)
    for number, axis in ((1, 1), (2, 2)):
        projection = (volume + 1000).mean(axis=axis)[::-1]  # superior at the top of the image
        ds = slice_dataset(seed, study, info, geometry, geometry.n_slices - 1, number)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1] if axis == 1 else [0, 1, 0, 0, 0, -1]
        ds.ImagePositionPatient = top
        ds.PixelSpacing = [geometry.thickness, geometry.pixel_mm]
        ds.Rows = projection.shape[0]
        for keyword in ("SpacingBetweenSlices", "SliceLocation"):
            delattr(ds, keyword)
        ds.PixelData = np.rint(projection - INTERCEPT - 1000).astype(np.int16).tobytes()
        extra.files.append((f"{study.folder}/series99/IM{number:04d}.dcm", ds))
    paths = [path for path, _ in extra.files]
    return extra, Defect("localizer", paths, "quarantined", ["LOCALIZER"], "AP and lateral CT scout images.")


def plant(seed: int, series_of: dict[str, list[SeriesFiles]], targets: dict[str, Study]) -> list[Defect]:
    """Apply every defect to the in-memory series (adding series where a defect needs its own)."""

    def first(role: str) -> SeriesFiles:
        return series_of[targets[role].folder][0]

    records = [duplicate_instance(first("duplicate")), nested_without_extension(first("no_extension"))]
    for role, make in (("truncated", truncated_copy), ("localizer", localizer)):
        extra, record = make(seed, first(role))
        series_of[targets[role].folder].append(extra)
        records.append(record)
    extra, record = text_report(seed, targets["non_image"])
    series_of[targets["non_image"].folder].append(extra)
    records.append(record)
    records.append(missing_slice(first("missing_slice")))
    return records


def truncate_files(root: Path, records: list[Defect]) -> None:
    """Cut each truncated file so that its pixel data ends halfway (after the files were written)."""
    for record in records:
        if record.kind == "truncated":
            for rel in record.paths:
                path = root / rel
                data = path.read_bytes()
                path.write_bytes(data[: len(data) - 256 * 256])


def as_json(records: list[Defect]) -> list[dict[str, object]]:
    """The records as JSON-ready dicts."""
    return [asdict(record) for record in records]
