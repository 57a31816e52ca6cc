#!/usr/bin/env bash
# Plays thousands of random histories through the model test (tests/model.rs: every surface
# of the one rule against a reference model) and prints the figures BENCHMARKS.md keeps:
# histories, operations, surfaces compared, disagreements.
#
#   scripts/model-soak.sh                      # 10,000 histories on SQLite, 1,000 on DynamoDB
#   SQLITE=500 DYNAMO=50 scripts/model-soak.sh
#   ANAMO_MODEL_SEED=123 scripts/model-soak.sh # a seed a failure printed
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import moto.server, werkzeug" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
fi
export ANAMO_PYTHON="$PWD/.venv/bin/python" CI=true
for store in sqlite:"${SQLITE:-10000}" dynamodb:"${DYNAMO:-1000}"; do
  name=${store%%:*} cases=${store#*:}
  start=$(date +%s)
  ANAMO_MODEL_CASES=$cases cargo test --locked --quiet --test integration \
    "model::every_surface_agrees_with_the_model_on_$name" -- --nocapture 2>&1 \
    | grep -E '^model test|panicked|disagrees|^test result'
  echo "$name: $cases histories in $(( $(date +%s) - start )) s"
done
