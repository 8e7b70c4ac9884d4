"""What the node roles' tasks render to on distributions that do not run here (RHEL/Rocky 9, Ubuntu,
Debian with real kernels): the task files are read as Ansible reads them and their expressions
rendered with Ansible's own templar over the role's defaults and vars plus the given facts."""

import base64
import os

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "roles", "nvidia_driver")

FACTS = {
    "Rocky": {"distribution": "Rocky", "os_family": "RedHat", "architecture": "x86_64", "distribution_major_version": "9",
              "distribution_version": "9.4", "distribution_release": "Blue Onyx", "kernel": "5.14.0-427.13.1.el9_4.x86_64"},
    "Debian": {"distribution": "Debian", "os_family": "Debian", "architecture": "x86_64", "distribution_major_version": "12",
               "distribution_version": "12.8", "distribution_release": "bookworm", "kernel": "6.1.0-18-amd64"},
    "Ubuntu": {"distribution": "Ubuntu", "os_family": "Debian", "architecture": "x86_64", "distribution_major_version": "24",
               "distribution_version": "24.04", "distribution_release": "noble", "kernel": "6.8.0-40-generic"},
}
SKIPPED = {"skipped": True, "changed": False}


def load(*parts):
    with open(os.path.join(DRIVER, *parts)) as handle:
        return yaml.safe_load(handle)


def trusted(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return dict((k, trusted(v)) for k, v in value.items())
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value


def templar(distro, **extra):
    variables = {}
    variables.update(load("defaults", "main.yml"))
    variables.update(load("vars", "main.yml"))
    variables.update(extra)
    variables["ansible_facts"] = FACTS[distro]
    return Templar(loader=DataLoader(), variables=trusted(variables))


def render(tmpl, value):
    return tmpl.template(trusted(value))


def condition(tmpl, task):
    when = task.get("when", [])
    when = when if isinstance(when, list) else [when]
    return all(render(tmpl, "{{ (%s) | bool }}" % c) for c in when)


def task_named(tasks, start):
    found = [t for t in tasks if t["name"].startswith(start)]
    assert len(found) == 1, [t["name"] for t in tasks]
    return found[0]


def test_rhel_branch_change_resets_the_module_before_enabling_the_new_stream():
    tasks = load("tasks", "setup-RedHat.yml")
    names = [t["name"] for t in tasks]
    resets = [i for i, t in enumerate(tasks) if "reset" in (t.get("ansible.builtin.command") or {}).get("argv", [])]
    assert resets, "no task resets the nvidia-driver module: %s" % names
    reset = tasks[resets[0]]
    enable = resets[0] + 1 + next(i for i, t in enumerate(tasks[resets[0] + 1:]) if t["name"].startswith("Enable the driver module stream"))
    install = task_named(tasks, "Install the driver packages")
    assert resets[0] < enable < tasks.index(install)

    switching = templar("Rocky", nvidia_driver_branch="595", nvidia_driver_current_stream="580-open")
    assert render(switching, reset["ansible.builtin.command"]["argv"]) == ["dnf", "-y", "module", "reset", "nvidia-driver"]
    assert condition(switching, reset)
    assert render(switching, tasks[enable]["ansible.builtin.dnf"]["name"]) == "@nvidia-driver:595-open"
    assert render(switching, install["ansible.builtin.dnf"]) == {"name": ["nvidia-open"], "state": "latest", "allowerasing": True}

    # The same stream, or none enabled yet (first installation): no reset, packages stay as they are.
    for current in ("595-open", ""):
        same = templar("Rocky", nvidia_driver_branch="595", nvidia_driver_current_stream=current)
        assert not condition(same, reset), current
        assert render(same, install["ansible.builtin.dnf"])["state"] == "present"
    # A flavour change is a stream switch too.
    flavour = templar("Rocky", nvidia_driver_branch="595", nvidia_driver_kernel_module_type="proprietary",
                      nvidia_driver_current_stream="595-open")
    assert condition(flavour, reset)
    assert render(flavour, tasks[enable]["ansible.builtin.dnf"]["name"]) == "@nvidia-driver:595-dkms"


def detect_pending(distro, module_file, **extra):
    task = task_named(load("tasks", "detect.yml"), "Note what would change")
    content = base64.b64encode(module_file.encode()).decode()
    tmpl = templar(distro, nvidia_driver_skip_reason="", nvidia_driver_expected_branch=extra.pop("expected", "595"),
                   nvidia_driver_before={"gpu_present": False, "driver_version": None},
                   nvidia_driver_stream_file={"content": content}, nvidia_driver_apt_check=SKIPPED,
                   nvidia_driver_holds_check=SKIPPED, nvidia_driver_dnf_check={"changed": False}, **extra)
    scope = trusted(task.get("vars", {}))
    tmpl.available_variables = dict(tmpl.available_variables, **scope)
    return render(tmpl, task["ansible.builtin.set_fact"])


def test_rhel_detection_reads_the_enabled_stream_and_reports_the_switch():
    facts = detect_pending("Rocky", "[nvidia-driver]\nname=nvidia-driver\nstream=580-open\nprofiles=\nstate=enabled\n",
                           nvidia_driver_branch="595")
    assert facts["nvidia_driver_current_stream"] == "580-open"
    assert facts["nvidia_driver_pending"] == ["dnf module stream nvidia-driver:580-open would switch to nvidia-driver:595-open"]
    facts = detect_pending("Rocky", "[nvidia-driver]\nname=nvidia-driver\nstream=595-open\nprofiles=\nstate=enabled\n",
                           nvidia_driver_branch="595")
    assert facts == {"nvidia_driver_current_stream": "595-open", "nvidia_driver_pending": []}
    # A reset module (state= empty) has no enabled stream.
    facts = detect_pending("Rocky", "[nvidia-driver]\nname=nvidia-driver\nstream=\nprofiles=\nstate=\n", nvidia_driver_branch="595")
    assert facts == {"nvidia_driver_current_stream": "", "nvidia_driver_pending": []}


@pytest.mark.parametrize("distro,boot,setup,wanted", [
    ("Debian", "6.1.0-28-amd64", "setup-Debian.yml", ["linux-headers-6.1.0-18-amd64", "linux-headers-6.1.0-28-amd64", "linux-headers-amd64"]),
    ("Ubuntu", "6.8.0-45-generic", "setup-Ubuntu.yml",
     ["linux-headers-6.8.0-40-generic", "linux-headers-6.8.0-45-generic", "linux-headers-generic"]),
    ("Rocky", "5.14.0-503.11.1.el9_5.x86_64", "setup-RedHat.yml",
     ["kernel-devel-5.14.0-427.13.1.el9_4.x86_64", "kernel-devel-5.14.0-503.11.1.el9_5.x86_64", "kernel-headers", "kernel-devel-matched"]),
])
def test_kernel_headers_cover_the_kernel_that_boots_next(distro, boot, setup, wanted):
    """After unattended upgrades the node boots a newer kernel than it runs: its headers (and the
    meta package that follows later kernels) must be installed, or DKMS builds nothing for it."""
    task = next(t for t in load("tasks", setup) if "kernel" in t["name"].lower() and ("headers" in t["name"] or "devel" in t["name"]))
    module = task.get("ansible.builtin.apt") or task.get("ansible.builtin.dnf")
    tmpl = templar(distro, nvidia_driver_boot_kernel=boot, nvidia_driver_sources=SKIPPED)
    assert render(tmpl, module["name"]) == wanted
    # Nothing found about the next boot (a container): the running kernel and the meta package.
    tmpl = templar(distro, nvidia_driver_boot_kernel="", nvidia_driver_sources=SKIPPED)
    assert render(tmpl, module["name"]) == [wanted[0]] + wanted[2:]


@pytest.mark.parametrize("distro,registered,boot", [
    ("Rocky", {"nvidia_driver_grubby": {"rc": 0, "stdout": "/boot/vmlinuz-5.14.0-503.11.1.el9_5.x86_64\n"},
               "nvidia_driver_kernels": SKIPPED}, "5.14.0-503.11.1.el9_5.x86_64"),
    ("Debian", {"nvidia_driver_grubby": SKIPPED,
                "nvidia_driver_kernels": {"rc": 0, "stdout_lines": ["6.1.0-28-amd64", "6.1.0-18-amd64"]}}, "6.1.0-28-amd64"),
    # No linux-version (containers, minimal images): the running kernel.
    ("Debian", {"nvidia_driver_grubby": SKIPPED, "nvidia_driver_kernels": {"rc": 127, "stdout_lines": []}}, "6.1.0-18-amd64"),
])
def test_boot_kernel_is_read_from_grubby_or_the_newest_installed_kernel(distro, registered, boot):
    task = task_named(load("tasks", "boot_kernel.yml"), "Note the kernel the node boots next")
    assert render(templar(distro, **registered), task["ansible.builtin.set_fact"]) == {"nvidia_driver_boot_kernel": boot}


@pytest.mark.parametrize("meta,wanted", [
    ("linux-headers-generic-hwe-24.04", ["linux-headers-6.8.0-40-generic", "linux-headers-6.8.0-45-generic", "linux-headers-generic-hwe-24.04"]),
    ("", ["linux-headers-6.8.0-40-generic", "linux-headers-6.8.0-45-generic"]),
])
def test_kernel_headers_meta_package_can_be_named_or_left_out(meta, wanted):
    task = task_named(load("tasks", "setup-Ubuntu.yml"), "Install the kernel headers")
    tmpl = templar("Ubuntu", nvidia_driver_boot_kernel="6.8.0-45-generic", nvidia_driver_sources=SKIPPED,
                   nvidia_driver_kernel_headers_meta_package=meta)
    assert render(tmpl, task["ansible.builtin.apt"]["name"]) == wanted
