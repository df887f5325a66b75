"""The Prefect UI in a real headless Chromium: the retrain deployment's Run form shows radflow's typed
parameters, and a run submitted from it (epochs typed into the form) trains, evaluates and registers;
a run waiting for approval shows its Resume form, and a reviewer's approval there promotes the model."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import api_post, deployment_id, final_state, prefect_server, served_deployments, state_reached
from test_server import assert_promoted_with_30_epochs
from toyproject import sh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Root in a container: no sandbox; nothing may phone home.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def form_field(label: str) -> str:
    """XPath of the Prefect UI's schema-form property whose label reads LABEL."""
    span = f"//span[normalize-space()='{label}']"
    return f"{span}/ancestor::div[contains(concat(' ', @class, ' '), ' schema-form-property ')][1]"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        pytest.skip("chromium and chromium-driver are not installed (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="radflow-chromium-")
    options = webdriver.ChromeOptions()
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def ui_api(tmp_path: Path) -> Iterator[str]:
    with prefect_server(tmp_path / "prefect-home", ui=True) as api:
        yield api


def test_clicking_run_with_a_typed_parameter_retrains_and_registers(
    ui_api: str, toy_project: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.wait import WebDriverWait

    wait = WebDriverWait(browser, 60)
    with served_deployments(toy_project, ui_api) as served:
        deployment = deployment_id(ui_api, "nightly", served)
        browser.get(f"{ui_api.removesuffix('/api')}/deployments/deployment/{deployment}/run")

        # the form is RetrainParameters, with its descriptions (the page renders in steps: wait for them)
        shown = ("train.epochs for this run.", "Set (Optional)", "Force (Optional)", "Split Strategy")
        wait.until(lambda page: all(text in page.find_element(By.TAG_NAME, "body").text for text in shown))
        field = form_field("Train Epochs (Optional)")
        wait.until(
            ec.element_to_be_clickable((By.XPATH, f"{field}//button[normalize-space()='int']"))
        ).click()
        number = wait.until(ec.element_to_be_clickable((By.XPATH, f"{field}//input[@type='number']")))
        number.send_keys("30")
        browser.find_element(By.XPATH, "//button[normalize-space()='Submit']").click()
        wait.until(ec.url_contains("tab=Runs"))  # the UI went back to the deployment's runs

        run = final_state(ui_api, served)

    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"]["params"]["train_epochs"] == 30  # type: ignore[index]
    assert_promoted_with_30_epochs(toy_project)


def test_a_reviewer_approves_a_paused_run_in_its_resume_form(
    ui_api: str, toy_project: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.wait import WebDriverWait

    wait = WebDriverWait(browser, 60)
    with served_deployments(toy_project, ui_api) as served:
        deployment = deployment_id(ui_api, "nightly", served)
        parameters = {"params": {"train_epochs": 30, "register_promote": "approve"}}
        created = api_post(f"{ui_api}/deployments/{deployment}/create_flow_run", {"parameters": parameters})
        run_id = created.json()["id"]
        state_reached(ui_api, served, ("PAUSED",), run_id)
        browser.get(f"{ui_api.removesuffix('/api')}/runs/flow-run/{run_id}")

        wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Resume']"))).click()
        wait.until(lambda page: "passed radflow's gate" in page.find_element(By.TAG_NAME, "body").text)
        wait.until(ec.element_to_be_clickable((By.XPATH, "//label[@role='switch']"))).click()  # Approve
        for label, text in (("Reviewer", "Dr Ada Reviewer"), ("Note (Optional)", "read the card")):
            browser.find_element(By.XPATH, f"{form_field(label)}//textarea").send_keys(text)
        browser.find_element(By.XPATH, "//button[normalize-space()='Submit']").click()
        run = final_state(ui_api, served, run_id)

    assert run["state_type"] == "COMPLETED", run["state"]
    tags = sh(toy_project, "git", "tag", "--list").split()
    assert tags == ["radflow-model#prod#1", "radflow-model@v0.1.0"]
    message = sh(toy_project, "git", "tag", "-l", "--format=%(contents)", "radflow-model#prod#1")
    assert "approved by Dr Ada Reviewer: read the card" in message
