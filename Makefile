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

.PHONY: venv collection operators up down status site uninstall test test-unit test-integration test-molecule test-distribution test-nodes benchmark clean

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

# The operators' controllers `up` runs (AIINFRA_OPERATORS, default jobset,kserve,trainer);
# `up` builds them itself when missing, this only builds. Kueue is built here on request only.
comma := ,
OPERATORS ?= $(or $(AIINFRA_OPERATORS),jobset,kserve,trainer)
operators:
	bash tools/gobuild/operators.sh $(subst $(comma), ,$(OPERATORS))

up: venv collection
	$(CLUSTER) up

down:
	@if [ -x $(VENV)/bin/python ]; then $(CLUSTER) down; fi

status:
	$(CLUSTER) status

# Main job: the local control plane with simulated GPU nodes and the operators' controllers, then
# site.yml against it; then what the controllers report for the workloads.
site: up
	ansible-playbook -i inventories/local site.yml
	@kubectl --kubeconfig "$(K8S_AUTH_KUBECONFIG)" get inferenceservices,trainjobs,jobsets,datasets -A

uninstall: up
	ansible-playbook -i inventories/local playbooks/uninstall.yml

test-unit: venv collection
	$(VENV)/bin/pytest -q tests/unit

test-integration: up
	$(VENV)/bin/pytest -q tests/integration

test-molecule: up
	$(VENV)/bin/molecule test -s local

test-distribution: up
	$(VENV)/bin/pytest -q tests/distribution

# Node tier in a Debian 12 container; Docker from Debian's docker.io and a local control plane
# (the Node objects nodes.yml cordons and drains), both started and stopped here.
test-nodes: venv collection
	@set -e; trap 'bash tools/docker_down.sh; $(CLUSTER) down' EXIT; \
	$(CLUSTER) up --no-operators --gpu-nodes 0 --cpu-nodes 0 --crds-dir ''; \
	bash tools/docker_up.sh; \
	bash tools/node_image.sh; \
	export AIINFRA_NVIDIA_CTK_REPO="$$(bash tools/nvidia_ctk_repo.sh)"; \
	$(VENV)/bin/molecule test -s nodes -p node-debian12

# 149 objects through this collection vs kubernetes.core vs kubectl, and gpu_node_info at 1000 nodes.
benchmark: venv collection
	tools/benchmark/run.sh

# Whole suite on a fresh control plane, always brought down: unit, integration and distribution
# tests (pytest), the site through Molecule (converge, idempotence, verify), then the node roles.
test: venv collection
	@set -e; trap '$(CLUSTER) down' EXIT; \
	$(CLUSTER) up; \
	$(VENV)/bin/pytest -q --durations=15 tests/unit tests/integration tests/distribution; \
	$(VENV)/bin/molecule test -s local
	$(MAKE) test-nodes

clean: down
	rm -rf $(VENV) .cache
