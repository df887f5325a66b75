"""Turn a planned study into its series: datasets with pixels and their paths relative to the cohort root."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from scipy.ndimage import gaussian_filter

from radflow.synth.ct import INTERCEPT, Geometry, chest_volume, make_geometry, slice_dataset
from radflow.synth.headers import SeriesInfo, series_info
from radflow.synth.plan import Study
from radflow.synth.radiograph import chest_density, radiograph_dataset


@dataclass
class SeriesFiles:
    """One series' files; for CT, `files` is in spatial order (slice 0 most inferior), whatever the names."""

    study: Study
    info: SeriesInfo
    files: list[tuple[str, Dataset]] = field(default_factory=list)
    geometry: Geometry | None = None
    volume: np.ndarray | None = None

    @property
    def folder(self) -> str:
        """The series folder relative to the cohort root."""
        return f"{self.study.folder}/series{self.info.number}"


def study_rng(seed: int, study: Study) -> np.random.Generator:
    """A generator for one study's pixels, independent of how many studies precede it."""
    return np.random.default_rng([seed, study.patient.index, study.index, 11])


def radiograph_series(seed: int, study: Study, rng: np.random.Generator) -> SeriesFiles:
    """The PA image of a radiograph study."""
    info = series_info(seed, study, 1, study.device.modality, "PA")
    series = SeriesFiles(study, info)
    ds = radiograph_dataset(seed, study, info, chest_density(rng, study.positive), rng)
    series.files.append((f"{series.folder}/IM0001.dcm", ds))
    return series


def _instance_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Instance numbers per spatial slice: ascending, descending (head first) or in no spatial order."""
    mode = int(rng.integers(3))
    if mode == 0:
        return np.arange(1, n + 1)
    if mode == 1:
        return np.arange(n, 0, -1)
    return rng.permutation(n) + 1


def ct_series(
    seed: int, study: Study, number: int, volume: np.ndarray, geometry: Geometry, rng: np.random.Generator
) -> SeriesFiles:
    """One axial reconstruction of `volume`; file names sometimes shuffled against position."""
    info = series_info(seed, study, number, "CT", "CHEST LUNG" if number == 1 else "CHEST SOFT TISSUE")
    series = SeriesFiles(study, info, geometry=geometry, volume=volume)
    n = geometry.n_slices
    instances = _instance_numbers(rng, n)
    names = rng.permutation(n) + 1 if rng.random() < 0.5 else instances
    stored = np.clip(np.rint(volume - INTERCEPT), -32768, 32767).astype(np.int16)
    for k in range(n):
        ds = slice_dataset(seed, study, info, geometry, k, int(instances[k]))
        ds.PixelData = stored[k].tobytes()
        series.files.append((f"{series.folder}/IM{int(names[k]):04d}.dcm", ds))
    return series


def ct_study(seed: int, study: Study, rng: np.random.Generator) -> list[SeriesFiles]:
    """A CT study: a lung reconstruction and sometimes a smoother soft-tissue one on the same geometry."""
    geometry = make_geometry(rng, oblique=rng.random() < 0.15)
    volume = chest_volume(rng, geometry.n_slices, study.positive)
    out = [ct_series(seed, study, 1, volume, geometry, rng)]
    if study.n_series > 1:
        soft = gaussian_filter(volume, (0, 0.8, 0.8))
        out.append(ct_series(seed, study, 2, soft, geometry, rng))
    return out


def study_series(seed: int, study: Study) -> list[SeriesFiles]:
    """All series of a study (before any defect is planted)."""
    rng = study_rng(seed, study)
    if study.kind == "ct":
        return ct_study(seed, study, rng)
    return [radiograph_series(seed, study, rng)]
