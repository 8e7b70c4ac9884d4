#!/usr/bin/env bash
# The offline kind node image's pod network, in place of kindnetd: writes this node's ptp CNI
# config from its podCIDR and routes the other nodes' podCIDRs via their InternalIP, every 5 s.
# Runs with hostNetwork and NET_ADMIN, /etc/cni/net.d mounted (default-cni.yaml).
set -u
SA=/var/run/secrets/kubernetes.io/serviceaccount
while true; do
  K=(kubectl --server="https://${CONTROL_PLANE_ENDPOINT}" --token="$(cat $SA/token)" --certificate-authority="$SA/ca.crt")
  if ! "${K[@]}" get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address} kwok={.metadata.annotations.kwok\.x-k8s\.io/node}{"\n"}{end}' > /tmp/nodes; then
    sleep 2; continue
  fi
  while read -r name cidr ip kwok; do
    [ -z "${cidr:-}" ] && continue
    # KWOK's simulated nodes (tools/kind/gpu_nodes.py) run no pods to route to.
    [ "${kwok:-}" = kwok=fake ] && continue
    if [ "$name" = "$NODE_NAME" ]; then
      cat > /tmp/conf <<JSON
{"cniVersion":"0.3.1","name":"kindnet","plugins":[
 {"type":"ptp","ipMasq":false,"mtu":1500,"ipam":{"type":"host-local","dataDir":"/run/cni-ipam-state","routes":[{"dst":"0.0.0.0/0"}],"ranges":[[{"subnet":"$cidr"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
JSON
      cmp -s /tmp/conf /etc/cni/net.d/10-kindnet.conflist || { cp /tmp/conf /etc/cni/net.d/10-kindnet.conflist.tmp; mv /etc/cni/net.d/10-kindnet.conflist.tmp /etc/cni/net.d/10-kindnet.conflist; echo "wrote CNI config for $cidr"; }
    else
      ip route replace "$cidr" via "$ip" && true
    fi
  done < /tmp/nodes
  sleep 5
done
