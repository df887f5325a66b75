"""The model card: one Markdown page on what a version is, what it was trained and tested on, how well
it does and for whom, its known weak spots, and why it was or was not promoted.

Everything on it is an aggregate (counts, metrics, settings, content hashes, the de-identification
key's public fingerprint) or a pseudonymised key: no value from a DICOM header or a file path reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from radflow.metrics.binary import METRICS
from radflow.registry.files import read_json, read_text

MODEL = "models/model.pt"
# dvc.lock paths shown by hash: the inputs (DICOM folder, labels), every data stage's output, the model.
# Code is vouched for by the commit; reports are this card's sources.
DATA = ("data/",)
INGEST_SOURCE = "data/ingest/source.json"  # what ingest's rows depend on, its key's fingerprint among them
AUC_DROP_WORTH_NOTING = 0.05  # a perturbation that costs more AUC than this is listed as a limitation


@dataclass(frozen=True)
class CardInputs:
    """What a card is drawn from, read from a run's files (any of them may be absent)."""

    test: dict[str, Any]
    operating_point: dict[str, Any]
    subgroups: list[dict[str, Any]]
    robustness: list[dict[str, Any]]
    data_counts: list[dict[str, Any]]
    train_params: dict[str, Any]
    model_config: dict[str, Any]
    training: dict[str, Any]
    hashes: dict[str, str]  # dvc.lock path → md5 of the data and model
    code_commit: str | None
    key_fingerprint: str | None = None  # the de-identification key's public fingerprint (source.json)

    @classmethod
    def read(cls, workdir: Path, code_commit: str | None) -> CardInputs:
        reports = workdir / "reports"
        metrics = read_json(reports / "metrics.json")
        params = yaml.safe_load(read_text(workdir / "params.yaml") or "") or {}
        config, training = _model_info(workdir / "models" / "model.pt")
        return cls(
            test=metrics.get("test") or {},
            operating_point=metrics.get("operating_point") or {},
            subgroups=read_json(reports / "subgroups.json").get("groups") or [],
            robustness=read_json(reports / "robustness.json").get("conditions") or [],
            data_counts=_counts(workdir / "data" / "split" / "split.parquet"),
            train_params=params.get("train") or {},
            model_config=config,
            training=training,
            hashes=locked_hashes(read_text(workdir / "dvc.lock")),
            code_commit=code_commit,
            key_fingerprint=read_json(workdir / INGEST_SOURCE).get("key_fingerprint"),
        )


def render(
    model: str, version: str, status: str, intended_use: str, gate: dict[str, Any], inputs: CardInputs
) -> str:
    """The card's Markdown."""
    parts = [
        f"# Model card: {model} {version}",
        f"**Status:** {status}",
        "## Intended use",
        intended_use,
        _provenance(model, version, inputs),
        _data(inputs),
        _model(inputs),
        _performance(inputs),
        _subgroups(inputs),
        _robustness(inputs),
        _limitations(inputs),
        _gate(gate),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def locked_hashes(lock_text: str | None) -> dict[str, str]:
    """Every dependency and output dvc.lock records with an md5, by path (data, code and model)."""
    lock = yaml.safe_load(lock_text or "") or {}
    found: dict[str, str] = {}
    for stage in (lock.get("stages") or {}).values():
        for entry in [*(stage.get("deps") or []), *(stage.get("outs") or [])]:
            if entry.get("md5") and entry.get("path"):
                found[str(entry["path"])] = str(entry["md5"])
    return found


def _provenance(model: str, version: str, inputs: CardInputs) -> str:
    base = f" (on top of {inputs.code_commit[:12]})" if inputs.code_commit else ""
    rows = [("code, params.yaml, dvc.lock", f"the commit `{model}@{version}` tags{base}")]
    data = {p: h for p, h in inputs.hashes.items() if p.startswith(DATA) or p == MODEL}
    rows += [(f"`{path}` (md5)", md5) for path, md5 in sorted(data.items())]
    key = ""
    if inputs.key_fingerprint:
        rows.append(("de-identification key (fingerprint)", f"`{inputs.key_fingerprint}`"))
        key = (
            " under the same de-identification key: the pseudonyms, and with them the data's hashes and a "
            "patient-grouped split, depend on it (`radflow key-fingerprint` shows a key's fingerprint)"
        )
    return (
        "## Provenance\n\n"
        + _table(["what", "identity"], rows)
        + f"\n\nRestore exactly this model and the data it saw: `git checkout {model}@{version}` then "
        f"`dvc checkout`; `dvc repro` rebuilds it from there{key}."
    )


def _data(inputs: CardInputs) -> str:
    if not inputs.data_counts:
        return ""
    header = list(inputs.data_counts[0])
    return "## Data\n\n" + _table(header, [[row[h] for h in header] for row in inputs.data_counts])


def _model(inputs: CardInputs) -> str:
    config, training = inputs.model_config, inputs.training
    if not (config or inputs.train_params):
        return ""
    rows = [(f"config.{k}", _plain(v)) for k, v in config.items()]
    rows += [(f"training.{k}", _plain(v)) for k, v in training.items()]
    shown = {"network", "epochs", "learning_rate", "batch_size", "class_balance", "ensemble", "seed"}
    rows += [(f"train.{k}", _plain(v)) for k, v in inputs.train_params.items() if k in shown]
    return "## Model\n\n" + _table(["setting", "value"], rows)


def _performance(inputs: CardInputs) -> str:
    test = inputs.test
    if not test:
        return ""
    ci = test.get("ci95") or {}
    rows = [(m, _num(test.get(m)), _interval(ci.get(m))) for m in METRICS]
    rows += [
        ("expected calibration error", _num(test.get("ece")), ""),
        ("Brier score", _num(test.get("brier")), ""),
    ]
    point = inputs.operating_point
    where = (
        f"threshold {_num(point.get('threshold'), 4)}, chosen on the validation split by "
        f"'{point.get('method', '?')}'"
    )
    counts = f"{test.get('n', '?')} test images ({test.get('n_positive', '?')} positive)"
    unit = test.get("ci_unit", "image")
    return (
        f"## Performance on the test split\n\n{counts}; {where}; 95% intervals by bootstrap over {unit}s.\n\n"
        + _table(["metric", "value", "95% CI"], rows)
    )


def _subgroups(inputs: CardInputs) -> str:
    if not inputs.subgroups:
        return ""
    rows = [
        [g.get("attribute"), g.get("group"), g.get("n"), g.get("n_positive"), _num(g.get("auc")),
         _num(g.get("sensitivity")), _num(g.get("specificity")), g.get("flag") or ""]
        for g in inputs.subgroups
    ]  # fmt: skip
    header = ["attribute", "group", "n", "positive", "AUC", "sensitivity", "specificity", "flag"]
    return "## Subgroups (test split)\n\nSmall groups are flagged, not hidden.\n\n" + _table(header, rows)


def _robustness(inputs: CardInputs) -> str:
    if not inputs.robustness:
        return ""
    rows = [
        [
            c.get("perturbation"),
            _plain(c.get("severity")),
            _num(c.get("auc")),
            _num(c.get("auc_change"), 3, True),
        ]
        for c in inputs.robustness
    ]
    return "## Robustness (test split, perturbed)\n\n" + _table(
        ["perturbation", "severity", "AUC", "AUC change"], rows
    )


def _limitations(inputs: CardInputs) -> str:
    notes = []
    flagged = [g for g in inputs.subgroups if g.get("flag")]
    if flagged:
        names = ", ".join(f"{g.get('attribute')}={g.get('group')} ({g.get('flag')})" for g in flagged[:10])
        more = f" and {len(flagged) - 10} more" if len(flagged) > 10 else ""
        notes.append(f"Subgroups too thin to judge: {names}{more}.")
    fragile = [c for c in inputs.robustness if _drop(c) > AUC_DROP_WORTH_NOTING]
    for c in fragile:
        notes.append(
            f"Under {c.get('perturbation')} (severity {_plain(c.get('severity'))}) the test AUC falls by "
            f"{_drop(c):.3f}."
        )
    auc_ci = (inputs.test.get("ci95") or {}).get("auc")
    if isinstance(auc_ci, list) and len(auc_ci) == 2 and auc_ci[1] - auc_ci[0] > 0.1:
        width = auc_ci[1] - auc_ci[0]
        notes.append(f"The test split is small for this task: the AUC's 95% interval spans {width:.2f}.")
    sites = sum(1 for g in inputs.subgroups if g.get("attribute") == "site_key")
    if sites:
        notes.append(f"Tested on data from {sites} site(s) only; validate locally before use elsewhere.")
    if not notes:
        return ""
    return "## Known limitations\n\n" + "\n".join(f"- {n}" for n in notes)


def _gate(gate: dict[str, Any]) -> str:
    checks = gate.get("checks") or []
    if not checks:
        return ""
    rows = [[c["name"], c["required"], c["achieved"], "pass" if c["passed"] else "FAIL"] for c in checks]
    verdict = "passed" if gate.get("passed") else "not passed"
    reference = gate.get("reference")
    stage = gate.get("stage", "the stage")
    against = (
        f" against {reference}, the version in {stage}, scored on the same test images" if reference else ""
    )
    return f"## Promotion gate: {verdict}\n\nChecks{against}:\n\n" + _table(
        ["check", "required", "achieved", "result"], rows
    )


def _drop(condition: dict[str, Any]) -> float:
    change = condition.get("auc_change")
    return -float(change) if isinstance(change, int | float) else 0.0


def _table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _num(value: Any, digits: int = 3, signed: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _interval(ci: Any) -> str:
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        return f"{ci[0]:.3f}–{ci[1]:.3f}"
    return ""


def _plain(value: Any) -> str:
    """A setting for people: 'none' (unset, or an empty list) and 'yes'/'no', not Python's None and False."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value) if value else "none"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _counts(split_path: Path) -> list[dict[str, Any]]:
    if not split_path.is_file():
        return []
    from radflow.data.splits import data_counts

    return [
        {k: (int(v) if hasattr(v, "item") else v) for k, v in row.items()}
        for row in data_counts(split_path).to_dict("records")
    ]


def _model_info(model_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model file's config and training lineage; empty when it is not a radflow model file."""
    try:
        import torch

        saved = torch.load(model_path, map_location="cpu", weights_only=True)
        return dict(saved.get("config") or {}), dict(saved.get("lineage") or {})
    except Exception:  # a foreign model file: the card simply has no model section
        return {}, {}
