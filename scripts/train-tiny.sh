#!/usr/bin/env bash
# Retrain the repo's default model, models/tiny/moby-tiny.gguf, from scratch: creates its own
# venv ($NPU_CACHE/train-venv, packages pinned by models/tiny/requirements.txt), fetches the
# Moby-Dick text, trains (CPU only; ~400 steps, see models/tiny/README.md) and exports the GGUF,
# tokenizer.json, held-out ids, metrics and .sha256 into models/tiny/ (or OUT).
#
#   scripts/train-tiny.sh [--out DIR] [train.py options: --steps N --seed S]
#
# Not part of CI: the GGUF is committed. Then re-measure with models/tiny/measure.py (README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
TRAIN_VENV="${NPU_TRAIN_VENV:-$NPU_CACHE/train-venv}"
REQ=models/tiny/requirements.txt
stamp="$TRAIN_VENV/.npu-requirements"
if [ ! -x "$TRAIN_VENV/bin/python" ] || ! cmp -s "$REQ" "$stamp"; then
  echo "train-tiny: creating $TRAIN_VENV from $REQ" >&2
  python3 -m venv "$TRAIN_VENV"
  "$TRAIN_VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$stamp"
fi
scripts/fetch-models.sh moby >/dev/null
exec "$TRAIN_VENV/bin/python" models/tiny/train.py --text "$NPU_CACHE/moby-dick.txt" "$@"
