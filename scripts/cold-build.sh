#!/usr/bin/env bash
# Times a cold `cargo build --release` of a commit (default: HEAD) in a fresh worktree with its
# own target dir, and prints the slowest crates from cargo's --timings report.
#
#   scripts/cold-build.sh [COMMIT]
#
# Compare two commits on the same machine in the same hour, one after the other, with nothing
# else running (the crate registry must already be downloaded: this times compiling only).
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:-HEAD}
dir=$(mktemp -d)
trap 'git worktree remove --force "$dir" >/dev/null 2>&1 || rm -rf "$dir"' EXIT
git worktree add --detach "$dir" "$commit" >/dev/null
cd "$dir"
start=$(date +%s)
cargo build --release --locked --timings --quiet
end=$(date +%s)
echo "cold release build of $(git rev-parse --short HEAD): $((end - start)) s, binary $(stat -c %s target/release/anamo) bytes"
python3 - target/cargo-timings/cargo-timing.html <<'PY'
import json, re, sys
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", open(sys.argv[1]).read(), re.S).group(1))
print(f"  {len(units)} units, {sum(u['duration'] for u in units):.0f} s of compiling in all; slowest:")
for u in sorted(units, key=lambda u: -u["duration"])[:8]:
    print(f"  {u['name']:28} {u['duration']:6.1f} s  (started at {u['start']:5.1f} s)")
PY
