"""Subgroup table: counts and metrics per attribute value; thin groups flagged, never dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.metrics.subgroups import MISSING, subgroup_table, wilson_interval


def test_groups_are_counted_measured_and_flagged() -> None:
    rows = pd.DataFrame(
        {
            "site_key": ["s1"] * 30 + ["s2"] * 5 + ["s3"] * 25,
            "sex": ["F", "M"] * 30,
        }
    )
    y = np.array([0, 1] * 15 + [1] * 5 + [0, 1] * 12 + [0])
    p = np.where(y == 1, 0.8, 0.2)
    table = subgroup_table(rows, y, p, 0.5, ["site_key", "sex"], min_n=20)
    assert len(table) == 5  # s1, s2, s3, F, M: small groups are kept
    s = table.set_index(["attribute", "group"])
    assert s.loc[("site_key", "s1"), "n"] == 30 and s.loc[("site_key", "s1"), "flag"] == ""
    assert s.loc[("site_key", "s1"), "auc"] == pytest.approx(1.0)
    assert s.loc[("site_key", "s2"), "flag"] == "small (n < 20); one class only"
    assert pd.isna(s.loc[("site_key", "s2"), "auc"])
    assert s.loc[("site_key", "s2"), "n_positive"] == 5
    assert s.loc[("sex", "F"), "n"] + s.loc[("sex", "M"), "n"] == 60


def test_missing_values_and_missing_columns_show_as_not_recorded() -> None:
    rows = pd.DataFrame({"sex": ["F", "", None, "M"]})
    table = subgroup_table(
        rows, np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), 0.5, ["sex", "manufacturer"], min_n=1
    )
    assert sorted(table.loc[table["attribute"] == "sex", "group"]) == ["F", "M", MISSING]
    assert table.loc[table["group"] == MISSING, "n"].tolist() == [2, 4]


def test_sensitivity_and_specificity_carry_wilson_intervals() -> None:
    # Wilson score interval for 4/5: centre (4 + z²/2)/(5 + z²), published value 0.376 to 0.964
    assert wilson_interval(4, 5) == pytest.approx([0.3755, 0.9638], abs=1e-4)
    assert wilson_interval(0, 0) is None
    rows = pd.DataFrame({"site_key": ["s1"] * 10})
    y = np.array([1] * 5 + [0] * 5)
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.2, 0.3, 0.4, 0.6])  # TP 4, FN 1, TN 4, FP 1
    row = subgroup_table(rows, y, p, 0.5, ["site_key"], min_n=1).iloc[0]
    assert row["sensitivity"] == pytest.approx(0.8) and row["sensitivity_ci95"] == pytest.approx(
        [0.3755, 0.9638], abs=1e-4
    )
    assert row["specificity_ci95"] == pytest.approx([0.3755, 0.9638], abs=1e-4)
