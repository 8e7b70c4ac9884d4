#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: nvidia_gpu_info
short_description: NVIDIA GPUs, driver, CUDA, MIG and topology of the host it runs on
version_added: 0.1.0
author: aiinfra.cluster contributors (@aiinfra)
description:
  - Runs on a GPU node (not against the Kubernetes API) and reports the NVIDIA GPUs that
    C(nvidia-smi) sees (index, name, UUID, memory, PCI bus id, MIG and persistence mode, compute
    capability), the driver and CUDA versions, the loaded kernel module (open or proprietary),
    and the C(nvidia-smi topo -m) matrix as a structure (NVLink / PCIe links, CPU and NUMA affinity).
  - Also lists NVIDIA display and 3D controllers from PCI sysfs, so it tells "no NVIDIA GPU in this
    machine" apart from "GPU present, driver not installed" and "driver installed, not loaded".
  - Never fails because the driver is missing or not loaded; the result says so
    (RV(driver_installed=false) or RV(driver_loaded=false) with the reason in RV(message)).
  - Read-only; returns its data as module results (register it), not as C(ansible_facts).
options:
  nvidia_smi_path:
    description:
      - Path of the C(nvidia-smi) binary. By default it is searched on E(PATH), then in
        C(/usr/local/nvidia/bin) and C(/run/nvidia/driver/usr/bin) (driver containers).
    type: path
  topology:
    description:
      - Also read the GPU topology matrix (C(nvidia-smi topo -m)).
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
notes:
  - Needs no Python library on the node; runs C(nvidia-smi) up to three times.
seealso:
  - module: aiinfra.cluster.gpu_node_info
    description: The cluster-side GPU inventory (from Kubernetes nodes and pods).
"""

EXAMPLES = r"""
- name: Read the GPUs of this node
  aiinfra.cluster.nvidia_gpu_info:
  register: node_gpus

- name: Require a loaded 580 driver on nodes with GPUs
  ansible.builtin.assert:
    that:
      - not node_gpus.gpu_present or node_gpus.driver_branch == '580'
    fail_msg: "{{ node_gpus.message | default('driver branch ' ~ node_gpus.driver_branch) }}"

- name: GPUs that share a NUMA node with GPU0
  ansible.builtin.debug:
    msg: >-
      {{ node_gpus.topology.affinity | dict2items
         | selectattr('value.numa_node', 'equalto', node_gpus.topology.affinity.GPU0.numa_node)
         | map(attribute='key') | list }}
"""

RETURN = r"""
gpu_present:
  description: An NVIDIA GPU is in this machine (PCI sysfs or nvidia-smi).
  returned: always
  type: bool
  sample: true
driver_installed:
  description: C(nvidia-smi) is installed, or a kernel module is loaded.
  returned: always
  type: bool
driver_loaded:
  description: The kernel module is loaded and nvidia-smi talks to it.
  returned: always
  type: bool
driver_version:
  description: Driver version from nvidia-smi (or the loaded module); null when unknown.
  returned: always
  type: str
  sample: 580.95.05
driver_branch:
  description: Major part of RV(driver_version).
  returned: always
  type: str
  sample: "580"
kernel_module_version:
  description: Version of the loaded kernel module (C(/proc/driver/nvidia/version)).
  returned: always
  type: str
kernel_module_flavor:
  description: C(open) or C(proprietary) for the loaded kernel module; null when none is loaded.
  returned: always
  type: str
cuda_version:
  description: Highest CUDA version the driver supports.
  returned: always
  type: str
  sample: "13.0"
gpus:
  description: One entry per GPU, as nvidia-smi lists them. Fields that nvidia-smi reports as N/A are null.
  returned: always
  type: list
  elements: dict
  sample:
    - index: 0
      name: NVIDIA H100 80GB HBM3
      uuid: GPU-6c1f0a00-1b2c-4d3e-8f40-5a6b7c8d9e00
      pci_bus_id: "00000000:18:00.0"
      memory_total_mib: 81559
      driver_version: 580.95.05
      mig_mode_current: false
      mig_mode_pending: false
      persistence_mode: true
      compute_capability: "9.0"
gpu_count:
  description: Number of GPUs nvidia-smi lists.
  returned: always
  type: int
mig_enabled:
  description: MIG mode is on for at least one GPU.
  returned: always
  type: bool
pci_devices:
  description: NVIDIA display / 3D controllers in PCI sysfs, with the kernel driver bound to each.
  returned: always
  type: list
  elements: dict
  sample: [{address: "0000:18:00.0", device_id: "0x2330", class: "0x030200", kernel_driver: nvidia, numa_node: 0}]
topology:
  description:
    - The C(nvidia-smi topo -m) matrix. C(matrix[a][b]) is nvidia-smi's connection code
      (C(X), C(NV<n>), C(PIX), C(PXB), C(PHB), C(NODE), C(SYS)); C(links) has one classified
      entry per device pair; C(affinity) the CPU list and NUMA node per GPU; C(nics) the NIC legend.
    - Empty when the driver is not loaded or O(topology=false).
  returned: always
  type: dict
  sample:
    devices: [GPU0, GPU1]
    matrix: {GPU0: {GPU0: X, GPU1: NV18}, GPU1: {GPU0: NV18, GPU1: X}}
    links: [{a: GPU0, b: GPU1, connection: NV18, kind: nvlink, nvlinks: 18}]
    affinity: {GPU0: {cpu_affinity: "0-55,112-167", cpus: [0, 1], numa_node: 0, gpu_numa_id: null}}
    nics: {}
    numa_nodes: [0]
    nvlink_all_pairs: true
nvidia_smi:
  description: Path of the nvidia-smi used; null when not installed.
  returned: always
  type: str
message:
  description: Why the driver is reported as not installed or not loaded; null otherwise.
  returned: always
  type: str
  sample: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiinfra.cluster.plugins.module_utils.nvidia_smi import (
    QUERY_ARG,
    NvidiaSmiParseError,
    driver_not_loaded,
    parse_proc_version,
    parse_query_gpu,
    parse_topology,
    parse_version,
    scan_pci_devices,
    summarize,
)

PROC_VERSION = "/proc/driver/nvidia/version"
# Where driver containers (GPU Operator) put nvidia-smi; searched after PATH.
EXTRA_SMI_PATHS = ["/usr/local/nvidia/bin", "/run/nvidia/driver/usr/bin"]


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return ""


def main():
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi_path": {"type": "path"},
            "topology": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    smi = module.params["nvidia_smi_path"]
    if smi and not os.access(smi, os.X_OK):
        module.fail_json(msg="option nvidia_smi_path: %s is not an executable file; omit the option to search PATH" % smi)
    if not smi:
        # get_bin_path searches opt_dirs before PATH; PATH must win, so look there first.
        smi = module.get_bin_path("nvidia-smi") or module.get_bin_path("nvidia-smi", opt_dirs=EXTRA_SMI_PATHS)

    proc_version = parse_proc_version(read_text(PROC_VERSION))
    pci_devices = scan_pci_devices()
    gpus, version, topology, error = [], {}, {}, None

    if not smi:
        error = "nvidia-smi is not installed"
    else:
        rc, out, err = module.run_command([smi, QUERY_ARG, "--format=csv,noheader,nounits"])
        if rc != 0:
            text = (out + "\n" + err).strip()
            error = text.splitlines()[0] if text else "nvidia-smi exited with %d" % rc
            if not driver_not_loaded(text):
                error = "nvidia-smi exited with %d: %s" % (rc, error)
        else:
            try:
                gpus = parse_query_gpu(out)
                rc, vout, verr = module.run_command([smi, "--version"])
                if rc != 0 or "CUDA Version" not in vout:
                    # Drivers older than 525 have no --version: read the banner instead.
                    rc, vout, verr = module.run_command([smi])
                version = parse_version(vout)
                if module.params["topology"] and gpus:
                    rc, tout, terr = module.run_command([smi, "topo", "-m"])
                    if rc == 0:
                        topology = parse_topology(tout)
            except NvidiaSmiParseError as exc:
                module.fail_json(msg="could not parse nvidia-smi output: %s" % exc)

    result = summarize(gpus, version, proc_version, pci_devices, topology, smi, smi_error=error)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
