module aiinfra.local/kind-cri-tools

go 1.26.8

require sigs.k8s.io/cri-tools v1.36.0 // indirect
