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

.PHONY: test-kind venv collection operators up down status site uninstall test test-unit test-integration test-molecule test-distribution test-nodes benchmark clean

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

# The operators' controllers `up` runs (AIINFRA_OPERATORS, default jobset,kserve,trainer,kueue);
# `up` builds them itself when missing, this only builds.
comma := ,
OPERATORS ?= $(or $(AIINFRA_OPERATORS),jobset,kserve,trainer,kueue)
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

# Node tier in a Debian 12 container; Docker from Debian's docker.io and a control plane of its own
# in .local-cluster-nodes (the Node objects nodes.yml cordons and drains), both started and stopped
# here. Its own state directory lets it run beside the main control plane (`make test` does).
NODES_CLUSTER := $(CURDIR)/.local-cluster-nodes
test-nodes: venv collection
	@set -e; export AIINFRA_LOCAL_CLUSTER_DIR=$(NODES_CLUSTER); \
	trap 'bash tools/docker_down.sh; $(CLUSTER) down' EXIT; \
	$(CLUSTER) up --no-operators --gpu-nodes 0 --cpu-nodes 0 --crds-dir ''; \
	bash tools/docker_up.sh; \
	bash tools/node_image.sh; \
	export AIINFRA_NVIDIA_CTK_REPO="$$(bash tools/nvidia_ctk_repo.sh)"; \
	$(VENV)/bin/molecule test -s nodes -p node-debian12

# A kind cluster on the node image built here, offline (tools/kind: node_image.sh, cluster.sh), on
# a Docker engine started and stopped here: nodes, system pods and a workload across nodes, then
# nothing left behind.
test-kind: venv
	@set -e; trap 'bash tools/docker_down.sh' EXIT; \
	bash tools/docker_up.sh; \
	$(VENV)/bin/pytest -q -p no:cacheprovider -s tests/kind

# 149 objects through this collection vs kubernetes.core vs kubectl, and gpu_node_info at 1000 nodes.
benchmark: venv collection
	tools/benchmark/run.sh

# Whole suite on a fresh control plane, always brought down: unit, integration and distribution
# tests (pytest), the site through Molecule (converge, idempotence, verify), and, beside them on a
# control plane of their own, the node roles (test-nodes; its output follows the others').
# The tests that need no cluster or start their own (ansible-test sanity, ansible-lint, the
# changelog, a fresh clone's `make site`, the launcher's and the check-mode preview's control
# planes) are CPU-bound: they run beside the suite too, at a lower priority, in the time it spends
# waiting on controllers. They start once `up` has built the control plane and the controllers
# (on a cold cache their own launchers would otherwise wait for that build past their timeouts).
# Last, alone, once the rest passed: the kind cluster on the offline node image (test-kind).
NODES_LOG := $(CURDIR)/.cache/test-nodes.log
BESIDE_LOG := $(CURDIR)/.cache/test-beside.log
BESIDE_TESTS := tests/integration/test_launcher.py tests/integration/test_check_mode.py tests/distribution/test_sanity.py \
	tests/distribution/test_lint.py tests/distribution/test_changelog.py tests/distribution/test_fresh_clone.py
test: venv collection
	@set -e; mkdir -p .cache; rm -f $(BESIDE_LOG); \
	$(MAKE) --no-print-directory test-nodes > $(NODES_LOG) 2>&1 & nodes=$$!; beside=; \
	report() { rc=0; \
	  if [ -n "$$beside" ]; then \
	    if ! wait $$beside; then rc=1; fi; \
	    echo "== tests on their own control planes or none (run beside the suite above; log $(BESIDE_LOG)):"; cat $(BESIDE_LOG); \
	  fi; \
	  if ! wait $$nodes; then rc=1; fi; \
	  echo "== node tier (make test-nodes, run beside the suite above; log $(NODES_LOG)):"; cat $(NODES_LOG); return $$rc; }; \
	trap '$(CLUSTER) down' EXIT; \
	if $(CLUSTER) up; then \
	  nice -n 5 $(VENV)/bin/pytest -q -p no:cacheprovider --durations=5 $(BESIDE_TESTS) > $(BESIDE_LOG) 2>&1 & beside=$$!; \
	  if $(VENV)/bin/pytest -q --durations=15 tests/unit tests/integration tests/distribution $(addprefix --ignore=,$(BESIDE_TESTS)) \
	      && $(VENV)/bin/molecule test -s local; then suite=0; else suite=1; fi; \
	else suite=1; fi; \
	report; test $$suite -eq 0; \
	$(CLUSTER) down; \
	$(MAKE) --no-print-directory test-kind

clean: down
	rm -rf $(VENV) .cache .local-cluster-nodes
