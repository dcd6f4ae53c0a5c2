#!/usr/bin/env bash
# Build benchmarks/.venv-peer: the peer (MMAction2's ST-GCN++) in its own virtualenv, because mmaction2 /
# mmcv / mmengine pin packages the main environment must not get. Idempotent: a finished venv is left alone.
#   bash benchmarks/setup_peer.sh            # build (about a minute or two with the local torch wheel)
#   bash benchmarks/setup_peer.sh --force    # rebuild from scratch
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-peer"
STAMP="$VENV/.installed"
PYTHON="${PYTHON:-python3}"
# The peer must run the same torch as ours, or the comparison measures two torch builds.
TORCH="${PEER_TORCH:-torch==2.13.0}"
PEER_PKGS=(mmaction2==1.2.0 mmengine "mmcv-lite<2.2" importlib_metadata)

if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$VENV"
fi
if [[ -f "$STAMP" ]]; then
    echo "peer venv ready: $VENV"
    exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "$TORCH"
"$VENV/bin/pip" install -q "${PEER_PKGS[@]}"
# Check that ST-GCN++ builds and takes a training step before declaring the venv ready.
"$VENV/bin/python" "$HERE/peer_stgcnpp.py" --check
"$VENV/bin/pip" freeze > "$VENV/freeze.txt"
touch "$STAMP"
echo "peer venv ready: $VENV"
