"""Series assembly: split files into stacks before judging them, then sort and check each stack.

One SeriesInstanceUID can hold several stacks (echoes, magnitude/phase, diffusion weightings,
orientations, time points), so stacks are split first by every attribute that must be constant, and
only then sorted along the slice normal (never by InstanceNumber) and checked: repeated positions,
slice count, tilt, spacing. The result is a `Plan` per output series: sorted slices plus geometry,
ready to decode.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from radflow.config.clean import CleanParams
from radflow.dicom import geometry
from radflow.dicom.instances import Instance, Slice
from radflow.dicom.triage import Verdict

__all__ = ["Plan", "Stack", "plan_radiograph", "plan_stack", "split_stacks"]

POSITION_TOLERANCE_MM = 0.01  # repeated positions are written bit-identical by scanners


@dataclass(frozen=True)
class Stack:
    """Slices that must form one volume (or one radiograph), with the key that names it."""

    key: tuple[str, ...]  # study and series UIDs, then every splitting attribute: stable across runs
    modality: str
    kind: str  # 'volume' or 'radiograph'
    size: tuple[int, int]  # rows, columns
    slices: tuple[Slice, ...]


@dataclass(frozen=True)
class Plan:
    """An accepted output series: sorted slices and the geometry of the array they become."""

    key: tuple[str, ...]
    modality: str
    kind: str
    size: tuple[int, int]  # rows, columns
    slices: tuple[Slice, ...]  # in array order
    spacing: tuple[float, ...]  # array axis order
    orientation: tuple[float, ...]
    origin: tuple[float, float, float]
    affine: tuple[float, ...]  # 16 floats, row-major, (k, j, i) → patient mm
    shifts: tuple[tuple[float, float], ...] | None  # per-slice (row, col) pixel shifts when de-sheared
    notes: tuple[str, ...]
    # Irregular stacks resampled to equal steps: per output plane, the slice below it and the weight
    # of the slice above (linear along the normal). None: the array holds the slices themselves.
    resample: tuple[tuple[int, float], ...] | None = None

    @property
    def depth(self) -> int:
        """Planes in the output volume: the slices, or the resampled planes."""
        return len(self.resample) if self.resample is not None else len(self.slices)


def _orientation_clusters(slices: Iterable[Slice], tol: float) -> list[list[Slice]]:
    """Greedy clusters of slices whose cosines agree with the cluster's first slice within `tol`."""
    clusters: list[list[Slice]] = []
    for s in slices:
        iop = s.orientation
        assert iop is not None
        home = next(
            (c for c in clusters if geometry.same_orientation(c[0].orientation or (), iop, tol)), None
        )
        if home is None:
            clusters.append([s])
        else:
            home.append(s)
    return clusters


# A series of at most this many orientations, each too small for a volume, is a localizer (two- or
# three-plane); more orientations than that are a series whose orientation wanders.
LOCALIZER_PLANES = 3


def _split_orientations(
    key: tuple[str, ...], modality: str, size: tuple[int, int], slices: list[Slice], params: CleanParams
) -> tuple[list[Stack], list[tuple[Slice, Verdict]]]:
    """One stack per orientation; groups too small for a volume are localizers (or the series wanders)."""
    clusters = _orientation_clusters(slices, params.orientation_tolerance)
    if len(clusters) == 1:
        return [Stack(key, modality, "volume", size, tuple(slices))], []
    big = [c for c in clusters if len(c) >= params.min_slices]
    stacks = [Stack((*key, f"orientation{i}"), modality, "volume", size, tuple(c)) for i, c in enumerate(big)]
    rejected: list[tuple[Slice, Verdict]] = []
    for c in clusters:
        if len(c) >= params.min_slices:
            continue
        if big:
            v = Verdict(
                "LOCALIZER", f"An orientation group of {len(c)} image(s) beside the series' main stack."
            )
        elif len(clusters) <= LOCALIZER_PLANES:
            v = Verdict(
                "LOCALIZER",
                f"The series holds {len(clusters)} orientations of under {params.min_slices} images each "
                "(a localizer).",
            )
        else:
            v = Verdict(
                "ORIENTATION_INCONSISTENT",
                f"The series mixes {len(clusters)} orientations, none of {params.min_slices}+ images.",
            )
        rejected += [(s, v) for s in c]
    return stacks, rejected


def _spacing_key(s: Slice) -> str:
    """Pixel spacing to 1 µm: slices of different in-plane sampling never share a volume."""
    ps = s.pixel_spacing or (0.0, 0.0)
    return f"{round(ps[0], 3):g}x{round(ps[1], 3):g}"


def split_stacks(
    instances: Iterable[Instance], params: CleanParams
) -> tuple[list[Stack], list[tuple[Slice, Verdict]]]:
    """Group slices by study, series, number, size and splitting attributes, then by orientation."""
    groups: dict[tuple[str, ...], list[Slice]] = defaultdict(list)
    first: dict[tuple[str, ...], Instance] = {}
    stacks: list[Stack] = []
    for inst in instances:
        size = (inst.rows, inst.columns)
        if inst.is_radiograph:
            stacks.append(
                Stack(
                    (inst.study_uid, inst.series_uid, inst.sop_uid),
                    inst.modality,
                    "radiograph",
                    size,
                    inst.slices,
                )
            )
            continue
        base = (inst.study_uid, inst.series_uid, inst.series_number, f"{inst.rows}x{inst.columns}")
        for s in inst.slices:
            key = (*base, _spacing_key(s), *s.split_key)
            groups[key].append(s)
            first.setdefault(key, inst)
    rejected: list[tuple[Slice, Verdict]] = []
    for key, slices in groups.items():
        inst = first[key]
        more, bad = _split_orientations(key, inst.modality, (inst.rows, inst.columns), slices, params)
        stacks += more
        rejected += bad
    return stacks, rejected


def _time_order(s: Slice) -> tuple[float, ...]:
    """When a slice was taken: its timing tags, then InstanceNumber (never the file name)."""
    number = s.instance_number
    return (*s.time_key, -1.0 if number is None else float(number))


def _time_points(sorted_slices: list[Slice], runs: list[list[int]]) -> list[list[Slice]] | str:
    """Split repeated positions into time points, or say why they cannot be."""
    counts = {len(r) for r in runs}
    if len(counts) != 1:
        return "repeats are not a whole multiple"
    n_t = counts.pop()
    ordered = [sorted((sorted_slices[i] for i in r), key=_time_order) for r in runs]
    for run in ordered:
        # equal keys would leave the order to file names: refuse rather than mix time points
        if len({_time_order(s) for s in run}) < n_t:
            return "no timing tag or InstanceNumber tells the repeats apart"
    return [[run[t] for run in ordered] for t in range(n_t)]


def plan_stack(stack: Stack, params: CleanParams) -> tuple[list[Plan], list[tuple[Slice, Verdict]]]:
    """Sort a stack along its normal and check it; 4D stacks give one plan per time point."""
    slices = list(stack.slices)
    normal = geometry.slice_normal(slices[0].orientation)  # type: ignore[arg-type]
    positions = np.array([s.position for s in slices], float)
    order, _ = geometry.sort_along_normal(positions, normal)
    slices = [slices[i] for i in order]
    runs = geometry.unique_positions(positions[order] @ normal, positions[order], POSITION_TOLERANCE_MM)
    if len(runs) == len(slices):
        return _checked(stack, slices, stack.key, params)
    points = _time_points(slices, runs)
    if isinstance(points, str):
        v = Verdict("NOT_A_VOLUME", f"{len(slices)} images at {len(runs)} positions: {points}.")
        return [], [(s, v) for s in slices]
    plans: list[Plan] = []
    rejected: list[tuple[Slice, Verdict]] = []
    for t, point in enumerate(points):
        p, r = _checked(
            stack, point, (*stack.key, f"t{t}"), params, note=f"time point {t + 1} of {len(points)}"
        )
        plans += p
        rejected += r
    return plans, rejected


def _checked(
    stack: Stack, slices: list[Slice], key: tuple[str, ...], params: CleanParams, note: str = ""
) -> tuple[list[Plan], list[tuple[Slice, Verdict]]]:
    """Slice count, gantry tilt and spacing checks on one sorted 3D stack."""
    n = len(slices)
    if n < params.min_slices:
        detail = f"{n} slice(s), fewer than clean.min_slices = {params.min_slices}."
        if note:  # one time point of a 4D stack: every time point has as few
            detail = (
                f"{n} slice(s) in {note}, fewer than clean.min_slices = {params.min_slices}: a time series "
                "at so few positions (a cine, a single-slice dynamic) is not a volume."
            )
        v = Verdict("TOO_FEW_SLICES", detail)
        return [], [(s, v) for s in slices]
    iop = slices[0].orientation
    assert iop is not None and slices[0].pixel_spacing is not None
    normal = geometry.slice_normal(iop)
    pos = np.array([s.position for s in slices], float)
    proj = pos @ normal
    tilt = geometry.tilt_degrees(pos, normal)
    notes = [note] if note else []
    desheared = tilt > params.max_gantry_tilt_deg
    if desheared and params.gantry_tilt == "quarantine":
        v = Verdict(
            "GANTRY_TILT",
            f"Slices are sheared by {tilt:.2f} degrees (clean.max_gantry_tilt_deg = "
            f"{params.max_gantry_tilt_deg}); set clean.gantry_tilt: deshear to keep them.",
        )
        return [], [(s, v) for s in slices]
    if n == 1:  # only reachable with clean.min_slices = 1: no gaps to judge, a nominal 1 mm step
        spacing = geometry.SpacingVerdict(1.0, "", "")
    else:
        spacing = geometry.check_spacing(proj, params.spacing_tolerance_mm, params.spacing_tolerance_fraction)
    resample = None
    if spacing.reason == "SPACING_NONUNIFORM" and params.irregular_spacing == "resample":
        gaps = np.diff(proj)
        step, resample = geometry.uniform_grid(proj)
        spacing = geometry.SpacingVerdict(step, "", "")
        notes.append(
            f"resampled: slice gaps of {gaps.min():.3g} to {gaps.max():.3g} mm equalised to {step:.3g} mm "
            f"({len(resample)} planes from {n} slices, linear along the normal)"
        )
    if spacing.reason:
        return [], [(s, Verdict(spacing.reason, spacing.detail)) for s in slices]
    numbers = [s.instance_number for s in slices]
    if None not in numbers and numbers != sorted(numbers) and numbers != sorted(numbers, reverse=True):  # type: ignore[type-var]
        notes.append("InstanceNumber order disagrees with slice positions (sorted by position)")
    return [_plan(stack, slices, key, spacing.spacing, desheared, tilt, notes, resample)], []


def _plan(
    stack: Stack,
    slices: list[Slice],
    key: tuple[str, ...],
    spacing: float,
    deshear: bool,
    tilt: float,
    notes: list[str],
    resample: tuple[tuple[int, float], ...] | None = None,
) -> Plan:
    """The geometry of an accepted stack: the affine follows the real slice step unless de-sheared."""
    iop, ps = slices[0].orientation, slices[0].pixel_spacing
    assert iop is not None and ps is not None
    pos = np.array([s.position for s in slices], float)
    normal = geometry.slice_normal(iop)
    shifts = None
    planes = len(resample) if resample is not None else len(slices)
    step = (pos[-1] - pos[0]) / (planes - 1) if planes > 1 else normal * spacing
    if deshear:
        x, y = np.asarray(iop[:3]), np.asarray(iop[3:])
        offsets = pos - pos[0]
        shifts = tuple((float(o @ y / ps[0]), float(o @ x / ps[1])) for o in offsets)
        step = normal * spacing
        notes = [*notes, f"de-sheared: gantry tilt {tilt:.2f} degrees resampled to an orthogonal grid"]
    aff = geometry.affine(pos[0], iop, ps, step)
    return Plan(
        key=key,
        modality=stack.modality,
        kind="volume",
        size=stack.size,
        slices=tuple(slices),
        spacing=(float(spacing), float(ps[0]), float(ps[1])),
        orientation=tuple(iop),
        origin=(float(pos[0][0]), float(pos[0][1]), float(pos[0][2])),
        affine=tuple(float(v) for v in aff.ravel()),
        shifts=shifts,
        notes=tuple(notes),
        resample=resample,
    )


def plan_radiograph(stack: Stack) -> Plan:
    """A radiograph's plan: one image, its pixel spacing, and a nominal in-plane affine."""
    s = stack.slices[0]
    ps = s.pixel_spacing or (1.0, 1.0)
    # Radiographs rarely carry a patient orientation; a nominal one keeps the affine invertible.
    iop = (
        s.orientation
        if s.orientation and geometry.orientation_ok(s.orientation)
        else (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    )
    origin = np.asarray(s.position or (0.0, 0.0, 0.0), float)
    aff = geometry.affine(origin, iop, ps, geometry.slice_normal(iop))
    return Plan(
        key=stack.key,
        modality=stack.modality,
        kind="radiograph",
        size=stack.size,
        slices=stack.slices,
        spacing=(float(ps[0]), float(ps[1])),
        orientation=tuple(iop),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        affine=tuple(float(v) for v in aff.ravel()),
        shifts=None,
        notes=(),
    )
