# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Kueue's labels on the workloads this collection builds: the LocalQueue a workload waits in and
its WorkloadPriorityClass. Kueue reads them from a job's own labels; a Deployment's pods carry
them too (Kueue admits serving pods one by one, through its pod integration)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
# The scheduling gate Kueue's pod webhook puts on a pod it manages, lifted on admission.
ADMISSION_GATE = "kueue.x-k8s.io/admission"

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_OPTIONS = (("queue_name", QUEUE_LABEL, "LocalQueue"), ("workload_priority_class", PRIORITY_LABEL, "WorkloadPriorityClass"))


def queue_labels(params):
    """{label: value} for the queueing options set in params; InputError on a name Kueue cannot hold."""
    labels = {}
    for option, label, kind in _OPTIONS:
        value = params.get(option)
        if value is None:
            continue
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise InputError("option %s %r: use the name of a Kueue %s (a DNS subdomain)" % (option, value, kind))
        labels[label] = value
    return labels
