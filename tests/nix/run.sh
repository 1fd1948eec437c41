#!/usr/bin/env bash
# Lib-only evaluation of the NixOS modules (tests/nix/eval.nix) and checks of
# what they produce: option defaults and types, the modules' own errors, the
# generated agent TOML (through `cm-agent check-config`), the systemd unit's
# hardening, and backup jobs taken from restic and borgbackup.
#
#   NIXPKGS_LIB=/path/to/nixpkgs.lib tests/nix/run.sh [--harness]
#
# NIXPKGS_LIB is a checkout of github:nix-community/nixpkgs.lib. Without it
# this script says SKIPPED and exits 0. --harness also installs the generated
# unit into the real systemd of tests/systemd/harness.sh (root) and runs the
# agent there under its own hardening.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${NIXPKGS_LIB:-}" ] || [ ! -e "$NIXPKGS_LIB/lib/default.nix" ]; then
  echo "SKIPPED: tests/nix needs NIXPKGS_LIB (a checkout of nix-community/nixpkgs.lib); the modules were NOT evaluated" >&2
  exit 0
fi
NIX=${NIX:-nix}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
evaluate() {
  "$NIX" eval --impure --json --extra-experimental-features nix-command \
    --expr "import ./tests/nix/eval.nix { lib = import $NIXPKGS_LIB/lib; $1 }"
}

evaluate "" > "$out/report.json"
for case in badPort badInterval badThreshold badSpan badRuleSpan badMatch; do
  if evaluate "case = \"$case\";" > /dev/null 2> "$out/$case.err"; then
    echo "FAIL: $case evaluated without an error" >&2; exit 1
  fi
done
target=${CARGO_TARGET_DIR:-target}
cargo build -q -p cm-agent
python3 tests/nix/check.py "$out" "$target/debug/cm-agent"

if [ "${1:-}" = --harness ]; then
  cargo build -q -p cm-dashboard
  tests/nix/harness.sh "$out" "$target/debug/cm-agent" "$target/debug/cm-dashboard"
fi
echo "tests/nix: all checks passed"
