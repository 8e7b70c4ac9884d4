# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Kubernetes quantities and the values the API server normalises, in one place.

The API server stores a resource.Quantity in its canonical form (`0.5` -> `500m`, `1024Mi` -> `1Gi`,
the GPU count `1` -> `"1"`), so a manifest written in another notation never compares equal to
what the server returns. The engine compares (and hashes) through these functions instead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import decimal
import re

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError

# resource.Quantity syntax. A bad quantity in a built-in kind is answered with a bare 500
# "failed to convert" rather than a field error, so builders check it first.
QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")

_SUFFIXES = {
    "": 1, "n": decimal.Decimal("1e-9"), "u": decimal.Decimal("1e-6"), "m": decimal.Decimal("1e-3"),
    "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18,
    "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
}

# Maps whose values are quantities (ResourceRequirements, ResourceQuota, LimitRange, Pod overhead,
# node capacity) and single fields that are one (emptyDir's sizeLimit; a Kueue ClusterQueue's
# quotas, which its webhook stores canonical: "1000" -> "1k").
QUANTITY_MAPS = frozenset(("limits", "requests", "hard", "overhead", "capacity", "allocatable",
                           "default", "defaultRequest", "max", "min", "maxLimitRequestRatio"))
QUANTITY_FIELDS = frozenset(("sizeLimit", "nominalQuota", "borrowingLimit", "lendingLimit"))


def check_quantity(value, option):
    """`value` as a string, or an InputError naming `option` when it is no quantity."""
    if isinstance(value, bool) or not QUANTITY.match(str(value)):
        raise InputError("option %s is %r, not a Kubernetes quantity (for example 500m, 2, 8Gi)" % (option, value))
    return str(value)


def parse_quantity(value):
    """The value of a quantity as a Decimal; None when `value` is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    text = repr(value) if isinstance(value, float) else str(value)
    if not QUANTITY.match(text):
        return None
    number = text.rstrip("KMGTPEinumk")
    suffix = text[len(number):]
    try:
        return decimal.Decimal(number) * _SUFFIXES[suffix]
    except (decimal.InvalidOperation, KeyError):
        return None


def same_quantity(desired, actual):
    """True when both are quantities of the same value (`0.5` and `500m`, `1` and `"1"`)."""
    left, right = parse_quantity(desired), parse_quantity(actual)
    return left is not None and right is not None and left == right


def normal_form(value):
    """One spelling per quantity value (`0.5`, `500m` -> `0.5`): what the applied hash is taken of."""
    number = parse_quantity(value)
    if number is None:
        return value
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def is_quantity_field(parent_key, key):
    """Whether the scalar at `key`, inside a map held at `parent_key`, is a quantity."""
    return parent_key in QUANTITY_MAPS or key in QUANTITY_FIELDS


def same_scalar(desired, actual, parent_key=None, key=None):
    """Equality of two scalars as the API server judges them after normalising: quantities by
    value. (Other integers need nothing: an int field given a string is rejected, and an
    int-or-string field keeps what it was given.)"""
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual
    if desired == actual:
        return True
    return is_quantity_field(parent_key, key) and same_quantity(desired, actual)


def normalise_quantities(obj, parent_key=None):
    """A copy of `obj` with every quantity in its normal form."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(value, (dict, list)) and is_quantity_field(parent_key, key):
                out[key] = normal_form(value)
            else:
                out[key] = normalise_quantities(value, key)
        return out
    if isinstance(obj, list):
        return [normalise_quantities(item, parent_key) for item in obj]
    return obj
