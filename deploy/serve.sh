#!/usr/bin/env bash
# Install and serve lmcore as a hosted demo: the one script the Dockerfile runs for both.
#
#   deploy/serve.sh install   # a venv (or the current Python) with CPU-only torch and lmcore
#   deploy/serve.sh serve     # the app on $ADDRESS:$PORT with the hosted limits
#   deploy/serve.sh           # both
#
# Environment: PORT (default 8501; Render, Cloud Run and Fly set it), ADDRESS (0.0.0.0),
# LMCORE_PROFILE (hosted), any LMCORE_* limit, PYTHON (the interpreter serving the app),
# VENV (install into this venv; unset in the image, where the system Python is used).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
export LMCORE_PROFILE=${LMCORE_PROFILE:-hosted}

install() {
  local py=${PYTHON:-python3}
  if [ -n "${VENV:-}" ]; then
    [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
    py=$VENV/bin/python
  fi
  "$py" -m pip install --no-cache-dir -q --upgrade pip
  # CPU torch first, from PyTorch's CPU index only (the default index's torch pulls CUDA:
  # gigabytes); its own dependencies come with lmcore's below, from the default index.
  "$py" -m pip install --no-cache-dir -q --no-deps --index-url "$TORCH_INDEX" "$(torch_pin)"
  # lmcore and every other dependency; the torch pin is already satisfied by the CPU wheel.
  "$py" -m pip install --no-cache-dir -q "$ROOT"
  "$py" -c "import torch, lmcore; print('installed: torch', torch.__version__, '| lmcore from', lmcore.__file__)"
}

torch_pin() {  # the torch requirement pyproject.toml pins (one place to change it)
  grep -o '"torch==[^"]*"' "$ROOT/pyproject.toml" | tr -d '"'
}

serve() {
  local py=${PYTHON:-python3}
  [ -n "${VENV:-}" ] && py=$VENV/bin/python
  # lmcore's upload cap becomes Streamlit's own (server.maxUploadSize, read at start), so a
  # bigger upload is refused by the server before it is read, not after it is in memory.
  local cap
  cap=$("$py" -c "from lmcore.settings import get_settings; print(get_settings().upload_mb)")
  exec "$py" -m streamlit run "$ROOT/streamlit_app.py" \
    --server.address "${ADDRESS:-0.0.0.0}" --server.port "${PORT:-8501}" \
    --server.headless true --server.maxUploadSize "$cap" \
    --server.enableXsrfProtection true --server.enableCORS true \
    --server.disconnectedSessionTTL "${SESSION_RECONNECT_S:-60}" \
    --server.fileWatcherType none --runner.postScriptGC false \
    --browser.gatherUsageStats false
}

case "${1:-all}" in
  install) install ;;
  serve) serve ;;
  all) install && serve ;;
  *) echo "usage: $0 [install|serve|all]" >&2; exit 2 ;;
esac
