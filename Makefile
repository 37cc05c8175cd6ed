# `make run` and `make test` work on a fresh machine: each builds .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install sample screenshot clean bundle bundle-test

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,hf,ray]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/paretolab

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check app tests bench scripts
	$(BIN)/lint-imports
	$(BIN)/mypy

BUNDLE_STAMP := $(VENV)/.bundle-installed
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
BUNDLE_TAR := dist/ParetoLab-$(VERSION)-linux-x86_64.tar.gz

$(BUNDLE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,hf,ray,bundle]"
	touch $(BUNDLE_STAMP)

# A one-folder desktop bundle (dist/ParetoLab) and its .tar.gz: minutes, so not part of `make test`.
bundle: $(BUNDLE_STAMP)
	rm -rf dist/ParetoLab $(BUNDLE_TAR)
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/paretolab.spec
	mkdir -p dist/ParetoLab/share/icons
	cp packaging/install.sh packaging/uninstall.sh dist/ParetoLab/
	cp packaging/io.github.paretolab.ParetoLab.desktop packaging/io.github.paretolab.ParetoLab.metainfo.xml \
	   packaging/paretolab-mime.xml dist/ParetoLab/share/
	cp resources/icons/* dist/ParetoLab/share/icons/
	tar -C dist -czf $(BUNDLE_TAR) ParetoLab
	@du -sh dist/ParetoLab $(BUNDLE_TAR)

bundle-test:
	packaging/bundle_test.sh dist/ParetoLab

sample: $(STAMP)
	$(BIN)/python scripts/build_sample.py

clean:
	rm -rf $(VENV) build dist *.egg-info app/*.egg-info
