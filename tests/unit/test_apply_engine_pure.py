import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils import apply as engine
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, InputError


def test_subset_matches_nested_values_and_lists():
    desired = {"spec": {"replicas": 2, "template": {"containers": [{"name": "a", "image": "x"}]}}}
    actual = {"spec": {"replicas": 2, "paused": False, "template": {"containers": [{"name": "a", "image": "x", "tty": False}]}}, "status": {}}
    assert engine.is_subset(desired, actual)
    assert not engine.is_subset({"spec": {"replicas": 3}}, actual)
    assert not engine.is_subset({"spec": {"missing": 1}}, actual)
    # A list of another length is a change (an element was added or removed).
    assert not engine.is_subset({"spec": {"template": {"containers": []}}}, actual)


def test_subset_does_not_confuse_booleans_and_numbers():
    assert not engine.is_subset({"a": True}, {"a": 1})
    assert not engine.is_subset({"a": 0}, {"a": False})
    assert engine.is_subset({"a": 1}, {"a": 1.0})


def test_project_keeps_only_user_set_fields():
    desired = {"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"ports": [{"name": "http", "port": 80}]}}
    actual = {
        "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}, "managedFields": [1], "resourceVersion": "5"},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "clusterIP": "10.96.0.5"},
        "status": {"loadBalancer": {}},
    }
    assert engine.project(actual, desired) == {
        "metadata": {"name": "x", "labels": {"a": "1"}},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }


def test_applied_hash_ignores_its_own_annotation_and_key_order():
    a = {"kind": "X", "metadata": {"name": "n", "annotations": {engine.HASH_ANNOTATION: "old"}}, "spec": {"a": 1, "b": 2}}
    b = {"spec": {"b": 2, "a": 1}, "metadata": {"name": "n", "annotations": {}}, "kind": "X"}
    assert engine.applied_hash(a) == engine.applied_hash(b)
    b["spec"]["a"] = 3
    assert engine.applied_hash(a) != engine.applied_hash(b)


@pytest.mark.parametrize(
    "obj,message",
    [
        ("text", "is not a mapping"),
        ({"kind": "Namespace", "metadata": {"name": "x"}}, "has no apiVersion"),
        ({"apiVersion": "v1", "metadata": {"name": "x"}}, "has no kind"),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}, "has no metadata.name"),
    ],
)
def test_validate_manifest_rejects_incomplete_objects(obj, message):
    with pytest.raises(InputError, match=message):
        engine.validate_manifest(obj)


def test_conflict_message_names_fields_and_fix():
    exc = ApiError(
        "conflict",
        status=409,
        body={"message": "Apply failed", "details": {"causes": [{"field": ".data.key", "message": 'conflict with "kubectl"'}]}},
    )
    msg = engine.format_api_error(exc, {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}, "apply")
    assert "ConfigMap ns/c" in msg and ".data.key" in msg and "force_conflicts" in msg


def test_validation_message_shows_field_paths():
    exc = ApiError(
        "invalid",
        status=422,
        reason="Invalid",
        body={"reason": "Invalid", "details": {"causes": [{"field": "spec.replicas", "message": "must be >= 0"}]}},
    )
    msg = engine.format_api_error(exc, {"kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}}, "apply")
    assert "spec.replicas: must be >= 0" in msg
    assert "Deployment ns/d rejected" in msg


def pod_template(limits):
    return {"spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}}}


@pytest.mark.parametrize(
    "desired,served",
    [
        ({"nvidia.com/gpu": 1}, {"nvidia.com/gpu": "1"}),
        ({"cpu": 0.5}, {"cpu": "500m"}),
        ({"cpu": "0.5"}, {"cpu": "500m"}),
        ({"cpu": "1000m"}, {"cpu": "1"}),
        ({"memory": "1024Mi"}, {"memory": "1Gi"}),
        ({"memory": "1.5Gi"}, {"memory": "1536Mi"}),
        ({"memory": "1e3"}, {"memory": "1k"}),
    ],
)
def test_subset_compares_quantities_the_way_the_server_normalises_them(desired, served):
    assert engine.is_subset(pod_template(desired), pod_template(served))


def test_subset_still_sees_a_changed_quantity_and_leaves_other_strings_alone():
    assert not engine.is_subset(pod_template({"cpu": "0.5"}), pod_template({"cpu": "600m"}))
    assert not engine.is_subset(pod_template({"memory": "1Gi"}), pod_template({"memory": "1G"}))
    # An env value is a string the server keeps as given: "0.5" and "500m" differ there.
    env = {"env": [{"name": "RATIO", "value": "0.5"}]}
    assert not engine.is_subset(env, {"env": [{"name": "RATIO", "value": "500m"}]})
    # Outside quantity fields a string stays a string: an int-or-string port "8080" is not 8080.
    assert not engine.is_subset({"ports": [{"targetPort": "8080"}]}, {"ports": [{"targetPort": 8080}]})
    assert not engine.is_subset({"a": True}, {"a": "true"})


def test_applied_hash_is_versioned_and_counts_quantities_by_value():
    a = dict(pod_template({"cpu": 0.5, "memory": "1024Mi"}), kind="Deployment", metadata={"name": "n"})
    b = dict(pod_template({"cpu": "500m", "memory": "1Gi"}), kind="Deployment", metadata={"name": "n"})
    assert engine.applied_hash(a) == engine.applied_hash(b)
    assert engine.applied_hash(a).startswith("v%d-" % engine.HASH_VERSION)
    assert engine.hash_version(engine.applied_hash(a)) == engine.HASH_VERSION
    assert engine.hash_version("0123456789abcdef0123") == 1  # the bare digests of 1.0.x


def test_kueue_quotas_compare_by_value():
    """Kueue's webhook stores a ClusterQueue's quotas canonical ("1000" -> "1k"): the same value in
    another spelling is no change, another value is."""
    from ansible_collections.aiinfra.cluster.plugins.module_utils.quantities import normalise_quantities, same_scalar

    for key in ("nominalQuota", "borrowingLimit", "lendingLimit"):
        assert same_scalar("1000", "1k", None, key)
        assert not same_scalar("1000", "2k", None, key)
    flavor = {"name": "h100", "resources": [{"name": "cpu", "nominalQuota": "1k"}, {"name": "memory", "nominalQuota": "10240Gi"}]}
    assert normalise_quantities(flavor) == normalise_quantities(
        {"name": "h100", "resources": [{"name": "cpu", "nominalQuota": "1000"}, {"name": "memory", "nominalQuota": "10Ti"}]})
