# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Push an OCI image layout tar (tools/kind/mkimage.py's output) to a registry over plain HTTP,
with the OCI distribution API: each blob once (skipped when the registry has it), then the
manifest under the tag. For the local registry tools/kind/registry.sh runs on 127.0.0.1.

  python3 tools/kind/push_image.py IMAGE.tar 127.0.0.1:5001/aiinfra/name:tag [...more tags]
"""

import json
import sys
import tarfile
import urllib.error
import urllib.request


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def push(archive, reference):
    host, _sep, rest = reference.partition("/")
    repository, _sep, tag = rest.rpartition(":")
    base = "http://%s/v2/%s" % (host, repository)
    with tarfile.open(archive) as tar:
        def blob(digest):
            return tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()

        index = json.load(tar.extractfile("index.json"))
        descriptor = index["manifests"][0]
        manifest_bytes = blob(descriptor["digest"])
        manifest = json.loads(manifest_bytes)
        pushed = 0
        for item in [manifest["config"]] + manifest["layers"]:
            status, _headers, _body = request("HEAD", "%s/blobs/%s" % (base, item["digest"]))
            if status == 200:
                continue
            status, headers, body = request("POST", base + "/blobs/uploads/")
            if status != 202:
                raise SystemExit("%s: starting an upload answered %s: %s" % (reference, status, body[:300]))
            location = headers.get("Location") or headers.get("location")
            if location.startswith("/"):
                location = "http://%s%s" % (host, location)
            separator = "&" if "?" in location else "?"
            status, _headers, body = request("PUT", "%s%sdigest=%s" % (location, separator, item["digest"]), data=blob(item["digest"]),
                                             headers={"Content-Type": "application/octet-stream"})
            if status != 201:
                raise SystemExit("%s: uploading %s answered %s: %s" % (reference, item["digest"], status, body[:300]))
            pushed += 1
        status, _headers, body = request("PUT", "%s/manifests/%s" % (base, tag), data=manifest_bytes,
                                         headers={"Content-Type": descriptor["mediaType"]})
        if status != 201:
            raise SystemExit("%s: the manifest answered %s: %s" % (reference, status, body[:300]))
    return pushed


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    archive = argv[0]
    for reference in argv[1:]:
        print("%s: %d blobs pushed" % (reference, push(archive, reference)))


if __name__ == "__main__":
    main(sys.argv[1:])
