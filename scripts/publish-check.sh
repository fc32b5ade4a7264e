#!/usr/bin/env bash
# Are the four crates ready to publish? Packages npu-runtime, npu-build, npu-model-macro and
# npu-cli and verifies that each package builds on its own, then builds the API docs with
# warnings as errors.
#
#   scripts/publish-check.sh
#
# Why `--workspace`: a plain `cargo publish --dry-run -p npu-build` resolves its dependency
# `npu-runtime = "0.1.0"` on crates.io, where it is not (yet) published, so the verify step of
# every crate but the leaf would fail. Packaging the workspace together (cargo >= 1.90)
# verifies each crate against the packages just built for its siblings, through a local
# registry overlay (target/package/tmp-registry): exactly what crates.io will hold once they
# are published in dependency order, which `cargo publish --workspace` also does.
# `--allow-dirty`: what is checked is the package contents; in CI's clean clone it changes
# nothing, locally it lets the check run on uncommitted work.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo publish --dry-run --workspace --allow-dirty
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
# The runtime's docs as docs.rs builds them (its `std` and `rknpu` features) and bare (no_std):
# a link to an item of a feature the build lacks is a warning there.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet -p npu-runtime
