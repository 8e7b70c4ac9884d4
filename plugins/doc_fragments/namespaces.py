# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """create_namespaces, for the modules whose objects live in their O(namespace)."""

    DOCUMENTATION = r"""
options:
  create_namespaces:
    description:
      - Create the namespace of each object first (server-side apply, labelled
        C(app.kubernetes.io/managed-by=aiinfra.cluster), field manager C(aiinfra.cluster.namespaces)), once per
        namespace for the whole O(batch), in the same run. Only for O(state=present) (elements); namespaces are never
        deleted.
      - The result lists them in C(namespaces), one entry each, as in C(resources).
    type: bool
    default: false
    version_added: 1.1.0
"""
