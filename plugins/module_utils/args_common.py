# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Shared option specs, mirrored by plugins/doc_fragments. Names and K8S_AUTH_* variables match
kubernetes.core so AWX credentials and module_defaults carry over unchanged."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback


def _env(name):
    return (env_fallback, ["K8S_AUTH_" + name])


AUTH_ARG_SPEC = {
    "kubeconfig": {"type": "raw", "fallback": _env("KUBECONFIG")},
    "context": {"type": "str", "fallback": _env("CONTEXT")},
    "host": {"type": "str", "fallback": _env("HOST")},
    "api_key": {"type": "str", "no_log": True, "fallback": _env("API_KEY")},
    "username": {"type": "str", "fallback": _env("USERNAME")},
    "password": {"type": "str", "no_log": True, "fallback": _env("PASSWORD")},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"], "fallback": _env("VERIFY_SSL")},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"], "fallback": _env("SSL_CA_CERT")},
    "client_cert": {"type": "path", "aliases": ["cert_file"], "fallback": _env("CERT_FILE")},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False, "fallback": _env("KEY_FILE")},
    "proxy": {"type": "str", "fallback": _env("PROXY")},
    "impersonate_user": {"type": "str", "fallback": _env("IMPERSONATE_USER")},
    "impersonate_groups": {"type": "list", "elements": "str", "fallback": _env("IMPERSONATE_GROUPS")},
    "impersonate_uid": {"type": "str", "fallback": _env("IMPERSONATE_UID")},
    "impersonate_extra": {"type": "dict"},
    "request_timeout": {"type": "int", "default": 30},
}

APPLY_ARG_SPEC = {
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "force_conflicts": {"type": "bool", "default": False},
    "field_manager": {"type": "str", "default": "aiinfra.cluster"},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 300},
    "delete_propagation": {"type": "str", "default": "Foreground", "choices": ["Foreground", "Background", "Orphan"]},
}

AUTH_PARAM_NAMES = tuple(AUTH_ARG_SPEC)


def merge_specs(*specs):
    merged = {}
    for spec in specs:
        merged.update(spec)
    return merged
