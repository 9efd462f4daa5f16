# Two entry points on a fresh Debian/Ubuntu machine: `make demo` and `make test`. Both bootstrap what they need
# (espeak-ng from apt, .venv from constraints/dev.txt) and are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bootstrapped
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: demo test check static colcon-install launch-deps interfaces humble-api lint format bootstrap system-deps clean

demo: interfaces
	$(PY) -m ishowtts_ros.ros.demo

ROS_LAUNCH_WHEELS ?= ../shared/wheels/ros-launch

# Everything: lint, types, unit, engine, ROS (real DDS), Wyoming and launch tests, then the ROS suites again on
# the API surface of ROS 2 Humble (JetPack 6).
test: static interfaces colcon-install launch-deps
	$(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory humble-api

# rclpy's APIs newer than Humble removed in every process (test/support/humble_api/sitecustomize.py).
humble-api: interfaces
	PYTHONPATH=test/support/humble_api $(PY) -m pytest -q -p no:cacheprovider test/ros/test_node.py \
		test/ros/test_say_action.py test/ros/test_say_windows.py test/ros/test_reliability.py test/ros/test_player.py \
		test/ros/test_plugin_parameters.py \
		$(PYTEST_ARGS)

# ishowtts_interfaces (the Say action, the AudioChunk message) built into the venv, as colcon would into a ROS
# install (tools/build_interfaces.sh; skipped when the sources have not changed).
interfaces: bootstrap
	tools/build_interfaces.sh $(VENV)

# Both packages as colcon builds them for ROS users, with the venv as the underlay (the launch test starts tts_node
# from here).
colcon-install: interfaces
	AMENT_PREFIX_PATH=$(abspath $(VENV)) CMAKE_PREFIX_PATH=$(abspath $(VENV)) $(VENV)/bin/colcon --log-base build/colcon/log \
		build --paths . ishowtts_interfaces --build-base build/colcon/build --install-base build/colcon/install \
		--cmake-args -DPython3_EXECUTABLE=$(abspath $(PY)) -DBUILD_TESTING=OFF --event-handlers console_direct- >/dev/null

# launch / launch_ros / launch_testing are on no registry: installed from the wheelhouse beside the repo if present.
launch-deps: bootstrap
	@if [ -x $(ROS_LAUNCH_WHEELS)/install.sh ]; then $(ROS_LAUNCH_WHEELS)/install.sh $(VENV) | tail -1; \
	else echo "no $(ROS_LAUNCH_WHEELS): the launch_testing test will be skipped"; fi

# The edit loop: lint, types and the tests that start no process and no DDS participant.
check: static
	$(PY) -m pytest -q test/unit test/engine test/tools -m "not slow and not ros and not gpu" $(PYTEST_ARGS)

static: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

lint: bootstrap
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bootstrap: system-deps $(STAMP)

system-deps:
	@command -v espeak-ng >/dev/null || { \
		echo "installing espeak-ng (the CPU fallback voice) and PortAudio with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq espeak-ng libportaudio2 >/dev/null; }

$(STAMP): constraints/dev.txt requirements-dev.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints/dev.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) demo_output build *.egg-info .pytest_cache .ruff_cache
