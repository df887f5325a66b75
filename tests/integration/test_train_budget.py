"""train.max_minutes: a schedule shortened to fit, a run stopped and continued, networks left untrained.

Where a time limit bites depends on how long epochs take, so these tests give every epoch a known
length: radflow.models.fit judges the limit by its `_clock`, which here advances one second per
reading (an epoch reads it once at its start and once at its end, nothing else in between).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from cleandata import write_clean_dir

from radflow.config import SplitParams, TrainParams
from radflow.data.training import fingerprint, load_training_data
from radflow.models import fit as fit_module
from radflow.models.checkpoint import load_model
from radflow.models.fit import FitResult, fit
from tasks import split as split_stage
from tasks.train import run

BASE: dict[str, Any] = {"modalities": ["CR"], "spatial_size": [8, 8], "width": 4, "batch_size": 4}
BASE |= {"learning_rate": 0.02, "patience": 10, "device": "cpu"}


class Stop(Exception):
    """Raised from the epoch callback: training ends there, as a killed process would."""


@pytest.fixture
def one_second_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(fit_module, "_clock", lambda: float(next(ticks)))


@pytest.fixture
def cohort(tmp_path: Path) -> tuple[Path, Path]:
    clean, labels = write_clean_dir(tmp_path, patients=24, studies_per_patient=1, size=8, seed=4)
    result = split_stage.run(SplitParams(strategy="predefined"), clean, labels, tmp_path / "split")
    return clean, result.path


def _fit(
    cohort: tuple[Path, Path], checkpoint: Path, budget_s: float | None, stop_after: int = 0, **extra: Any
) -> FitResult:
    params = TrainParams(**BASE, **extra)
    config, data = load_training_data(*cohort, params)

    def on_epoch(history: list[dict[str, float]]) -> None:
        if len(history) == stop_after:
            raise Stop

    return fit(
        params, config, data, torch.device("cpu"), checkpoint, fingerprint(params, config, data),
        on_epoch, budget_s=budget_s,
    )  # fmt: skip


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_a_schedule_that_does_not_fit_is_shortened_so_that_it_completes(
    cohort: tuple[Path, Path],
    tmp_path: Path,
    one_second_epochs: None,
    schedule: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """6 epochs of 1 s in 3.5 s: the schedule is re-planned over 3 epochs after the first.

    Killed after epoch 2 and started again, the run ends exactly as the uninterrupted one; given
    time for all 6 epochs later, it trains again from the start and ends as a run never limited.
    """
    caplog.set_level(logging.INFO, logger="radflow.models.fit")
    whole = _fit(cohort, tmp_path / "whole.pt", 3.5, epochs=6, schedule=schedule)
    assert (whole.epochs_run, whole.planned_epochs, whole.out_of_time) == (3, 3, True)
    rates = [row["lr"] for row in whole.history]
    # the rate at the end of the 3 epochs is the end of the schedule, as in a planned 3-epoch run
    planned3 = _fit(cohort, tmp_path / "three.pt", None, epochs=3, schedule=schedule)
    assert rates[-1] == pytest.approx(planned3.history[-1]["lr"], rel=1e-6, abs=1e-12)
    warning = [r.getMessage() for r in caplog.records if "hold 3 of train.epochs = 6" in r.getMessage()]
    assert len(warning) == 1 and "shortened to match" in warning[0]

    with pytest.raises(Stop):
        _fit(cohort, tmp_path / "killed.pt", 3.5, stop_after=2, epochs=6, schedule=schedule)
    resumed = _fit(cohort, tmp_path / "killed.pt", 3.5, epochs=6, schedule=schedule)
    assert (resumed.resumed_from, resumed.epochs_run, resumed.planned_epochs) == (2, 3, 3)
    assert pd.DataFrame(resumed.history).equals(pd.DataFrame(whole.history))
    assert _same(resumed.state_dict, whole.state_dict)

    again = _fit(cohort, tmp_path / "killed.pt", None, epochs=6, schedule=schedule)
    never = _fit(cohort, tmp_path / "never.pt", None, epochs=6, schedule=schedule)
    assert rates[-1] < 0.2 * never.history[2]["lr"]  # not where the 6-epoch schedule is at epoch 3
    assert (again.resumed_from, again.epochs_run, again.planned_epochs, again.out_of_time) == (0, 6, 6, False)
    assert pd.DataFrame(again.history).equals(pd.DataFrame(never.history))
    assert _same(again.state_dict, never.state_dict)
    assert any("trains again from the start" in r.getMessage() for r in caplog.records)


def test_a_run_stopped_by_the_limit_continues_when_it_is_raised(
    cohort: tuple[Path, Path], tmp_path: Path, one_second_epochs: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A limit lowered under a run that had time for its schedule stops it before an epoch that would
    overrun; with the limit lifted it continues from that checkpoint, not from the start."""
    caplog.set_level(logging.WARNING, logger="radflow.models.fit")
    with pytest.raises(Stop):
        _fit(cohort, tmp_path / "ck.pt", 10.0, stop_after=1, epochs=4)
    stopped = _fit(cohort, tmp_path / "ck.pt", 2.5, epochs=4)
    assert (stopped.epochs_run, stopped.planned_epochs, stopped.out_of_time) == (2, 4, True)
    assert any("stops after epoch 2 of 4" in r.getMessage() for r in caplog.records)
    resumed = _fit(cohort, tmp_path / "ck.pt", None, epochs=4)
    never = _fit(cohort, tmp_path / "never.pt", None, epochs=4)
    assert (resumed.resumed_from, resumed.epochs_run, resumed.out_of_time) == (2, 4, False)
    assert pd.DataFrame(resumed.history).equals(pd.DataFrame(never.history))
    assert _same(resumed.state_dict, never.state_dict)


def test_ensemble_networks_without_time_for_half_their_schedule_are_not_trained(
    cohort: tuple[Path, Path], tmp_path: Path, one_second_epochs: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Three 2-epoch networks of 1-s epochs in 4.5 s: two are trained whole, the third (0.5 s left,
    under half its 2 s) not at all. The model is exactly the 2-network ensemble a run without a
    limit trains, and a finished third network is kept under the same limit. In 10.5 s, three
    4-epoch networks: the third has 2.5 s and trains 2 epochs."""
    caplog.set_level(logging.WARNING)

    def train(name: str, **extra: Any) -> tuple[Any, dict[str, Any], Any]:
        params = TrainParams(**{**BASE, "epochs": 2, **extra})
        result = run(params, *cohort, tmp_path / name, tmp_path / f"{name}_ck", tmp_path / f"{name}_r")
        saved = torch.load(result.model_path, weights_only=True)
        return result, saved, load_model(result.model_path)[1]

    limited, saved, config = train("limited", ensemble=3, max_minutes=4.5 / 60)
    assert limited.out_of_time and config.ensemble == 2
    assert ", 2 of 3 networks (train.max_minutes)" in limited.describe()
    lineage = saved["lineage"]
    assert lineage["ensemble"] == 2 and lineage["networks_skipped"] == 1
    assert lineage["epochs_planned"] == [2, 2] and lineage["out_of_time"] == [False, False]
    assert not (tmp_path / "limited_r" / "history_member2.csv").exists()
    lines = [r.getMessage() for r in caplog.records if "not trained" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("train: network 3 of 3 is not trained")
    assert "leaves 0 s" in lines[0] or "leaves 1 s" in lines[0]

    _, reference, reference_config = train("two", ensemble=2)
    assert reference_config == config
    assert _same(saved["state_dict"], reference["state_dict"])
    assert reference["lineage"]["networks_skipped"] == 0

    # a network already trained costs no time: the same limit keeps all three of a finished run
    _, whole, _ = train("three", ensemble=3)
    again, resumed, resumed_config = train("three", ensemble=3, max_minutes=4.5 / 60)
    assert resumed_config.ensemble == 3 and resumed["lineage"]["networks_skipped"] == 0
    assert not again.out_of_time and _same(resumed["state_dict"], whole["state_dict"])

    shortened, saved, config = train("shortened", ensemble=3, epochs=4, max_minutes=10.5 / 60)
    assert shortened.out_of_time and config.ensemble == 3
    assert saved["lineage"]["epochs_planned"] == [4, 4, 2] and saved["lineage"]["networks_skipped"] == 0
    assert saved["lineage"]["out_of_time"] == [False, False, True]
