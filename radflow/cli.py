"""The `radflow` command line. Heavy modules are imported inside each command, so `--help` is fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from radflow.errors import ConfigError, user_errors

app = typer.Typer(
    help="Retrain medical-imaging diagnosis models from DICOM, reproducibly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

PARAMS = typer.Option("--params", help="The params.yaml to validate and read.")


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the synthetic DICOM cohort into.")],
    patients: Annotated[int, typer.Option(min=2, help="Number of synthetic patients.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same bytes.")] = 0,
) -> None:
    """Write a deterministic synthetic chest CR/DX/CT cohort with labels.csv (the demo cohort)."""
    from radflow.synth.cohort import write_cohort

    with user_errors():
        summary = write_cohort(out_dir, patients=patients, seed=seed)
    typer.echo(summary.describe())


@app.command("import-medmnist")
def import_medmnist(
    npz: Annotated[
        list[Path],
        typer.Argument(
            help="MedMNIST .npz files (train_/val_/test_ images and labels), one cohort: each split "
            "from one file, e.g. a train+val file and a test file."
        ),
    ],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the DICOM cohort and labels.csv into.")],
) -> None:
    """Convert MedMNIST arrays into a DICOM cohort (2D → CR-like images, 3D → CT series) with labels.csv."""
    from radflow.data.medmnist import import_medmnist as convert

    with user_errors():
        summary = convert(npz, out_dir)
    typer.echo(summary.describe())


DASK = typer.Option(
    "--dask",
    help="Run on the Dask cluster whose scheduler is at this address (tcp://host:8786); "
    "its workers must share this file system. Same as setting RADFLOW_DASK_ADDRESS.",
)


@app.command()
def ingest(
    src_dir: Annotated[Path, typer.Argument(help="Folder scanned recursively for DICOM files.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for manifest.parquet.")],
    workers: Annotated[int, typer.Option(min=0, help="Header-reading processes; 0 = one per core.")] = 0,
    redact_paths: Annotated[
        bool,
        typer.Option(
            "--redact-paths/--real-paths",
            help="Redact patient identifiers in folder and file names (default), or keep the source's "
            "own paths in the outputs.",
        ),
    ] = True,
    hide_names: Annotated[
        bool,
        typer.Option(
            "--hide-names",
            help="Replace every folder and file name by a keyed token (ingest.redact_paths: all), for "
            "exports whose names may carry notes or IDs that no header holds.",
        ),
    ] = False,
    dask: Annotated[str | None, DASK] = None,
) -> None:
    """Scan DICOM headers into OUT/manifest.parquet (one row per input file), incrementally."""
    from radflow.config import IngestParams
    from radflow.dicom.workers import DASK_ADDRESS
    from tasks.ingest import run

    if dask:
        os.environ[DASK_ADDRESS] = dask
    with user_errors():
        if hide_names and not redact_paths:
            raise ConfigError("--hide-names and --real-paths contradict each other; pass one of them.")
        redact: bool | Literal["all"] = "all" if hide_names else redact_paths
        params = IngestParams(source=src_dir, workers=workers, redact_paths=redact)
        result = run(params, src_dir, out)
    typer.echo(result.describe())


@app.command()
def locate(
    ingest_dir: Annotated[Path, typer.Argument(help="The output folder of `radflow ingest`.")],
    paths: Annotated[
        list[str], typer.Argument(help="Paths as the manifest or quarantine report shows them.")
    ],
) -> None:
    """Print the real source file of each (redacted) path, for fixing a quarantined file; needs the key."""
    from radflow.dicom.paths import locate as find

    with user_errors():
        found = find(ingest_dir, paths)
    for real in found:
        typer.echo(real)


@app.command()
def clean(
    ingest_dir: Annotated[Path, typer.Argument(help="The output folder of `radflow ingest`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for arrays, series.parquet and dispositions.")],
    params: Annotated[Path, PARAMS] = Path("params.yaml"),
    dask: Annotated[str | None, DASK] = None,
) -> None:
    """Triage, assemble, check, decode and de-identify series; account for every input file."""
    from radflow.config import CleanParams, load_section
    from radflow.dicom.workers import DASK_ADDRESS
    from tasks.clean import run

    if dask:
        os.environ[DASK_ADDRESS] = dask
    with user_errors():
        section = load_section("clean", CleanParams, params) if params.exists() else CleanParams()
        result = run(section, ingest_dir, out)
    typer.echo(result.describe())


@app.command()
def run(
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a parameter for this run only, e.g. --set train.epochs=3."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Re-run every stage even if DVC finds no change.")] = False,
) -> None:
    """Run the retraining flow (Prefect over the DVC stages) and print where the results are."""
    from flows.retrain import main as run_flow

    with user_errors():
        run_flow(set_ or [], force=force)


@app.command()
def demo(
    patients: Annotated[int, typer.Option(min=2, help="Patients in the demo cohort.")] = 100,
) -> None:
    """Write the demo cohort if it is missing, then run the retraining flow on it."""
    from flows.retrain import main as run_flow
    from radflow.config import load_params
    from radflow.synth.cohort import ensure_cohort

    with user_errors():
        params = load_params()
        ensure_cohort(params.ingest.source, patients=patients, seed=0)
        run_flow([])


@app.command()
def serve(
    cron: Annotated[str, typer.Option(help="When to retrain, as cron (server time zone).")] = "0 2 * * *",
) -> None:
    """Serve the nightly `retrain` and the on-demand `predict` deployments (forms in the Prefect UI)."""
    from flows.deployments import main as serve_deployment

    with user_errors():
        serve_deployment(["--cron", cron])


@app.command()
def pull(
    url: Annotated[str, typer.Argument(help="DICOMweb root of the PACS, e.g. http://pacs:8042/dicom-web.")],
    out: Annotated[Path, typer.Option("--out", help="Folder the studies are written into (ingest.source).")],
    modality: Annotated[
        list[str] | None,
        typer.Option(help="Studies holding this modality; repeat for several (default: all)."),
    ] = None,
    study_date: Annotated[str, typer.Option(help="StudyDate range: 20260101-20261231, 20260101- ...")] = "",
    transfer_syntax: Annotated[
        str, typer.Option(help="original (as stored) or explicit-little-endian (transcoded by the PACS).")
    ] = "original",
) -> None:
    """Fetch the studies a PACS holds that are not yet whole in OUT (QIDO-RS, WADO-RS).

    Credentials come from RADFLOW_PACS_USER and RADFLOW_PACS_PASSWORD, or RADFLOW_PACS_TOKEN.
    """
    from pydantic import ValidationError

    from radflow.config.pacs import PacsParams
    from radflow.dicom.dicomweb import pull as pull_studies
    from radflow.errors import ConfigError

    with user_errors():
        try:
            params = PacsParams(
                url=url, modalities=modality or [], study_date=study_date, transfer_syntax=transfer_syntax
            )
        except ValidationError as err:
            raise ConfigError(err.errors()[0]["msg"].removeprefix("Value error, ") + ".") from None
        result = pull_studies(params, out)
    typer.echo(result.describe())
    for failure in sorted(set(result.failures)):
        typer.echo(f"warning: {failure}", err=True)
    if result.failed_series:
        raise typer.Exit(1)


@app.command()
def predict(
    source: Annotated[Path, typer.Argument(help="Folder of new DICOM studies to score.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for ingest/, clean/ and predictions.csv.")],
    version: Annotated[str | None, typer.Option(help="Registered version, e.g. v0.3.0.")] = None,
    stage: Annotated[
        str | None, typer.Option(help="Score with this stage's version (default: prod).")
    ] = None,
) -> None:
    """Score new studies with a registered model version, through the same ingest and clean."""
    from tasks.predict import run as run_predict

    with user_errors():
        result = run_predict(Path.cwd(), source, out, version, stage)
    typer.echo(result.describe())


@app.command()
def models(
    params: Annotated[Path, PARAMS] = Path("params.yaml"),
) -> None:
    """List the registered versions of this project's model: stages, test AUC, gate verdict."""
    from rich.console import Console
    from rich.table import Table

    from radflow.config import load_params
    from radflow.registry import listing

    with user_errors():
        name = load_params(params).register.model
        rows = listing(Path.cwd(), name)
    if not rows:
        typer.echo(f"no version of {name} is registered yet; `radflow run` registers one.")
        return
    table = Table(title=f"{name} (git tags; `git checkout {name}@VERSION` then `dvc checkout` restores one)")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*row.values())
    Console().print(table)


@app.command("key-fingerprint")
def show_key_fingerprint() -> None:
    """Print the de-identification key's public fingerprint, as model cards and ingest record it.

    The key is RADFLOW_DEID_KEY, else .radflow/deid.key here; none is created.
    """
    from radflow.dicom.deid import key_fingerprint, load_key

    with user_errors():
        key = load_key(create=False)
    typer.echo(key_fingerprint(key))


@app.command("check-params")
def check_params(params: Annotated[Path, PARAMS] = Path("params.yaml")) -> None:
    """Validate params.yaml and say so."""
    from radflow.config import load_params

    with user_errors():
        load_params(params)
    typer.echo(f"{params} is valid.")


if __name__ == "__main__":
    app()
