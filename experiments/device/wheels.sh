#!/bin/bash
# Wheels a lent H200 lacks, for its Python 3.12 (the machine cannot reach a package index; /work/.library/device):
# kornia (the guided filter of dmenet.galetto.refine, the Sobel loss of dmenet.distill) and its compiled kornia_rs.
# W&B is not needed there: every trainer runs with train.wandb=disabled without importing it.
#   bash experiments/device/wheels.sh            # here: writes .whl/ (ignored by git; about 7.3 MB)
# Then on the device (name .whl in the run's carry):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
#       && export PYTHONPATH=/tmp/site
# galetto_pair.sh does that itself when .whl/ is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
KORNIA=$($PY -c "import importlib.metadata as m; print(m.version('kornia'))")
KORNIA_RS=$($PY -c "import importlib.metadata as m; print(m.version('kornia_rs'))")
mkdir -p .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "kornia==$KORNIA" "kornia_rs==$KORNIA_RS"
ls -la .whl
