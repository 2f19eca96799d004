# The two commands a new user needs (see README.md):
#   make demo   set everything up and run a simulated gate on this machine
#   make test   set everything up (test tools, mosquitto) and run all tests
VENV ?= .venv

.PHONY: demo test setup setup-test lint bench bench-full clean install uninstall deb

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

demo: setup
	$(VENV)/bin/edged demo --fresh

# Four processes even on a two-core board: most tests wait on a broker, a pty or a
# daemon rather than compute. TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 4
test: setup-test
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS)

lint: setup-test
	$(VENV)/bin/ruff check .

bench: setup
	$(VENV)/bin/python bench/run_all.py

bench-full: setup
	$(VENV)/bin/python bench/run_all.py --full

# The package for a box without internet (docs/INSTALL.md): make deb [ARCH=arm64]
deb: setup
	$(VENV)/bin/python scripts/build-deb.py $(if $(ARCH),--arch $(ARCH))

# On the board from a clone (docs/INSTALL.md): sudo make install; sudo make uninstall [PURGE=1]
install:
	scripts/install.sh

uninstall:
	scripts/uninstall.sh $(if $(PURGE),--purge)

clean:
	rm -rf var/demo .pytest_cache
