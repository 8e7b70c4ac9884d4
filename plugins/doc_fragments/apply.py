# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """State, server-side apply and wait options shared by every resource module."""

    DOCUMENTATION = r"""
options:
  state:
    description:
      - V(present) applies the objects with server-side apply (field manager C(aiinfra.cluster)).
      - V(absent) deletes them; objects that do not exist are not a change.
    type: str
    default: present
    choices: [present, absent]
  force_conflicts:
    description:
      - Take over fields owned by another field manager instead of failing with the conflict.
    type: bool
    default: false
  wait:
    description:
      - Wait until each object is ready (its kind's readiness signal) or, with O(state=absent), gone.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait. On timeout the module fails with the last status and the object's recent Events.
    type: int
    default: 300
  delete_propagation:
    description:
      - Propagation policy for deletes.
    type: str
    default: Foreground
    choices: [Foreground, Background, Orphan]
notes:
  - Check mode sends the same requests with C(dryRun=All), so the API server validates them and nothing is stored.
  - With C(--diff), only the fields the module sets are shown (no status, managedFields or resourceVersion).
  - A second run with the same input sends no write and reports C(changed=false).
"""
