# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Pure parsers for nvidia-smi output, /proc/driver/nvidia/version and PCI sysfs (no commands run
here; the nvidia_gpu_info module runs them and unit tests feed recorded outputs)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

NVIDIA_PCI_VENDOR = "0x10de"
# PCI base class 0x03 = display controller (VGA 0x0300, 3D controller 0x0302 on data-centre GPUs).
DISPLAY_CLASS_PREFIX = "0x03"

# Fields for `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`, in this order.
QUERY_FIELDS = (
    ("index", "index"),
    ("name", "name"),
    ("uuid", "uuid"),
    ("pci_bus_id", "pci.bus_id"),
    ("memory_total_mib", "memory.total"),
    ("driver_version", "driver_version"),
    ("mig_mode_current", "mig.mode.current"),
    ("mig_mode_pending", "mig.mode.pending"),
    ("persistence_mode", "persistence_mode"),
    ("compute_capability", "compute_cap"),
)
QUERY_ARG = "--query-gpu=" + ",".join(field for _key, field in QUERY_FIELDS)

# nvidia-smi's own wording when the user-space tools are installed but the kernel module is not
# loaded (or does not match the tools).
NOT_LOADED_MARKERS = (
    "couldn't communicate with the nvidia driver",
    "driver/library version mismatch",
    "no devices were found",
    "nvml",
)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NV_LINK = re.compile(r"^NV(\d+)$")
_NA = ("[n/a]", "n/a", "[not supported]", "not supported", "")


class NvidiaSmiParseError(ValueError):
    """nvidia-smi printed something this parser does not understand."""


def _clean(value):
    value = value.strip()
    return None if value.lower() in _NA else value


def _int_or_none(value):
    value = _clean(value or "")
    if value is None:
        return None
    try:
        return int(value.split()[0])
    except ValueError:
        return None


def _enabled(value):
    """'Enabled' -> True, 'Disabled' -> False, N/A (not supported) -> None."""
    value = _clean(value or "")
    if value is None:
        return None
    return value.lower() == "enabled"


def parse_query_gpu(text):
    """Rows of `nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits`."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        # GPU names contain no commas in nvidia-smi output; split at most len-1 times regardless.
        cells = [c.strip() for c in line.split(",", len(QUERY_FIELDS) - 1)]
        if len(cells) != len(QUERY_FIELDS):
            raise NvidiaSmiParseError("expected %d CSV fields, got %d in line %r" % (len(QUERY_FIELDS), len(cells), line))
        raw = dict((key, cells[i]) for i, (key, _field) in enumerate(QUERY_FIELDS))
        gpus.append(
            {
                "index": _int_or_none(raw["index"]),
                "name": _clean(raw["name"]),
                "uuid": _clean(raw["uuid"]),
                "pci_bus_id": _clean(raw["pci_bus_id"]),
                "memory_total_mib": _int_or_none(raw["memory_total_mib"]),
                "driver_version": _clean(raw["driver_version"]),
                "mig_mode_current": _enabled(raw["mig_mode_current"]),
                "mig_mode_pending": _enabled(raw["mig_mode_pending"]),
                "persistence_mode": _enabled(raw["persistence_mode"]),
                "compute_capability": _clean(raw["compute_capability"]),
            }
        )
    return gpus


def parse_version(text):
    """Driver and CUDA versions from `nvidia-smi --version` ("DRIVER version : 580.95.05") or,
    for older drivers, from the banner of plain `nvidia-smi` ("Driver Version: ... CUDA Version: ...")."""
    result = {"driver_version": None, "cuda_version": None, "nvml_version": None}
    patterns = (
        ("driver_version", r"DRIVER version\s*:\s*(\S+)"),
        ("driver_version", r"Driver Version:\s*(\S+)"),
        ("cuda_version", r"CUDA Version\s*:\s*(\S+)"),
        ("nvml_version", r"NVML version\s*:\s*(\S+)"),
    )
    for key, pattern in patterns:
        if result[key] is None:
            match = re.search(pattern, text, re.IGNORECASE)
            if match:
                result[key] = match.group(1).strip("|")
    return result


def parse_proc_version(text):
    """/proc/driver/nvidia/version: the loaded kernel module's version and flavour."""
    match = re.search(r"NVRM version:\s*(.*?Kernel Module)(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)", text)
    if not match:
        return {"kernel_module_version": None, "kernel_module_flavor": None}
    description = match.group(1)
    return {
        "kernel_module_version": match.group(2),
        "kernel_module_flavor": "open" if "Open Kernel Module" in description else "proprietary",
    }


def driver_not_loaded(text):
    """True when nvidia-smi's error output says the driver is installed but not usable."""
    lowered = text.lower()
    return any(marker in lowered for marker in NOT_LOADED_MARKERS)


def _link_kind(value):
    if value == "X":
        return "self"
    if _NV_LINK.match(value):
        return "nvlink"
    return {
        "PIX": "pcie_single_switch",
        "PXB": "pcie_multi_switch",
        "PHB": "pcie_host_bridge",
        "NODE": "same_numa",
        "SYS": "cross_numa",
    }.get(value, "unknown")


def _split_cells(line):
    """Topology rows are tab separated; fall back to runs of 2+ spaces for copied output."""
    if "\t" in line:
        return [c.strip() for c in line.split("\t")]
    return [c.strip() for c in re.split(r" {2,}", line)]


def _cpu_list(value):
    """'0-3,8-11' -> [0, 1, 2, 3, 8, 9, 10, 11]; None for N/A."""
    value = _clean(value or "")
    if value is None:
        return None
    cpus = []
    for part in value.split(","):
        part = part.strip()
        if "-" in part:
            start, end = part.split("-", 1)
            cpus.extend(range(int(start), int(end) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def parse_topology(text):
    """`nvidia-smi topo -m` as a structure.

    Returns devices (column order), matrix[a][b] = connection code, links (one entry per pair,
    classified; NVLink with its link count), per-GPU CPU / NUMA affinity, and the NIC legend."""
    lines = [_ANSI.sub("", line).rstrip() for line in text.splitlines()]
    header_index = None
    for i, line in enumerate(lines):
        if re.match(r"^\s+GPU\d+", line) or re.match(r"^\s*\tGPU\d+", line):
            header_index = i
            break
    if header_index is None:
        raise NvidiaSmiParseError("no GPU column header in topology output")
    header = [c for c in _split_cells(lines[header_index]) if c]
    devices = [c for c in header if re.match(r"^(GPU|NIC|mlx)\S*$", c) and " " not in c]
    extra = header[len(devices):]

    matrix, affinity, nics = {}, {}, {}
    for line in lines[header_index + 1:]:
        if not line.strip():
            break
        cells = [c for c in _split_cells(line) if c != ""]
        if not cells:
            break
        name = cells[0]
        values = cells[1:1 + len(devices)]
        if len(values) != len(devices):
            raise NvidiaSmiParseError("topology row %r has %d cells, expected %d" % (name, len(values), len(devices)))
        matrix[name] = dict(zip(devices, values))
        if name.startswith("GPU"):
            rest = dict(zip(extra, cells[1 + len(devices):]))
            numa = _int_or_none(rest.get("NUMA Affinity", ""))
            affinity[name] = {
                "cpu_affinity": _clean(rest.get("CPU Affinity", "") or ""),
                "cpus": _cpu_list(rest.get("CPU Affinity", "")),
                "numa_node": numa,
                "gpu_numa_id": _int_or_none(rest.get("GPU NUMA ID", "")),
            }

    for line in lines:
        match = re.match(r"^\s*(NIC\d+):\s*(\S+)\s*$", line)
        if match:
            nics[match.group(1)] = match.group(2)

    links = []
    for i, a in enumerate(devices):
        for b in devices[i + 1:]:
            value = (matrix.get(a) or {}).get(b)
            if value is None:
                continue
            link = {"a": a, "b": b, "connection": value, "kind": _link_kind(value)}
            nv = _NV_LINK.match(value)
            if nv:
                link["nvlinks"] = int(nv.group(1))
            links.append(link)

    gpus = [d for d in devices if d.startswith("GPU")]
    nvlink_pairs = [link for link in links if link["kind"] == "nvlink"]
    gpu_pairs = [link for link in links if link["a"].startswith("GPU") and link["b"].startswith("GPU")]
    return {
        "devices": devices,
        "matrix": matrix,
        "links": links,
        "affinity": affinity,
        "nics": nics,
        "numa_nodes": sorted(set(a["numa_node"] for a in affinity.values() if a["numa_node"] is not None)),
        "nvlink_all_pairs": bool(gpu_pairs) and len(nvlink_pairs) == len(gpu_pairs) and len(gpus) > 1,
    }


def scan_pci_devices(root="/sys/bus/pci/devices"):
    """NVIDIA display/3D controllers from sysfs (works without the driver or lspci)."""
    found = []
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return found

    def read(path):
        try:
            with open(path) as handle:
                return handle.read().strip()
        except (IOError, OSError):
            return ""

    for entry in entries:
        base = os.path.join(root, entry)
        if read(os.path.join(base, "vendor")).lower() != NVIDIA_PCI_VENDOR:
            continue
        pci_class = read(os.path.join(base, "class")).lower()
        if not pci_class.startswith(DISPLAY_CLASS_PREFIX):
            continue
        driver = os.path.join(base, "driver")
        found.append(
            {
                "address": entry,
                "device_id": read(os.path.join(base, "device")).lower(),
                "class": pci_class,
                "kernel_driver": os.path.basename(os.path.realpath(driver)) if os.path.exists(driver) else None,
                "numa_node": _int_or_none(read(os.path.join(base, "numa_node"))),
            }
        )
    return found


def summarize(gpus, version, proc_version, pci_devices, topology, smi_path, smi_error=None):
    """The module's result from the pieces above."""
    # A loaded module shows in /proc even when nvidia-smi is missing (driver containers).
    loaded = bool(gpus) or bool(proc_version.get("kernel_module_version"))
    driver_version = version.get("driver_version") or proc_version.get("kernel_module_version")
    if gpus and not driver_version:
        driver_version = gpus[0].get("driver_version")
    result = {
        "nvidia_smi": smi_path,
        "driver_installed": bool(smi_path) or loaded,
        "driver_loaded": loaded,
        "driver_version": driver_version,
        "driver_branch": driver_version.split(".")[0] if driver_version else None,
        "kernel_module_version": proc_version.get("kernel_module_version"),
        "kernel_module_flavor": proc_version.get("kernel_module_flavor"),
        "cuda_version": version.get("cuda_version"),
        "gpus": gpus,
        "gpu_count": len(gpus),
        "pci_devices": pci_devices,
        "gpu_present": bool(pci_devices) or bool(gpus),
        "mig_enabled": any(g.get("mig_mode_current") for g in gpus),
        "topology": topology or {},
        "message": smi_error,
    }
    return result
