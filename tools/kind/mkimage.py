# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Write an OCI image layout as a tar (what `ctr images import` and `kind load image-archive` read)
from layer tars and single files, with no registry and no base image.

  mkimage.py -o out.tar --ref registry.k8s.io/pause:3.10.2 [--ref other:tag] \
      [--layer-tar base.tar] [--file SRC:DEST[:MODE]] ... [--dir /tmp] [--link DEST:TARGET] \
      [--entrypoint '["/pause"]'] [--cmd '[]'] [--env K=V] [--user 65535]

Layers are stored uncompressed (media type ...layer.v1.tar), so a layer's digest is its diff_id;
every timestamp is the epoch, so the same inputs give the same image.
"""

import argparse
import hashlib
import json
import os
import shutil
import tarfile
import tempfile

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest(), os.path.getsize(path)


def files_layer(specs, out, directories=(), links=()):
    """A tar of the given files (SRC:DEST[:MODE]), empty directories (1777, as /tmp) and symbolic
    links (DEST:TARGET), parent directories 0755, owned by root."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        made = set()

        def parents_of(dest):
            parents, parent = [], os.path.dirname(dest)
            while parent and parent not in made:
                parents.append(parent)
                parent = os.path.dirname(parent)
            for directory in reversed(parents):
                info = tarfile.TarInfo(directory)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(info)
                made.add(directory)

        for directory in directories:
            info = tarfile.TarInfo(directory.strip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777, 0
            tar.addfile(info)
            made.add(info.name)
        for spec in specs:
            parts = spec.split(":")
            src, dest = parts[0], parts[1].lstrip("/")
            mode = int(parts[2], 8) if len(parts) > 2 else 0o755
            parents_of(dest)
            info = tarfile.TarInfo(dest)
            info.size, info.mode, info.mtime = os.path.getsize(src), mode, 0
            with open(src, "rb") as handle:
                tar.addfile(info, handle)
        for spec in links:
            dest, target = spec.split(":", 1)
            dest = dest.lstrip("/")
            parents_of(dest)
            info = tarfile.TarInfo(dest)
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
            tar.addfile(info)


class Layout:
    """An OCI image layout being written in a temporary directory."""

    def __init__(self, parent):
        self.root = tempfile.mkdtemp(prefix="mkimage.", dir=parent)
        self.blobs = os.path.join(self.root, "blobs", "sha256")
        os.makedirs(self.blobs)

    def add_file(self, path, move=False):
        digest, size = sha256_of(path)
        target = os.path.join(self.blobs, digest)
        if not os.path.exists(target):
            if move:
                shutil.move(path, target)
            else:
                shutil.copyfile(path, target)
        return digest, size

    def add_json(self, value):
        data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.blobs, digest), "wb") as handle:
            handle.write(data)
        return digest, len(data)

    def write_tar(self, out, refs, manifest):
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
        for ref in refs:
            index["manifests"].append({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + manifest[0],
                "size": manifest[1],
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[-1]},
            })
        with open(os.path.join(self.root, "index.json"), "w") as handle:
            json.dump(index, handle)
        with open(os.path.join(self.root, "oci-layout"), "w") as handle:
            json.dump({"imageLayoutVersion": "1.0.0"}, handle)
        with tarfile.open(out + ".tmp", "w") as tar:
            for name in ("oci-layout", "index.json", "blobs"):
                tar.add(os.path.join(self.root, name), arcname=name)
        os.replace(out + ".tmp", out)
        shutil.rmtree(self.root)


def build(args):
    layout = Layout(os.path.dirname(os.path.abspath(args.out)))
    layers = [layout.add_file(path) for path in args.layer_tar]
    if args.file or args.dir or args.link:
        path = os.path.join(layout.root, "files-layer.tar")
        files_layer(args.file, path, args.dir, args.link)
        layers.append(layout.add_file(path, move=True))
    config = {"Env": args.env or [DEFAULT_PATH]}
    if args.entrypoint:
        config["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        config["Cmd"] = json.loads(args.cmd)
    if args.user:
        config["User"] = args.user
    image_config = layout.add_json({
        "architecture": "amd64", "os": "linux", "created": EPOCH, "config": config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + digest for digest, _size in layers]},
        "history": [{"created": EPOCH, "created_by": "tools/kind/mkimage.py"} for _layer in layers],
    })
    manifest = layout.add_json({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + image_config[0], "size": image_config[1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + digest, "size": size} for digest, size in layers],
    })
    layout.write_tar(args.out, args.ref, manifest)
    return manifest[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--ref", action="append", required=True, help="image name:tag (repeat for more tags)")
    parser.add_argument("--layer-tar", action="append", default=[], help="an uncompressed layer tar, bottom first")
    parser.add_argument("--file", action="append", default=[], help="SRC:DEST[:MODE], all in one top layer")
    parser.add_argument("--dir", action="append", default=[], help="an empty directory (mode 1777), in the top layer")
    parser.add_argument("--link", action="append", default=[], help="DEST:TARGET, a symbolic link in the top layer")
    parser.add_argument("--entrypoint")
    parser.add_argument("--cmd")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--user")
    args = parser.parse_args(argv)
    print("%s sha256:%s" % (args.out, build(args)))


if __name__ == "__main__":
    main()
