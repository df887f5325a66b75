"""Per-file triage, in the order of the clean stage's checks: what a file is, before series are judged.

Each check returns a `Verdict` (reason code, one sentence) or None to let the file go on. Sentences
name tags and counts, never header values, so no PHI can leak through a detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

from pydicom.dataset import Dataset
from pydicom.uid import UID

from radflow.config.clean import CleanParams
from radflow.dicom.geometry import orientation_ok
from radflow.dicom.header import HeaderLike, HeaderView, read_header
from radflow.dicom.instances import Instance, frame_slices, image_type, mosaic_slices
from radflow.dicom.mosaic import mosaic_layout
from radflow.dicom.scan import BAD_NAME, CANNOT_OPEN, UNLISTED_FOLDER
from radflow.dicom.scan_sniff import GZIP_MESSAGE
from radflow.dicom.stored import PixelRecipe, pixel_recipe

__all__ = [
    "Verdict",
    "geometry_verdict",
    "header_verdict",
    "inspect_file",
    "is_image_sop",
    "manifest_verdict",
]

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame variants 7.1-7.4
DX_FOR_PROCESSING = {
    "1.2.840.10008.5.1.4.1.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.1.3.1",
}


class Verdict(NamedTuple):
    """Why a file is set apart: a reason code and one sentence for people."""

    reason: str
    detail: str


def is_image_sop(uid: str) -> bool:
    """Whether a SOP Class is an image storage class (SR, waveforms, RT, SEG, GSPS, DICOMDIR are not)."""
    name = UID(uid).name if uid else ""
    if name == uid:  # unknown to pydicom: private or retired classes, judged by the pixels later
        return True
    return "Image Storage" in name


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None or value != value else str(value).strip()  # NaN-safe


def manifest_verdict(row: Mapping[str, Any], modalities: Sequence[str]) -> Verdict | None:
    """Checks answered by the manifest alone: not DICOM, unreadable, non-image, no pixels, modality."""
    error = _text(row, "read_error")
    if not bool(row.get("is_dicom")):
        return _not_dicom(error)
    if error:
        return Verdict("UNREADABLE", "The DICOM header could not be read at ingest.")
    sop = _text(row, "sop_class_uid")
    if sop and not is_image_sop(sop):
        return Verdict("NON_IMAGE_SOP", f"SOP Class '{UID(sop).name}' is not an image object.")
    if row.get("has_pixel_data") is False or row.get("has_pixel_data") == 0:
        return Verdict("NO_PIXEL_DATA", "The image object has no Pixel Data element.")
    modality = _text(row, "modality").upper()
    if modality not in {m.upper() for m in modalities}:
        shown = modality or "(none)"
        return Verdict("MODALITY_EXCLUDED", f"Modality {shown} is not in clean.modalities.")
    return None


def _not_dicom(error: str) -> Verdict:
    """Why a row is no DICOM file: a folder or file that could not be opened, or what the file is.

    Ingest's errors here are fixed sentences (the sniffer's names of file kinds, the system's reason
    for a failed open), never header values or paths, so they are safe to repeat.
    """
    if error == UNLISTED_FOLDER:
        return Verdict(
            "UNREADABLE",
            "The folder could not be listed, so its files were not scanned; make it readable, re-run ingest.",
        )
    if error.startswith(CANNOT_OPEN):
        reason = error.partition(": ")[2] or "an OS error"
        return Verdict(
            "UNREADABLE",
            f"The file could not be opened ({reason}); fix its permissions or link and re-run ingest.",
        )
    if error == BAD_NAME:
        return Verdict("UNREADABLE", "The file name is not valid UTF-8; rename the file and re-run ingest.")
    if error == GZIP_MESSAGE:
        return Verdict("NOT_DICOM", "The file is gzip-compressed; gunzip it to ingest the DICOM inside.")
    what = error.removeprefix("not DICOM: ") if error.startswith("not DICOM: ") else ""
    return Verdict("NOT_DICOM", f"The file is not DICOM: {what}." if what else "The file is not DICOM.")


def _derived_verdict(ds: HeaderLike, types: tuple[str, ...]) -> Verdict | None:
    """Localizers, projections, secondary captures and DERIVED\\SECONDARY images."""
    if "LOCALIZER" in types or "SCOUT" in types:
        return Verdict("LOCALIZER", "ImageType marks a localizer (scout) image.")
    if "PROJECTION IMAGE" in types:
        if str(ds.get("Modality", "")).upper() == "CT":
            return Verdict("LOCALIZER", "ImageType marks a CT projection image.")
        return Verdict("DERIVED", "ImageType marks a projection image (e.g. a MIP), not acquired slices.")
    sop = str(ds.get("SOPClassUID", ""))
    if sop == SECONDARY_CAPTURE or sop.startswith(SECONDARY_CAPTURE + "."):
        return Verdict("DERIVED", "The object is a secondary capture, not an acquired image.")
    if types[:2] == ("DERIVED", "SECONDARY"):
        return Verdict("DERIVED", "ImageType is DERIVED\\SECONDARY (a reformat or screen capture).")
    return None


def header_verdict(ds: Dataset | HeaderView, keep_for_processing: bool) -> Verdict | None:
    """Checks that need the header: derived images, burned-in text, processing intent, pixel layout."""
    from radflow.dicom import pixels  # imported here: decoding plugins load only when cleaning runs

    dataset = cast(Dataset, ds)  # pixels' checks only call get(): the view answers them from raw bytes
    types = image_type(ds)
    verdict = _derived_verdict(ds, types)
    if verdict is not None:
        return verdict
    if pixels.burned_in(dataset):
        return Verdict("BURNED_IN", "BurnedInAnnotation is YES or the image type carries burned-in text.")
    modality = str(ds.get("Modality", "")).upper()
    radiograph = modality in {"CR", "DX"}
    raw = pixels.for_processing(dataset) or str(ds.get("SOPClassUID", "")) in DX_FOR_PROCESSING
    if radiograph and not keep_for_processing and raw:
        return Verdict("FOR_PROCESSING", "A FOR PROCESSING radiograph (raw detector data), kept apart.")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return Verdict("COLOR_UNSUPPORTED", "The image has colour samples; only grayscale images are used.")
    if radiograph and int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return Verdict("NOT_A_VOLUME", "A multi-frame radiograph is neither one image nor a volume.")
    return None


def geometry_verdict(instance: Instance, tol: float) -> Verdict | None:
    """Slices need a position, unit orthogonal cosines and pixel spacing; radiographs need a spacing."""
    for s in instance.slices:
        if s.pixel_spacing is None or min(s.pixel_spacing) <= 0:
            tag = "ImagerPixelSpacing/PixelSpacing" if instance.is_radiograph else "PixelSpacing"
            return Verdict("MISSING_GEOMETRY", f"{tag} is missing or not positive.")
        if instance.is_radiograph:
            continue
        if s.position is None:
            return Verdict("MISSING_GEOMETRY", "ImagePositionPatient is missing or malformed.")
        if not orientation_ok(s.orientation, tol):
            return Verdict(
                "MISSING_GEOMETRY", "ImageOrientationPatient is missing or not two orthogonal unit vectors."
            )
    return None


def _instance(ds: HeaderView, row: int, recipe: PixelRecipe | None) -> Instance | Verdict:
    """The record of a header that passed triage; mosaics become one slice per tile."""
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    slices, mosaic = None, None
    if "MOSAIC" in image_type(ds):
        layout = mosaic_layout(ds.ds)
        if layout is None:
            return Verdict(
                "MOSAIC_UNSUPPORTED",
                "A Siemens mosaic without a usable CSA header "
                "(NumberOfImagesInMosaic, SliceNormalVector) cannot be unpacked.",
            )
        rows, columns, mosaic = layout.rows, layout.cols, (layout.tiles, layout.count)
        slices, recipe = mosaic_slices(ds, row, layout.positions), None
    return Instance(
        row=row,
        sop_uid=str(ds.get("SOPInstanceUID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        series_number=str(ds.get("SeriesNumber", "")),
        modality=str(ds.get("Modality", "")).upper(),
        rows=rows,
        columns=columns,
        image_type=image_type(ds),
        slices=slices or frame_slices(ds, row),
        recipe=recipe,
        mosaic=mosaic,
    )


def inspect_file(path: str, row: int, params: CleanParams) -> Instance | Verdict:
    """Read one header (no pixels) and run the header and geometry checks; a record or a verdict."""
    try:
        with open(path, "rb") as fp:
            ds = read_header(fp)
            verdict = header_verdict(ds, params.keep_for_processing)
            if verdict is not None:
                return verdict
            found = _instance(ds, row, pixel_recipe(ds, fp))
    except Exception as err:  # a header pydicom cannot parse fully is unreadable, not a crash
        return Verdict("UNREADABLE", f"The DICOM header could not be parsed ({type(err).__name__}).")
    if isinstance(found, Verdict):
        return found
    return geometry_verdict(found, params.orientation_tolerance) or found
