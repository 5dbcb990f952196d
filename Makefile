# The two commands of the README: `make book` (execute every chapter, render the HTML book) and
# `make test` (the test suite). Both create the isolated environment .venv/ first if it is missing
# or older than pyproject.toml / constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick
SEED ?= 0
DEVICE ?= auto

.PHONY: book test test-book env chapter golden mutation known-mutants lock clean

book: $(STAMP)
	$(BIN)/nsdebook build --profile $(PROFILE) --seed $(SEED) --device $(DEVICE)

test: $(STAMP)
	$(BIN)/python -m pytest

# `make test-book`: only the slow tests (the book built once at ci, then opened in headless Chromium),
# with the counts they checked.
test-book: $(STAMP)
	$(BIN)/python -m pytest tests/test_book.py tests/test_browser.py -rA

env: $(STAMP)

# `make chapter CHAPTER=ch01_signals PROFILE=paper` executes one chapter without rendering.
chapter: $(STAMP)
	$(BIN)/nsdebook run $(CHAPTER) --profile $(PROFILE) --seed $(SEED) --device $(DEVICE)

# `make golden`: regenerate tests/golden/ (every artifact kind's output at a tiny configuration) after bumping the
# version of a kind whose output changed on purpose; `make test` fails while they disagree.
golden: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python tests/golden_runs.py --write

# uv installs the pinned set much faster than pip, compiled to bytecode as pip does (without it every worker process,
# started with -B, compiles torch again: twice the import time); where uv cannot be installed or fails, pip installs
# the same pins.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	( $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv \
	  && $(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c constraints.txt -e '.[test]' ) \
	|| $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name nsdebook --display-name "Python (nsdebook)"
	touch $(STAMP)

# `make mutation` (not run in CI; minutes to hours per module): mutation testing of the modules that decide
# what the book reports, killed / survived per module. `make mutation MODULES=nsdelib/training/trainer.py` runs
# some; `MUTATION_ARGS="--sample 200"` tests a seeded random sample of each module's mutants (the trainer's
# every mutant retrains models: hours on two cores), `MUTATION_ARGS=--survivors` prints what survived.
mutation: $(VENV)/.mutation-installed
	$(BIN)/python tools/mutation_report.py $(MUTATION_ARGS) $(MODULES)

# `make known-mutants` (not run in CI; minutes): the bugs an earlier mutation probe found that no test
# caught, put back one at a time; each must be killed by the tests named beside it.
known-mutants: $(STAMP)
	$(BIN)/python tools/known_mutants.py

$(VENV)/.mutation-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,mutation]'
	touch $@

# Re-pin constraints.txt to what is installed now (after changing pyproject.toml on purpose).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check > constraints.txt

clean:
	rm -rf _build
