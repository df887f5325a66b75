# Two commands for a fresh machine with Python 3.11 and pip:
#   make demo   install into .venv and run the retraining pipeline on the built-in demo cohort
#   make test   install into .venv and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

# System packages the tests start for real on loopback: a PACS (Orthanc with its DICOMweb plugin)
# and a browser for the Prefect UI (Chromium and its WebDriver). Installed with apt-get when missing
# and we are root; otherwise those tests skip and say why.
SYSTEM_PACKAGES := orthanc orthanc-dicomweb chromium chromium-driver
SYSTEM_FILES    := /usr/sbin/Orthanc /usr/share/orthanc/plugins/libOrthancDicomWeb.so /usr/bin/chromium /usr/bin/chromedriver

.PHONY: install demo test lint clean-outputs system-packages

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/radflow demo

system-packages:
	@missing=""; for f in $(SYSTEM_FILES); do test -e $$f || missing="$$missing $$f"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(SYSTEM_PACKAGES) (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; } \
		|| echo "note: apt-get could not install $(SYSTEM_PACKAGES): the PACS and UI tests will skip"; \
	else echo "note: $(SYSTEM_PACKAGES) not installed (needs root and apt-get): the PACS and UI tests will skip"; fi

test: install system-packages
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check radflow tasks flows tests benchmarks
	$(BIN)/mypy radflow tasks flows

clean-outputs:
	rm -rf data/ingest data/clean data/split models reports checkpoints
