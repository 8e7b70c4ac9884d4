#!/usr/bin/env python3
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The apply engine without Ansible: one process applies every object of a multi-document file,
the way the modules' bundles do (read, compare, dry-run, apply). The benchmark's reference for
how much of a playbook's time is the engine and how much is Ansible starting module processes.

    engine_apply.py FILE   (the cluster from K8S_AUTH_KUBECONFIG)
"""

import json
import os
import sys

# Imported for its side effect: it puts the collection on sys.path.
import workload  # noqa: F401  pylint: disable=unused-import
import yaml

from ansible_collections.aiinfra.cluster.plugins.module_utils.apply import ApplyEngine
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import KubeClient, config_from_params


def main(argv):
    with open(argv[1]) as handle:
        objects = [doc for doc in yaml.load_all(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if doc]
    client = KubeClient(config_from_params({"kubeconfig": os.environ["K8S_AUTH_KUBECONFIG"]}))
    try:
        results, _diffs = ApplyEngine(client).apply_all(objects)
    finally:
        client.close()
    print(json.dumps({"changed": sum(1 for r in results if r["changed"]), "api_requests": client.stats}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
