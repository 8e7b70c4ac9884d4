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
  field_manager:
    description:
      - Server-side apply field manager. Fields this manager applied and no longer applies are removed.
      - Give tasks that apply different parts of one object (a namespace one role labels and another role
        only ensures) different managers, so that each keeps only its own fields.
    type: str
    default: aiinfra.cluster
  batch:
    description:
      - Several instances in one module run, for example every model of an inventory list. Each element takes
        this module's own options, and may set its own O(state), O(wait) and O(wait_timeout) (the top-level ones
        when unset); the connection options, O(force_conflicts), O(field_manager) and O(delete_propagation) stay at
        the top level and apply to all elements.
      - Each element is validated like the module's options before anything is sent; the module's own options
        cannot also be set next to O(batch).
      - One run reuses one connection and one list per kind and namespace, where a loop starts a module process
        per item. Results are returned per element in RV(batch).
      - Every element is applied before any of them is waited for; then all are waited for together, against one
        O(wait_timeout) counted from the moment the last element was applied.
    type: list
    elements: dict
  wait:
    description:
      - Wait until each object is ready (its kind's readiness signal) or, with O(state=absent), gone.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait, for all the objects of one run together (not per object). On timeout the module fails
        with the last status and the object's recent Events.
      - With O(state=present), an object that is being deleted (held by a finalizer) is waited for, up to this
        long, and then created again; with O(wait=false) the module fails naming the finalizers instead.
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
