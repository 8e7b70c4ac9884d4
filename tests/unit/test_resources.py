import pytest

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, ResourceNotInstalled
from ansible_collections.aiinfra.cluster.plugins.module_utils.resources import ResourceResolver


class CountingClient:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def get(self, path, query=None):
        self.calls.append(path)
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_known_kinds_need_no_request():
    client = CountingClient({})
    rt = ResourceResolver(client).resolve("apps/v1", "Deployment")
    assert rt.item_path("d", "ns") == "/apis/apps/v1/namespaces/ns/deployments/d"
    assert ResourceResolver(client).resolve("v1", "Namespace").item_path("x") == "/api/v1/namespaces/x"
    assert client.calls == []


def test_unknown_kind_discovers_its_group_version_once():
    client = CountingClient({"/apis/example.com/v1": {"resources": [
        {"name": "widgets", "kind": "Widget", "namespaced": True}, {"name": "widgets/status", "kind": "Widget"},
    ]}})
    resolver = ResourceResolver(client)
    assert resolver.resolve("example.com/v1", "Widget").collection_path("a") == "/apis/example.com/v1/namespaces/a/widgets"
    resolver.resolve("example.com/v1", "Widget")
    assert client.calls == ["/apis/example.com/v1"]


def test_missing_group_names_crd_and_provider():
    client = CountingClient({"/apis/monitoring.coreos.com/v1alpha1": ApiError("404", status=404)})
    with pytest.raises(ResourceNotInstalled, match="Prometheus Operator"):
        ResourceResolver(client).resolve("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig")
