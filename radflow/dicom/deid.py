"""De-identification: keyed pseudonyms, remapped UIDs, per-patient date shifts, a technical allowlist.

Every key here is an HMAC-SHA256 under a secret (`RADFLOW_DEID_KEY`, or a random local key file),
so the same patient maps to the same pseudonym on every run while nobody without the secret can
recover an ID by hashing candidate IDs. Outputs carry `technical_attributes(ds)`, an allowlist,
never the raw header, so no PS3.15 removal list is needed: what is not allowed is never copied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from radflow.errors import ConfigError

__all__ = [
    "KEY_ENV",
    "KEY_FILE",
    "age_band",
    "date_offset_days",
    "key_fingerprint",
    "load_key",
    "pseudonym",
    "remap_uid",
    "sex",
    "shift_date",
    "technical_attributes",
]

log = logging.getLogger(__name__)

KEY_ENV = "RADFLOW_DEID_KEY"
KEY_FILE = Path(".radflow") / "deid.key"
PREFIXES = {"patient": "pt", "study": "st", "series": "se", "site": "si", "instance": "in"}
MAX_SHIFT_DAYS = 730


def load_key(create: bool = True) -> bytes:
    """The secret de-identification key: `RADFLOW_DEID_KEY`, else `.radflow/deid.key` (created once,
    unless `create` is false: then a missing key is an error)."""
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if not env.strip():
            raise ConfigError(f"{KEY_ENV} is set but empty; set it to a long random secret or unset it.")
        return env.strip().encode()
    path = Path.cwd() / KEY_FILE
    if not path.exists():
        if not create:
            raise ConfigError(
                f"there is no de-identification key: {KEY_ENV} is unset and {KEY_FILE} does not exist here; "
                f"set {KEY_ENV} to your site's key or run from the project that holds {KEY_FILE}."
            )
        _create_key_file(path)
    text = path.read_text().strip()
    if not text:
        raise ConfigError(f"{KEY_FILE} is empty; delete it to create a new key, or set {KEY_ENV}.")
    # The file's text is the key, so copying it into RADFLOW_DEID_KEY gives the same pseudonyms.
    return text.encode()


def _create_key_file(path: Path) -> None:
    """Write 32 random bytes as hex, mode 600, atomically (parallel first runs agree on one key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)  # fails if another process won the race; then its key is the key
        log.warning("created a new de-identification key file %s (keep it secret, back it up)", KEY_FILE)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _digest(key: bytes, *parts: str) -> bytes:
    """HMAC-SHA256 of the parts, NUL-separated so ('a', 'bc') and ('ab', 'c') differ."""
    return hmac.new(key, "\x00".join(parts).encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def key_fingerprint(key: bytes) -> str:
    """A short public identifier of the key (an HMAC, so it reveals nothing of the key)."""
    return _digest(key, "radflow-key-fingerprint").hex()[:16]


def pseudonym(kind: str, value: str, key: bytes) -> str:
    """Keyed pseudonym such as 'pt-3f9a…' (16 hex); same kind, value and key → same pseudonym."""
    prefix = PREFIXES.get(kind)
    if prefix is None:
        raise ValueError(f"unknown pseudonym kind {kind!r}; expected one of {sorted(PREFIXES)}")
    return f"{prefix}-{_digest(key, 'pseudonym', kind, str(value)).hex()[:16]}"


def remap_uid(uid: str, key: bytes) -> str:
    """Deterministic replacement UID '2.25.<128-bit decimal>' (≤ 44 characters, valid per PS3.5)."""
    number = int.from_bytes(_digest(key, "uid", str(uid).strip().rstrip("\x00"))[:16], "big")
    return f"2.25.{number}"


def date_offset_days(patient_id: str, key: bytes) -> int:
    """Key-derived per-patient date shift in [-730, -1] days (never 0, so no date passes unshifted)."""
    n = int.from_bytes(_digest(key, "date-offset", str(patient_id))[:8], "big")
    return -(n % MAX_SHIFT_DAYS) - 1


def _parse_da(da: object) -> dt.date | None:
    """A DICOM DA (YYYYMMDD, or ACR-NEMA YYYY.MM.DD) as a date, or None."""
    text = str(da or "").strip().replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def shift_date(da: str, patient_id: str, key: bytes) -> str:
    """`da` shifted by the patient's offset, as YYYYMMDD; '' when empty or not a valid date."""
    date = _parse_da(da)
    if date is None:
        return ""
    try:
        return (date + dt.timedelta(days=date_offset_days(patient_id, key))).strftime("%Y%m%d")
    except OverflowError:
        return ""


def sex(ds: Dataset) -> str:
    """'M', 'F', 'O' or '' from PatientSex."""
    value = str(ds.get("PatientSex", "") or "").strip().upper()
    return value if value in {"M", "F", "O"} else ""


_AGE_UNITS = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}


def _age_years(ds: Dataset) -> float | None:
    """Age in years from PatientAge ('045Y', '006M', …), else birth date and study date."""
    text = str(ds.get("PatientAge", "") or "").strip().upper()
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in _AGE_UNITS:
        return int(text[:-1]) / _AGE_UNITS[text[-1]]
    birth = _parse_da(ds.get("PatientBirthDate", ""))
    seen = next((d for d in map(_parse_da, _study_dates(ds)) if d is not None), None)
    if birth is None or seen is None or seen < birth:
        return None
    return (seen - birth).days / 365.25


def _study_dates(ds: Dataset) -> list[Any]:
    return [ds.get(k, "") for k in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")]


def age_band(ds: Dataset) -> str:
    """Decade band '0-9' … '80-89', or '90+' (PS3.15 collapses ages over 89); '' when unknown."""
    years = _age_years(ds)
    if years is None or years < 0 or years > 150:
        return ""
    if years >= 90:
        return "90+"
    low = int(years) // 10 * 10
    return f"{low}-{low + 9}"


# Technical, non-identifying attributes only: coded values, numbers and vendor/model names (needed
# for subgroup metrics). No free text (descriptions, comments, protocol names), no dates, no UIDs of
# instances, no institution, device serial numbers or station names.
ALLOWLIST: tuple[str, ...] = (
    "SOPClassUID",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "BodyPartExamined",
    "ViewPosition",
    "PatientPosition",
    "ImageType",
    "PresentationIntentType",
    "BurnedInAnnotation",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PlanarConfiguration",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SliceLocation",
    "GantryDetectorTilt",
    "KVP",
    "XRayTubeCurrent",
    "Exposure",
    "ExposureTime",
    "ConvolutionKernel",
    "MagneticFieldStrength",
    "RepetitionTime",
    "EchoTime",
    "EchoNumbers",
    "InversionTime",
    "FlipAngle",
    "ScanningSequence",
    "SequenceVariant",
    "MRAcquisitionType",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "PixelPaddingValue",
    "PixelIntensityRelationship",
    "SeriesNumber",
    "InstanceNumber",
    "AcquisitionNumber",
    "TemporalPositionIdentifier",
    "LossyImageCompression",
)


def _plain(value: Any) -> object:
    """A pydicom value as plain JSON-able Python (str, int, float or a list of them)."""
    if isinstance(value, (MultiValue, list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    return str(value).strip()


def technical_attributes(ds: Dataset) -> dict[str, object]:
    """The allowlisted technical attributes present in `ds`, as plain values (never the raw header)."""
    out: dict[str, object] = {}
    for keyword in ALLOWLIST:
        try:
            elem = ds.data_element(keyword)
            value = None if elem is None else elem.value
        except Exception:  # an invalid value in a technical tag is simply left out
            continue
        if value is None or value == "" or isinstance(value, bytes):  # unparsed bytes: not a plain value
            continue
        out[keyword] = _plain(value)
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts:
        out["TransferSyntaxUID"] = str(ts)
    return out
