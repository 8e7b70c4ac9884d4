#!/usr/bin/env bash
# Builds the kind node image offline and prints its name: a Debian rootfs (debootstrap) with
# systemd, containerd, runc, the CNI plugins, kubelet/kubeadm/kubectl and kind's own node files,
# and every image kubeadm and kind start preloaded into containerd, each packed from a binary
# built here (tools/kind/build.sh, tools/gobuild/build.sh) by tools/kind/mkimage.py. Nothing is
# pulled. `kind build node-image` is not used: it always fetches the images it does not build.
# The image is named by a hash of its inputs; when the Docker engine already holds it, nothing is
# rebuilt. Needs root (debootstrap, chroot) and a Docker engine (tools/docker_up.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
. "$here/../gobuild/versions.env"
# shellcheck source=/dev/null
. "$here/versions.env"
# shellcheck source=/dev/null
. "$here/../gobuild/lib.sh"
cache="${AIINFRA_CACHE:-$HOME/.cache/aiinfra-cluster}/kind"
log() { echo "kind-node-image: $*" >&2; }

# Where runc cannot grant CAP_SYS_RESOURCE, containerd in the node runs runc through runc-capfix.
capfix=no
if ! "$here/../docker_up.sh" --has-sys-resource; then capfix=yes; fi
key="$(cat "$here/../gobuild/versions.env" "$here/versions.env" "$here/node_image.sh" "$here/mkimage.py" "$here/runc-capfix" \
         "$here"/node/* <(echo "capfix=$capfix") | sha256sum | cut -c1-12)"
image="aiinfra.local/kind-node:$KUBERNETES_VERSION-$key"
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.node-image.lock"
flock 9
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi
started=$SECONDS
bin="$(bash "$here/build.sh")"
kbin="$(bash "$here/../gobuild/build.sh")"
kind_files="$(GOFLAGS=-mod=mod module_dir "sigs.k8s.io/kind@$KIND_VERSION")/images/base/files"

# The Debian rootfs, cached by suite and package list (the packages kind's base image installs).
packages="systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,runc,socat,ebtables"
rootfs_tar="$cache/rootfs-$DEBIAN_SUITE-$(echo "$packages" | sha256sum | cut -c1-12).tar"
if [ ! -s "$rootfs_tar" ]; then
  log "debootstrap $DEBIAN_SUITE (cold: about a minute)"
  tmp="$(mktemp -d "$cache/rootfs.XXXXXX")"
  debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$tmp/root" "${AIINFRA_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
  rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
  tar -C "$tmp/root" -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$tmp"
fi

work="$(mktemp -d "$cache/node.XXXXXX")"
build_container="aiinfra-kind-node-build-$$"
cleanup() {
  docker rm -f "$build_container" >/dev/null 2>&1 || true
  docker rmi "aiinfra.local/kind-node-base:$key" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
root="$work/root"
mkdir -p "$root" "$work/images"
tar -C "$root" -xf "$rootfs_tar"

log "node rootfs: kind $KIND_VERSION's node files, containerd $CONTAINERD_VERSION, Kubernetes $KUBERNETES_VERSION"
install -m0755 "$kind_files"/usr/local/bin/* "$root/usr/local/bin/"
mkdir -p "$root/kind" "$root/etc/containerd" "$root/etc/systemd/system/kubelet.service.d" "$root/etc/kubernetes/manifests" "$root/opt/cni/bin"
cp -r "$kind_files/kind/." "$root/kind/"
find "$root/kind" -type f -exec chmod 0644 {} +
chmod 0755 "$root/kind" "$root/kind/bin" "$root/kind/bin/"*
install -m0644 "$kind_files/etc/crictl.yaml" "$root/etc/"
install -m0644 "$kind_files"/etc/containerd/* "$root/etc/containerd/"
install -m0644 "$kind_files"/etc/default/* "$root/etc/default/"
install -m0644 "$kind_files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
install -m0644 "$kind_files"/etc/systemd/system/*.service "$kind_files"/etc/systemd/system/*.slice "$root/etc/systemd/system/"
install -m0644 "$kind_files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
# As kind's base image: no units a container does not need, journald not reading the host's kmsg.
find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
      "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
      "$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> "$root/etc/systemd/journald.conf"
chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
chroot "$root" systemctl mask systemd-binfmt.service >/dev/null 2>&1
install -m0755 "$bin/containerd" "$bin/ctr" "$bin/containerd-shim-runc-v2" "$bin/crictl" "$root/usr/local/bin/"
install -m0755 "$bin/kubelet" "$bin/kubeadm" "$bin/kubectl" "$root/usr/bin/"
install -m0755 "$bin"/cni/* "$root/opt/cni/bin/"
if [ "$capfix" = yes ]; then
  install -m0755 "$here/runc-capfix" "$root/usr/local/sbin/runc-capfix"
  sed -i 's|^\(\s*\)SystemdCgroup = true|\1SystemdCgroup = true\n\1BinaryName = "/usr/local/sbin/runc-capfix"|' "$root/etc/containerd/config.toml"
fi
sed -i "s|registry.k8s.io/pause:[0-9.]*|registry.k8s.io/pause:$PAUSE_VERSION|" "$root/etc/containerd/config.toml"
# Registry hosts per registry, read on each pull: cluster.sh points localhost:PORT at the local
# registry's container there.
printf '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n' >> "$root/etc/containerd/config.toml"
chroot "$root" /usr/local/bin/ctr oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' > "$root/etc/containerd/cri-base.json"
printf '%s' "$KUBERNETES_VERSION" > "$root/kind/version"
mkdir -p "$root/kind/manifests"
install -m0644 "$here/node/default-cni.manifest" "$root/kind/manifests/default-cni.yaml"
install -m0644 "$here/node/default-storage.yaml" "$root/kind/manifests/"

# kube-proxy (iptables) and the pod network (bash, iproute2) sit on the Debian rootfs as a layer.
log "images: pause, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, CoreDNS, pod network"
mk() { python3 "$here/mkimage.py" "$@" >/dev/null; }
mk -o "$work/images/pause.tar" --ref "registry.k8s.io/pause:$PAUSE_VERSION" --file "$bin/pause:/pause" --entrypoint '["/pause"]' --user 65535:65535
for name in kube-apiserver kube-controller-manager kube-scheduler; do
  mk -o "$work/images/$name.tar" --ref "registry.k8s.io/$name:$KUBERNETES_VERSION" --file "$kbin/$name:/usr/local/bin/$name"
done
# etcd $ETCD_VERSION (the control plane's build) under the tag kubeadm asks for.
mk -o "$work/images/etcd.tar" --ref "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" --file "$kbin/etcd:/usr/local/bin/etcd"
mk -o "$work/images/coredns.tar" --ref "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" --file "$bin/coredns:/coredns" --entrypoint '["/coredns"]'
mk -o "$work/images/kube-proxy.tar" --ref "registry.k8s.io/kube-proxy:$KUBERNETES_VERSION" --layer-tar "$rootfs_tar" \
   --file "$bin/kube-proxy:/usr/local/bin/kube-proxy"
mk -o "$work/images/pod-network.tar" --ref aiinfra.local/kind-pod-network:v1 --layer-tar "$rootfs_tar" \
   --file "$bin/kubectl:/usr/local/bin/kubectl" --file "$here/node/pod-network.sh:/usr/local/bin/pod-network.sh"

log "preloading them into the node's containerd and committing $image"
tar -C "$root" -c . | docker import --change 'ENV container=docker' - "aiinfra.local/kind-node-base:$key" >/dev/null
rm -rf "$root"
docker run -d --name "$build_container" --entrypoint=sleep --privileged --security-opt seccomp=unconfined \
  -v "$work/images:/images:ro" "aiinfra.local/kind-node-base:$key" infinity >/dev/null
docker exec "$build_container" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &
  for _ in $(seq 1 30); do [ -S /run/containerd/containerd.sock ] && break; sleep 1; done
  for image in /images/*.tar; do
    ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests "$image" >/dev/null 2>&1
  done
  kill "$(pidof containerd)"; sleep 2; rm -rf /tmp/* /run/containerd'
docker stop -t 1 "$build_container" >/dev/null
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' "$build_container" "$image" >/dev/null
# Earlier builds (other inputs) are 1.4 GB each: keep only this one.
docker images --format '{{.Repository}}:{{.Tag}}' aiinfra.local/kind-node | grep -vx "$image" | xargs -r docker rmi >/dev/null 2>&1 || true
log "$image built in $((SECONDS - started)) s"
echo "$image"
