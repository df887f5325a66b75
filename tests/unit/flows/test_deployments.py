"""The nightly deployment carries a cron schedule and the typed parameters the UI renders as a form."""

from __future__ import annotations

from pathlib import Path

from flows.deployments import NIGHTLY_CRON, nightly, on_demand


def test_the_nightly_deployment_has_a_schedule_and_a_parameter_form(tmp_path: Path) -> None:
    deployment = nightly(tmp_path)

    assert [s.schedule.cron for s in deployment.schedules] == [NIGHTLY_CRON]  # type: ignore[union-attr]
    assert deployment.parameters == {"project": str(tmp_path.resolve())}
    schema = deployment._parameter_openapi_schema.model_dump()
    form = schema["definitions"]["RetrainParameters"]["properties"]
    assert {
        "train_epochs",
        "train_learning_rate",
        "train_network",
        "train_max_minutes",
        "ingest_redact_paths",
        "set",
        "force",
    } <= set(form)
    assert form["train_epochs"]["anyOf"][0] == {"minimum": 1, "type": "integer"}


def test_the_predict_deployment_asks_for_a_source_and_an_output_folder(tmp_path: Path) -> None:
    deployment = on_demand(tmp_path)

    assert not deployment.schedules and deployment.parameters == {"project": str(tmp_path.resolve())}
    schema = deployment._parameter_openapi_schema.model_dump()
    assert {"source", "out"} <= set(schema["required"])
    assert {"version", "stage", "project"} <= set(schema["properties"])
