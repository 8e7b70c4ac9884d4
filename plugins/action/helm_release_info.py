# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Runs the helm_release_info module in the controller process on a local connection (see plugin_utils/in_process)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.aiinfra.cluster.plugins.plugin_utils.in_process import InProcessModuleAction


class ActionModule(InProcessModuleAction):
    pass
