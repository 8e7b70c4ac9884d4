# aiinfra.cluster: set-up and test entry points. Every target creates what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
CLUSTER := $(VENV)/bin/python tools/local_cluster.py
COLLECTIONS := $(CURDIR)/.cache/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR := 0
export K8S_AUTH_KUBECONFIG ?= $(CURDIR)/.local-cluster/kubeconfig
export PATH := $(shell bash tools/gobuild/build.sh --print-only 2>/dev/null):$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv collection up down status site test test-unit test-integration test-molecule lint clean

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The collection is the repository root; expose it as aiinfra.cluster without copying.
collection:
	@mkdir -p $(COLLECTIONS)/ansible_collections/aiinfra
	@ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/aiinfra/cluster

up: venv collection
	$(CLUSTER) up

down:
	@if [ -x $(VENV)/bin/python ]; then $(CLUSTER) down; fi

status:
	$(CLUSTER) status

# Main job: the local control plane with simulated GPU nodes, then site.yml against it.
site: up
	ansible-playbook -i inventories/local site.yml

test-unit: venv collection
	$(VENV)/bin/pytest -q tests/unit

test-integration: up
	$(VENV)/bin/pytest -q tests/integration

test-molecule: up
	$(VENV)/bin/molecule test -s local

# Whole suite: unit + integration + molecule on a fresh control plane, always brought down.
test: venv collection
	@set -e; trap '$(CLUSTER) down' EXIT; \
	$(CLUSTER) up; \
	$(VENV)/bin/pytest -q tests/unit tests/integration; \
	$(VENV)/bin/molecule test -s local

clean: down
	rm -rf $(VENV) .cache
