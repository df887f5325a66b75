"""Series assembly: split before judging, sort along the normal, 4D, tilt, spacing, slice count."""

from __future__ import annotations

import numpy as np
import pytest

from radflow.config import CleanParams
from radflow.dicom.instances import Instance, Slice
from radflow.dicom.series import plan_radiograph, plan_stack, split_stacks

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
PARAMS = CleanParams()


def instance(
    row: int,
    z: float,
    *,
    iop: tuple[float, ...] = AXIAL,
    x: float = 0.0,
    y: float = 0.0,
    number: int | None = None,
    series: str = "1.2.3",
    split: tuple[str, ...] = (),
    time: float = 0.0,
    modality: str = "CT",
) -> Instance:
    """A one-slice file at height z (or along the normal of `iop`)."""
    normal = np.cross(iop[:3], iop[3:])
    pos = tuple(float(v) for v in np.array([x, y, 0.0]) + z * normal)
    s = Slice(
        row=row,
        frame=0,
        position=pos,
        orientation=iop,
        pixel_spacing=(0.5, 0.5),  # type: ignore[arg-type]
        instance_number=row + 1 if number is None else number,
        split_key=split,
        time_key=(time,),
    )
    return Instance(
        row=row,
        sop_uid=f"9.{row}",
        study_uid="1.2",
        series_uid=series,
        series_number="1",
        modality=modality,
        rows=8,
        columns=8,
        image_type=("ORIGINAL", "PRIMARY"),
        slices=(s,),
    )


def plans_of(instances: list[Instance], params: CleanParams = PARAMS):  # type: ignore[no-untyped-def]
    stacks, rejected = split_stacks(instances, params)
    plans = []
    for stack in stacks:
        got, bad = plan_stack(stack, params)
        plans += got
        rejected += bad
    return plans, {s.row: v.reason for s, v in rejected}


def test_sorts_by_position_not_instance_number_and_notes_the_disagreement() -> None:
    zs = [10.0, 0.0, 5.0, 2.5, 7.5]
    plans, rejected = plans_of([instance(i, z, number=i + 1) for i, z in enumerate(zs)])
    assert not rejected and len(plans) == 1
    plan = plans[0]
    assert [s.position[2] for s in plan.slices] == sorted(zs)  # type: ignore[index]
    assert plan.spacing[0] == pytest.approx(2.5)
    assert any("InstanceNumber" in n for n in plan.notes)


def test_descending_positions_sort_ascending_along_the_normal() -> None:
    plans, _ = plans_of([instance(i, -2.0 * i) for i in range(6)])
    zs = [s.position[2] for s in plans[0].slices]  # type: ignore[index]
    assert zs == sorted(zs)
    assert plans[0].notes == ()  # instance numbers are monotonic (descending), no warning


def test_split_keys_make_separate_stacks() -> None:
    echo1 = [instance(i, 2.0 * i, split=("1", "M", "")) for i in range(5)]
    echo2 = [instance(10 + i, 2.0 * i, split=("2", "M", "")) for i in range(5)]
    plans, rejected = plans_of(echo1 + echo2)
    assert not rejected
    assert len(plans) == 2 and {len(p.slices) for p in plans} == {5}
    assert plans[0].key != plans[1].key


def test_small_odd_orientation_group_is_a_localizer_and_the_main_stack_is_kept() -> None:
    main = [instance(i, 2.0 * i) for i in range(6)]
    odd = [instance(20 + i, 3.0 * i, iop=SAGITTAL) for i in range(2)]
    plans, rejected = plans_of(main + odd)
    assert len(plans) == 1 and len(plans[0].slices) == 6
    assert rejected == {20: "LOCALIZER", 21: "LOCALIZER"}


def test_two_big_orientation_groups_become_two_volumes() -> None:
    axial = [instance(i, 2.0 * i) for i in range(5)]
    sagittal = [instance(20 + i, 3.0 * i, iop=SAGITTAL) for i in range(5)]
    plans, rejected = plans_of(axial + sagittal)
    assert not rejected and len(plans) == 2


def test_up_to_three_small_orientation_groups_are_a_localizer_more_are_inconsistent() -> None:
    """A two- or three-plane localizer has no main stack; a series whose orientation wanders has many."""
    iops = [AXIAL, SAGITTAL, (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)]
    insts = [instance(i, float(i), iop=iops[i % 3]) for i in range(6)]
    _, rejected = plans_of(insts)
    assert set(rejected.values()) == {"LOCALIZER"} and len(rejected) == 6
    tilts = [(1.0, 0.0, 0.0, 0.0, float(np.cos(a)), float(np.sin(a))) for a in (0.0, 0.1, 0.2, 0.3)]
    _, rejected = plans_of([instance(i, float(i), iop=tilts[i % 4]) for i in range(8)])
    assert set(rejected.values()) == {"ORIENTATION_INCONSISTENT"} and len(rejected) == 8


def test_repeated_positions_in_whole_multiples_split_into_time_points() -> None:
    insts = [instance(t * 10 + i, 2.0 * i, time=float(t)) for t in range(3) for i in range(5)]
    plans, rejected = plans_of(insts)
    assert not rejected and len(plans) == 3
    for t, plan in enumerate(plans):
        assert {s.time_key[0] for s in plan.slices} == {float(t)}
        assert plan.key[-1] == f"t{t}"


def test_repeated_positions_not_a_multiple_are_not_a_volume() -> None:
    insts = [instance(i, 2.0 * i) for i in range(5)] + [instance(10, 0.0), instance(11, 2.0)]
    plans, rejected = plans_of(insts)
    assert not plans and set(rejected.values()) == {"NOT_A_VOLUME"} and len(rejected) == 7


def test_too_few_slices() -> None:
    plans, rejected = plans_of([instance(i, 2.0 * i) for i in range(3)])
    assert not plans and set(rejected.values()) == {"TOO_FEW_SLICES"}


def test_a_time_series_of_too_few_positions_says_so_per_time_point() -> None:
    # a two-slice cine of 3 phases: each time point is a stack of 2, too few for a volume
    insts = [instance(t * 10 + i, 8.0 * i, time=float(t)) for t in range(3) for i in range(2)]
    stacks, _ = split_stacks(insts, PARAMS)
    (stack,) = stacks
    plans, rejected = plan_stack(stack, PARAMS)
    assert not plans and len(rejected) == 6
    details = {s.time_key[0]: v.detail for s, v in rejected}
    assert {v.reason for _, v in rejected} == {"TOO_FEW_SLICES"}
    assert details[2.0].startswith("2 slice(s) in time point 3 of 3, fewer than clean.min_slices = 4")
    assert "cine" in details[0.0]


def test_missing_slice_is_found_along_the_normal() -> None:
    plans, rejected = plans_of([instance(i, z) for i, z in enumerate([0, 2, 4, 8, 10, 12])])
    assert not plans and set(rejected.values()) == {"MISSING_SLICES"}


def test_irregular_spacing() -> None:
    plans, rejected = plans_of([instance(i, z) for i, z in enumerate([0, 2, 4, 7, 9.5, 11])])
    assert not plans and set(rejected.values()) == {"SPACING_NONUNIFORM"}


def test_irregular_spacing_resampled_when_asked_with_its_affine_and_a_note() -> None:
    zs = [0, 2, 4, 7, 9.5, 11]
    plans, rejected = plans_of(
        [instance(i, z) for i, z in enumerate(zs)], CleanParams(irregular_spacing="resample")
    )
    assert not rejected and len(plans) == 1
    plan = plans[0]
    assert plan.resample is not None and plan.depth == 9 and len(plan.slices) == 6
    assert plan.spacing[0] == pytest.approx(11 / 8)  # the 1.5 mm gap, shortened to end on z = 11
    aff = np.array(plan.affine).reshape(4, 4)
    np.testing.assert_allclose(aff[:3, 0], [0, 0, 11 / 8], atol=1e-9)  # plane k at z = k * step
    assert any(n.startswith("resampled: slice gaps of 1.5 to 3 mm") for n in plan.notes)


def test_missing_slices_are_never_resampled() -> None:
    insts = [instance(i, z) for i, z in enumerate([0, 2, 4, 8, 10, 12])]
    plans, rejected = plans_of(insts, CleanParams(irregular_spacing="resample"))
    assert not plans and set(rejected.values()) == {"MISSING_SLICES"}


def test_gantry_tilt_is_measured_from_positions_and_quarantined_or_desheared() -> None:
    shear = np.tan(np.radians(20))
    insts = [instance(i, 2.0 * i, y=2.0 * i * shear) for i in range(6)]
    plans, rejected = plans_of(insts)
    assert not plans and set(rejected.values()) == {"GANTRY_TILT"}
    deshear = CleanParams(gantry_tilt="deshear")
    plans, rejected = plans_of(insts, deshear)
    assert not rejected and len(plans) == 1
    plan = plans[0]
    assert plan.shifts is not None and plan.shifts[0] == (0.0, 0.0)
    # slice k is shifted by its in-plane offset: y = 2k·tan(20°) mm over 0.5 mm rows
    assert plan.shifts[3][0] == pytest.approx(6 * shear / 0.5)
    assert any("de-sheared" in n for n in plan.notes)
    aff = np.array(plan.affine).reshape(4, 4)
    np.testing.assert_allclose(aff[:3, 0], [0, 0, 2.0], atol=1e-9)  # orthogonal after de-shearing


def test_small_tilt_below_the_limit_is_kept_with_its_true_affine() -> None:
    shear = np.tan(np.radians(0.2))
    plans, rejected = plans_of([instance(i, 2.0 * i, y=2.0 * i * shear) for i in range(6)])
    assert not rejected
    aff = np.array(plans[0].affine).reshape(4, 4)
    assert aff[1, 0] == pytest.approx(2.0 * shear)


def test_radiographs_are_one_plan_each_and_exempt_from_slice_rules() -> None:
    insts = [instance(i, 0.0, modality="CR") for i in range(2)]
    stacks, rejected = split_stacks(insts, PARAMS)
    assert not rejected and [s.kind for s in stacks] == ["radiograph", "radiograph"]
    plan = plan_radiograph(stacks[0])
    assert plan.kind == "radiograph" and plan.spacing == (0.5, 0.5) and plan.size == (8, 8)


def test_volume_affine_and_origin_follow_the_first_sorted_slice() -> None:
    plans, _ = plans_of([instance(i, 5.0 - 1.5 * i, x=-10.0, y=20.0) for i in range(5)])
    plan = plans[0]
    assert plan.origin == pytest.approx((-10.0, 20.0, -1.0))
    aff = np.array(plan.affine).reshape(4, 4)
    last = aff @ np.array([4, 0, 0, 1.0])
    assert last[:3] == pytest.approx([-10.0, 20.0, 5.0])
    assert plan.spacing == pytest.approx((1.5, 0.5, 0.5))


def test_a_single_slice_volume_is_allowed_when_min_slices_is_one() -> None:
    plans, rejected = plans_of([instance(0, 3.0)], CleanParams(min_slices=1))
    assert not rejected and len(plans) == 1 and plans[0].spacing[0] == 1.0
    assert np.isfinite(plans[0].affine).all()


def test_repeats_ordered_by_instance_number_when_no_timing_tag() -> None:
    insts = [instance(t * 10 + i, 2.0 * i, number=100 * t + i) for t in (1, 0) for i in range(5)]
    plans, rejected = plans_of(insts)
    assert not rejected and len(plans) == 2
    assert {s.instance_number for s in plans[0].slices} == set(range(5))


def test_repeats_nothing_tells_apart_are_refused() -> None:
    insts = [instance(t * 10 + i, 2.0 * i, number=1) for t in range(2) for i in range(5)]
    plans, rejected = plans_of(insts)
    assert not plans and set(rejected.values()) == {"NOT_A_VOLUME"}
