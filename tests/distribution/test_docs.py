# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Documentation users get from the installed collection: ansible-doc for every module, the action
group for module_defaults, argument specs and READMEs for every role (and bad variables failing
at role start), the tier pages and a compatibility matrix that matches what CI runs. Everything is
discovered from the tree (plugins/modules/*.py, roles/*), so new modules and roles are covered
without editing this file."""

import glob
import json
import os
import platform
import re

import pytest
import yaml

from conftest import ROOT, ansible_playbook, clean_env, load_yaml, module_names, role_names, run, tail, tool

TIERS = ("nodes", "platform", "workloads")


def ansible_doc(collections, *args):
    return run([tool("ansible-doc")] + list(args), env=clean_env(ANSIBLE_COLLECTIONS_PATH=collections))


@pytest.fixture(scope="module")
def module_docs(installed_collections):
    names = ["aiinfra.cluster." + m for m in module_names()]
    rc, out = ansible_doc(installed_collections, "-t", "module", "--json", *names)
    assert rc == 0, out
    return json.loads(out[out.index("{"):])


def test_ansible_doc_renders_every_module(installed_collections, module_docs):
    names = ["aiinfra.cluster." + m for m in module_names()]
    assert sorted(module_docs) == sorted(names)
    problems = []
    for name, entry in sorted(module_docs.items()):
        doc = entry.get("doc") or {}
        for key in ("short_description", "description", "author", "options", "version_added"):
            if not doc.get(key):
                problems.append("%s: DOCUMENTATION has no %s" % (name, key))
        if not (entry.get("examples") or "").strip():
            problems.append("%s: no EXAMPLES" % name)
        if not entry.get("return"):
            problems.append("%s: no RETURN" % name)
    assert not problems, "\n".join(problems)
    # The text rendering users read must work too, without warnings.
    rc, out = ansible_doc(installed_collections, "-t", "module", *names)
    assert rc == 0 and "[WARNING]" not in out and "ERROR" not in out, tail(out)


def test_every_api_module_is_in_the_action_group(module_docs):
    """`module_defaults: {group/aiinfra.cluster.k8s: ...}` must reach every module with connection options."""
    group = load_yaml(os.path.join(ROOT, "meta", "runtime.yml"))["action_groups"]["k8s"]
    api_modules = sorted(n.split(".")[-1] for n, e in module_docs.items() if "kubeconfig" in (e["doc"].get("options") or {}))
    missing = sorted(set(api_modules) - set(group))
    assert not missing, "add to meta/runtime.yml action_groups.k8s: %s" % missing
    assert sorted(set(group) - set(module_names())) == [], "action group names modules that do not exist"


def test_action_group_sets_connection_once(installed_collections, tmp_path, kubeconfig):
    """A play with module_defaults for the group and no per-task connection options works."""
    playbook = tmp_path / "group.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "module_defaults through the action group", "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/aiinfra.cluster.k8s": {"kubeconfig": kubeconfig}},
        "tasks": [{"name": "GPU report", "aiinfra.cluster.gpu_node_info": {}, "register": "gpus"},
                  {"name": "Nodes found", "ansible.builtin.assert": {"that": ["gpus.totals.nodes >= 1"]}}],
    }]))
    rc, out = ansible_playbook([str(playbook)], installed_collections, tmp_path)
    assert rc == 0, tail(out)


def role_spec(role):
    path = os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")
    assert os.path.exists(path), "roles/%s has no meta/argument_specs.yml" % role
    return load_yaml(path)["argument_specs"]


@pytest.mark.parametrize("role", role_names())
def test_role_has_argument_specs_readme_and_defaults(role):
    main = role_spec(role).get("main")
    assert main and main.get("short_description") and main.get("options") is not None, "roles/%s: entry point main incomplete" % role
    readme = os.path.join(ROOT, "roles", role, "README.md")
    assert os.path.exists(readme), "roles/%s has no README.md" % role
    with open(readme) as handle:
        text = handle.read()
    undocumented = [name for name in main["options"] if name not in text]
    assert not undocumented, "roles/%s/README.md does not mention: %s" % (role, undocumented)
    assert os.path.exists(os.path.join(ROOT, "roles", role, "meta", "main.yml")), role
    defaults = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
    if os.path.exists(defaults):
        unspecified = sorted(set(load_yaml(defaults) or {}) - set(main["options"]))
        assert not unspecified, "roles/%s/defaults/main.yml variables missing from argument_specs: %s" % (role, unspecified)


def bad_value(spec):
    """An option and a value that its argument spec must reject, or None."""
    for name, option in sorted(spec.items()):
        if option.get("choices"):
            return name, "__not_one_of_the_choices__"
    by_type = {"int": "not-a-number", "bool": "maybe", "list": {"not": "a list"}, "dict": "not a dict", "float": "not-a-float"}
    for name, option in sorted(spec.items()):
        if option.get("type") in by_type:
            return name, by_type[option["type"]]
    return None


def test_bad_role_variables_fail_at_role_start(installed_collections, tmp_path):
    """For each role: one option gets a value of the wrong type (or an unknown choice); the role
    must fail in its argument validation, before any of its own tasks."""
    cases = {}
    tasks = []
    for role in role_names():
        picked = bad_value(role_spec(role)["main"].get("options") or {})
        assert picked, "roles/%s: no option with a type or choices to validate" % role
        cases[role] = picked
        tasks.append({
            "name": "Role %s with a bad %s" % (role, picked[0]),
            "block": [
                {"name": "Include %s" % role, "ansible.builtin.include_role": {"name": "aiinfra.cluster." + role}, "vars": {picked[0]: picked[1]}},
                {"name": "Not reached", "ansible.builtin.set_fact": {"reached_%s" % role: True}},
            ],
            "rescue": [{"name": "Record", "ansible.builtin.set_fact": {"failed_%s" % role: {
                "task": "{{ ansible_failed_task.name }}", "msg": "{{ ansible_failed_result.msg | default('') }}"}}}],
        })
    report = tmp_path / "bad_vars.json"
    tasks.append({"name": "Report", "ansible.builtin.copy": {"dest": str(report), "mode": "0600", "content": "{{ {%s} | to_json }}" % ", ".join(
        "'%s': [failed_%s | default(None), reached_%s | default(false)]" % (r, r, r) for r in cases)}})
    playbook = tmp_path / "bad_vars.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Bad role variables", "hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    rc, out = ansible_playbook([str(playbook)], installed_collections, tmp_path)
    assert rc == 0, tail(out)
    results = json.loads(report.read_text())
    problems = []
    for role, (option, value) in sorted(cases.items()):
        failed, reached = results[role]
        if reached or not failed:
            problems.append("%s: %s=%r was accepted" % (role, option, value))
        elif "Validating arguments against arg spec" not in failed["task"] or option not in failed["msg"]:
            problems.append("%s: failed in %r, not in argument validation naming %s: %s" % (role, failed["task"], option, failed["msg"][:300]))
    assert not problems, "\n".join(problems)


def test_tier_pages_have_a_diagram_and_cover_every_role():
    mentioned = ""
    for tier in TIERS:
        path = os.path.join(ROOT, "docs", "tiers", "%s.md" % tier)
        assert os.path.exists(path), path
        with open(path) as handle:
            text = handle.read()
        assert "```mermaid" in text, "%s has no diagram" % path
        mentioned += text
    missing = [r for r in role_names() if "`%s`" % r not in mentioned]
    assert not missing, "roles not described in docs/tiers/*.md: %s" % missing
    with open(os.path.join(ROOT, "docs", "site.md")) as handle:
        site = handle.read()
    assert "```mermaid" in site
    playbooks = [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))]
    assert [p for p in playbooks if p not in site] == [], "playbooks not explained in docs/site.md"


def test_compatibility_matrix_states_what_ci_runs(kube):
    with open(os.path.join(ROOT, "docs", "compatibility.md")) as handle:
        text = handle.read()
    rc, out = run([tool("ansible"), "--version"])
    core = re.search(r"core ([0-9.]+)", out).group(1)
    facts = {
        "ansible-core": core,
        "Python": "%s.%s" % platform.python_version_tuple()[:2],
        "Kubernetes": kube.get("/version")["gitVersion"],
        "kubernetes.core": _installed_version("kubernetes.core"),
    }
    for role, variables in (("gpu_operator", ["gpu_operator_chart_version"]), ("kserve", ["kserve_version", "kserve_cert_manager_version"]),
                            ("fluid", ["fluid_chart_version"]), ("training_platform", ["training_platform_trainer_version"])):
        path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
        if os.path.exists(path):
            defaults = load_yaml(path)
            for var in variables:
                facts[var] = str(defaults[var])
    stale = dict((k, v) for k, v in facts.items() if v not in text)
    assert not stale, "docs/compatibility.md does not state what CI runs: %s" % stale


def _installed_version(name):
    rc, out = run([tool("ansible-galaxy"), "collection", "list", name, "--format", "json"], env=clean_env(ANSIBLE_COLLECTIONS_PATH="/nonexistent"))
    listing = json.loads(out[out.index("{"):])
    for collections in listing.values():
        if name in collections:
            return collections[name]["version"]
    return "not installed"


def test_docs_index_links_resolve():
    with open(os.path.join(ROOT, "docs", "README.md")) as handle:
        links = re.findall(r"\]\(([^)#]+)\)", handle.read())
    assert links
    assert [link for link in links if not os.path.exists(os.path.join(ROOT, "docs", link))] == []
