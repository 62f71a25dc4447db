# The README's two commands. Both work on a fresh clone: they create .venv and install what they need.
#   make demo        one benchmark on the default board (host), recorded in ./mlflow.db
#   make test        the whole test suite (also what .ci/run calls)
#   make test-fast   the developers' tier, under 3 minutes on 2 cores: everything but the tests marked slow
#                    (conversion-heavy and QEMU sweeps, the browser), over both cores (pytest-xdist)

BOOT_PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
PYTHON      := $(VENV)/bin/python
INSTALLED   := $(VENV)/.installed
# Debian packages the tests need: the Arm toolchain and newlib (firmware), QEMU (emulated boards), clang (fuzzer),
# Chromium and a font for it (the MLflow UI test drives it headless through Playwright; no browser download).
DEBIAN_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm clang libclang-rt-14-dev \
                   chromium fonts-liberation

.PHONY: demo test test-fast install debian-packages clean

$(PYTHON):
	$(BOOT_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip

$(INSTALLED): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $@

install: $(INSTALLED)

debian-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$missing; \
	fi

demo: install
	$(PYTHON) -m unpu
	@echo "Open the MLflow UI: $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db  (http://127.0.0.1:5000)"

test: install debian-packages
	$(PYTHON) -m pytest

test-fast: install debian-packages
	$(PYTHON) -m pytest -m "not slow" -n 2 --dist loadfile

clean:
	rm -rf outputs multirun .unpu_cache mlruns mlartifacts .pytest_cache
