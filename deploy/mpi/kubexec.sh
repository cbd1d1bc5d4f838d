#!/bin/sh
# OpenMPI's remote launcher for herd on Kubernetes, in place of ssh (mpirun --mca
# plm_rsh_agent /opt/herd/bin/kubexec.sh): mpirun calls it as `kubexec.sh HOST CMD...` to start
# its daemon (orted) on HOST; this runs CMD in the herd container of the pod named by HOST's
# first DNS label, through the Kubernetes API (the pod's service account needs create on
# pods/exec for that pod: see deploy/k8s/herd-405b-lws.yaml). The daemon then connects back to
# mpirun over TCP, and the ranks' NCCL traffic goes pod to pod (NCCL_SOCKET_IFNAME / IB).
# The Kubeflow MPI Operator's v1 launcher works the same way.
set -eu
host="$1"
shift
pod="${host%%.*}"
exec "${KUBECTL:-/opt/herd/bin/kubectl}" exec "$pod" -c "${HERD_CONTAINER:-herd}" -- /bin/sh -c "$*"
