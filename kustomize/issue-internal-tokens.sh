#!/usr/bin/env bash
# Issues the internal tokens of PUB and the supervisor with `lifecycle generate-auth` inside the
# running Lifecycle pod (it alone holds AUTH_KEY and the database) and stores them in the Secret
# `racetrack-internal-tokens`, which the PUB and supervisor pods read. Run once after the first
# `kubectl apply -k`; again to rotate (then revoke the old tokens: GET
# /api/v1/auth/subjects/{id}/tokens, DELETE /api/v1/auth/tokens/{id}).
set -euo pipefail
ns="${NAMESPACE:-racetrack}"
kubectl -n "$ns" rollout status deploy/lifecycle --timeout=300s >/dev/null
issue() { kubectl -n "$ns" exec deploy/lifecycle -c lifecycle -- env RUST_LOG=error lifecycle generate-auth "$1" | tail -n1; }
pub="$(issue pub)"
supervisor="$(issue lifecycle-supervisor)"
kubectl -n "$ns" create secret generic racetrack-internal-tokens \
  --from-literal=pub="$pub" --from-literal=lifecycle-supervisor="$supervisor" \
  --dry-run=client -o yaml | kubectl -n "$ns" apply -f - >/dev/null
kubectl -n "$ns" rollout restart deploy/pub deploy/lifecycle-supervisor >/dev/null
echo "racetrack-internal-tokens updated; pub and lifecycle-supervisor restarted"
