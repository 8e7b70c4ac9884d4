"""nvidia-smi parsers on recorded outputs (written for these tests in nvidia-smi's documented
formats), and the nvidia_gpu_info module run as Ansible runs it against a stand-in nvidia-smi."""

import os
import stat

import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils import nvidia_smi

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "nvidia_smi")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def test_query_fields_order_matches_the_command_line():
    assert nvidia_smi.QUERY_ARG == (
        "--query-gpu=index,name,uuid,pci.bus_id,memory.total,driver_version,"
        "mig.mode.current,mig.mode.pending,persistence_mode,compute_cap"
    )


def test_h100_query():
    gpus = nvidia_smi.parse_query_gpu(fixture("h100_sxm_8gpu_query.csv"))
    assert len(gpus) == 8
    assert [g["index"] for g in gpus] == list(range(8))
    first = gpus[0]
    assert first["name"] == "NVIDIA H100 80GB HBM3"
    assert first["uuid"].startswith("GPU-6c1f0a00-")
    assert first["pci_bus_id"] == "00000000:18:00.0"
    assert first["memory_total_mib"] == 81559
    assert first["driver_version"] == "580.95.05"
    assert first["mig_mode_current"] is False and first["mig_mode_pending"] is False
    assert first["persistence_mode"] is True
    assert first["compute_capability"] == "9.0"
    assert len(set(g["uuid"] for g in gpus)) == 8


def test_a100_mig_and_persistence():
    gpus = nvidia_smi.parse_query_gpu(fixture("a100_pcie_2gpu_query.csv"))
    assert [g["mig_mode_current"] for g in gpus] == [False, True]
    assert [g["persistence_mode"] for g in gpus] == [False, False]
    assert gpus[1]["memory_total_mib"] == 81920


def test_not_applicable_fields_are_none():
    gpus = nvidia_smi.parse_query_gpu(fixture("l40s_4gpu_query.csv"))
    assert len(gpus) == 4
    assert all(g["mig_mode_current"] is None and g["mig_mode_pending"] is None for g in gpus)
    t4 = nvidia_smi.parse_query_gpu(fixture("t4_single_query.csv"))[0]
    assert t4["name"] == "Tesla T4" and t4["compute_capability"] == "7.5" and t4["persistence_mode"] is False


def test_query_with_wrong_field_count_is_an_error():
    with pytest.raises(nvidia_smi.NvidiaSmiParseError):
        nvidia_smi.parse_query_gpu("0, Tesla T4, GPU-x\n")


def test_version_from_version_flag():
    version = nvidia_smi.parse_version(fixture("h100_sxm_8gpu_version.txt"))
    assert version == {"driver_version": "580.95.05", "cuda_version": "13.0", "nvml_version": "580.95"}


def test_version_from_banner_of_older_drivers():
    version = nvidia_smi.parse_version(fixture("a100_pcie_2gpu_banner.txt"))
    assert version["driver_version"] == "570.172.08"
    assert version["cuda_version"] == "12.8"


def test_proc_version_open_and_proprietary():
    assert nvidia_smi.parse_proc_version(fixture("h100_proc_version.txt")) == {
        "kernel_module_version": "580.95.05",
        "kernel_module_flavor": "open",
    }
    assert nvidia_smi.parse_proc_version(fixture("a100_proc_version.txt")) == {
        "kernel_module_version": "570.172.08",
        "kernel_module_flavor": "proprietary",
    }
    assert nvidia_smi.parse_proc_version("") == {"kernel_module_version": None, "kernel_module_flavor": None}


def test_h100_topology_nvlink_mesh_two_numa_nodes():
    topo = nvidia_smi.parse_topology(fixture("h100_sxm_8gpu_topo.txt"))
    assert topo["devices"] == ["GPU%d" % i for i in range(8)] + ["NIC0", "NIC1"]
    assert topo["matrix"]["GPU0"]["GPU0"] == "X"
    assert topo["matrix"]["GPU0"]["GPU7"] == "NV18"
    assert topo["matrix"]["GPU5"]["NIC1"] == "PXB"
    assert topo["matrix"]["NIC0"]["GPU6"] == "SYS"
    gpu_links = [link for link in topo["links"] if link["b"].startswith("GPU")]
    assert len(gpu_links) == 28
    assert all(link["kind"] == "nvlink" and link["nvlinks"] == 18 for link in gpu_links)
    assert topo["nvlink_all_pairs"] is True
    assert topo["affinity"]["GPU0"]["cpu_affinity"] == "0-55,112-167"
    assert topo["affinity"]["GPU0"]["numa_node"] == 0
    assert topo["affinity"]["GPU7"]["numa_node"] == 1
    assert topo["affinity"]["GPU7"]["cpus"][:2] == [56, 57] and len(topo["affinity"]["GPU7"]["cpus"]) == 112
    assert topo["affinity"]["GPU0"]["gpu_numa_id"] is None
    assert topo["numa_nodes"] == [0, 1]
    assert topo["nics"] == {"NIC0": "mlx5_0", "NIC1": "mlx5_1"}
    assert "NIC0" not in topo["affinity"]


def test_a100_topology_pcie_switch():
    topo = nvidia_smi.parse_topology(fixture("a100_pcie_2gpu_topo.txt"))
    assert topo["links"] == [{"a": "GPU0", "b": "GPU1", "connection": "PIX", "kind": "pcie_single_switch"}]
    assert topo["nvlink_all_pairs"] is False
    assert topo["nics"] == {}


def test_l40s_topology_numa_split():
    topo = nvidia_smi.parse_topology(fixture("l40s_4gpu_topo.txt"))
    kinds = dict(((link["a"], link["b"]), link["kind"]) for link in topo["links"])
    assert kinds[("GPU0", "GPU1")] == "same_numa"
    assert kinds[("GPU0", "GPU2")] == "cross_numa"
    assert kinds[("GPU2", "GPU3")] == "same_numa"
    assert topo["affinity"]["GPU3"]["cpus"] == list(range(24, 48))
    assert topo["numa_nodes"] == [0, 1]


def test_single_gpu_topology_without_numa():
    topo = nvidia_smi.parse_topology(fixture("t4_single_topo.txt"))
    assert topo["devices"] == ["GPU0"]
    assert topo["links"] == []
    assert topo["affinity"]["GPU0"] == {"cpu_affinity": "0-3", "cpus": [0, 1, 2, 3], "numa_node": None, "gpu_numa_id": None}
    assert topo["nvlink_all_pairs"] is False


def test_topology_copied_with_spaces_instead_of_tabs():
    text = fixture("a100_pcie_2gpu_topo.txt").replace("\x1b[4m", "").replace("\x1b[0m", "").replace("\t", "    ")
    topo = nvidia_smi.parse_topology(text)
    assert topo["matrix"]["GPU1"]["GPU0"] == "PIX"
    assert topo["affinity"]["GPU1"]["numa_node"] == 0


def test_topology_garbage_is_an_error():
    with pytest.raises(nvidia_smi.NvidiaSmiParseError):
        nvidia_smi.parse_topology("No devices were found\n")


def test_not_loaded_detection():
    assert nvidia_smi.driver_not_loaded(fixture("not_loaded_stderr.txt"))
    assert nvidia_smi.driver_not_loaded("Failed to initialize NVML: Driver/library version mismatch")
    assert not nvidia_smi.driver_not_loaded("Segmentation fault")


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_pci_scan(tmp_path):
    gpu = tmp_path / "0000:18:00.0"
    _write(gpu / "vendor", "0x10de\n")
    _write(gpu / "class", "0x030200\n")
    _write(gpu / "device", "0x2330\n")
    _write(gpu / "numa_node", "0\n")
    bridge = tmp_path / "0000:17:00.0"  # an NVSwitch / bridge from NVIDIA is not a GPU
    _write(bridge / "vendor", "0x10de\n")
    _write(bridge / "class", "0x068000\n")
    nic = tmp_path / "0000:19:00.0"
    _write(nic / "vendor", "0x15b3\n")
    _write(nic / "class", "0x020700\n")
    found = nvidia_smi.scan_pci_devices(str(tmp_path))
    assert found == [
        {"address": "0000:18:00.0", "device_id": "0x2330", "class": "0x030200", "kernel_driver": None, "numa_node": 0}
    ]
    assert nvidia_smi.scan_pci_devices(str(tmp_path / "missing")) == []


def test_summary_driver_installed_not_loaded():
    result = nvidia_smi.summarize([], {}, {"kernel_module_version": None}, [], {}, "/usr/bin/nvidia-smi", smi_error="NVIDIA-SMI has failed")
    assert result["driver_installed"] is True
    assert result["driver_loaded"] is False
    assert result["gpu_count"] == 0 and result["gpu_present"] is False
    assert result["driver_version"] is None and result["driver_branch"] is None


def test_summary_loaded():
    gpus = nvidia_smi.parse_query_gpu(fixture("a100_pcie_2gpu_query.csv"))
    result = nvidia_smi.summarize(
        gpus,
        nvidia_smi.parse_version(fixture("a100_pcie_2gpu_banner.txt")),
        nvidia_smi.parse_proc_version(fixture("a100_proc_version.txt")),
        [],
        {},
        "/usr/bin/nvidia-smi",
    )
    assert result["driver_loaded"] is True and result["driver_branch"] == "570"
    assert result["kernel_module_flavor"] == "proprietary"
    assert result["mig_enabled"] is True and result["gpu_present"] is True


# --- the module, run as Ansible runs it, with a stand-in nvidia-smi printing the recorded outputs


def _fake_smi(tmp_path, query, version, topo, fail_text=None):
    script = tmp_path / "nvidia-smi"
    for name, text in (("query", query), ("version", version), ("topo", topo)):
        (tmp_path / name).write_text(text or "")
    if fail_text is not None:
        (tmp_path / "fail").write_text(fail_text)
        body = 'cat "%s/fail"; exit 9\n' % tmp_path
    else:
        body = (
            'case "$1" in\n'
            '  --query-gpu=*) cat "{d}/query" ;;\n'
            '  --version) cat "{d}/version" ;;\n'
            '  topo) cat "{d}/topo" ;;\n'
            '  *) exit 2 ;;\n'
            "esac\n"
        ).format(d=tmp_path)
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_module_reports_gpus_and_topology(module_runner, tmp_path):
    smi = _fake_smi(
        tmp_path,
        fixture("h100_sxm_8gpu_query.csv"),
        fixture("h100_sxm_8gpu_version.txt"),
        fixture("h100_sxm_8gpu_topo.txt"),
    )
    result = module_runner("nvidia_gpu_info", {"nvidia_smi_path": smi})
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["gpu_count"] == 8 and result["driver_loaded"] is True
    assert result["driver_version"] == "580.95.05" and result["cuda_version"] == "13.0"
    assert result["topology"]["nvlink_all_pairs"] is True
    assert "ansible_facts" not in result


def test_module_driver_not_loaded(module_runner, tmp_path):
    smi = _fake_smi(tmp_path, "", "", "", fail_text=fixture("not_loaded_stderr.txt"))
    result = module_runner("nvidia_gpu_info", {"nvidia_smi_path": smi}, check_mode=True)
    assert result.get("failed") is not True, result
    assert result["driver_installed"] is True and result["driver_loaded"] is (result["kernel_module_version"] is not None)
    assert result["gpus"] == [] and result["topology"] == {}
    assert "couldn't communicate" in result["message"]


def test_module_bad_path_fails_cleanly(module_runner, tmp_path):
    result = module_runner("nvidia_gpu_info", {"nvidia_smi_path": str(tmp_path / "nope")})
    assert result["failed"] is True
    assert "nvidia_smi_path" in result["msg"]


def test_module_unparseable_output_fails_cleanly(module_runner, tmp_path):
    smi = _fake_smi(tmp_path, "garbage\n", "", "")
    result = module_runner("nvidia_gpu_info", {"nvidia_smi_path": smi})
    assert result["failed"] is True
    assert "could not parse nvidia-smi output" in result["msg"]
