#!/usr/bin/env bash
# The long test tier, outside CI: everything `#[ignore]`d in the workspace (the soak run,
# PADDOCK_SOAK_SECONDS, and the stable mutation fuzzers over the router and config corpora,
# PADDOCK_FUZZ_SECONDS each; 600 by default), then libFuzzer on each cargo-fuzz target for
# FUZZ_SECONDS (default 600) when a nightly toolchain and cargo-fuzz are installed. See
# docs/security.md.
#
#   scripts/long-tier.sh                         # about 1.5 hours
#   PADDOCK_SOAK_SECONDS=60 PADDOCK_FUZZ_SECONDS=60 FUZZ_SECONDS=60 scripts/long-tier.sh  # quick
set -euo pipefail
cd "$(dirname "$0")/.."

export PADDOCK_FUZZ_SECONDS="${PADDOCK_FUZZ_SECONDS:-600}"
export PADDOCK_SOAK_SECONDS="${PADDOCK_SOAK_SECONDS:-600}"
fuzz_seconds="${FUZZ_SECONDS:-600}"

cargo build --workspace --all-targets
cargo test --workspace -- --ignored --nocapture

if cargo +nightly fuzz --version >/dev/null 2>&1; then
    for dir in frontend/fuzz protocol/fuzz; do
        [ -d "$dir" ] || continue
        for target in $(cd "$dir" && cargo +nightly fuzz list); do
            echo "== cargo fuzz run $target ($dir, ${fuzz_seconds}s)"
            # New inputs go to the corpus directory; commit the interesting ones, so that
            # `cargo test` replays them from then on.
            (cd "$dir" && cargo +nightly fuzz run "$target" -- -max_total_time="$fuzz_seconds")
        done
    done
else
    echo "skipping libFuzzer: needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz)"
fi
