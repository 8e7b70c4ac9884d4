# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""One exception family for the engine; modules turn it into fail_json once, in main()."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class KubeError(Exception):
    """Any failure the engine reports to the user. `details` lands in the module result."""

    def __init__(self, msg, **details):
        super(KubeError, self).__init__(msg)
        self.msg = msg
        self.details = details


class ConfigError(KubeError):
    """Bad connection settings: kubeconfig missing, unknown context, no credentials."""


class ConnectionFailed(KubeError):
    """The API server could not be reached (after retries)."""


class ApiError(KubeError):
    """The API server answered with an error Status."""

    def __init__(self, msg, status=None, reason=None, body=None, **details):
        super(ApiError, self).__init__(msg, status=status, reason=reason, **details)
        self.status = status
        self.reason = reason
        self.body = body or {}


class ResourceNotInstalled(KubeError):
    """The kind's API (usually a CRD) is not served by this cluster."""


class WaitTimeout(KubeError):
    """A readiness wait ran out of time; details carry the last status and recent events."""


class WaitFailed(KubeError):
    """The object reached a terminal failure (e.g. Job Failed) while waiting."""


class InputError(KubeError):
    """Invalid module input, found before anything is sent."""
