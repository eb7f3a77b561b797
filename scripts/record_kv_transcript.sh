#!/usr/bin/env bash
# Re-records what Redis answers to tests/kv_server/transcript/session.redis
# (needs redis-server and redis-cli, e.g. `apt-get install redis-server
# redis-tools`; stop the packaged service first if it holds port 6379).
# The kv_server transcript test then compares the example with these files.
set -euo pipefail
cd "$(dirname "$0")/.."
WHARF_RECORD_REDIS=1 cargo test --test kv_server transcript -- --nocapture
git status --short tests/kv_server/transcript
