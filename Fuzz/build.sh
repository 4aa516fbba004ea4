#!/usr/bin/env bash
# Builds one libFuzzer target: the package's executable target FuzzNAME (Fuzz/NAME, which
# imports the modules it fuzzes; see Package.swift) with the toolchain's libFuzzer and
# AddressSanitizer, by `swift build` in release mode with `-sanitize=fuzzer,address` and
# `-D FUZZING` (under which `fuzzMain`, Fuzz/Support, hands the command line to libFuzzer).
# `-enable-testing` lets targets `@testable import` what they check. All targets share the
# scratch path .build-fuzz, so the modules they import compile once for all of them.
#
#   Fuzz/build.sh NAME                      -> .build-fuzz/NAME (a link to .build-fuzz/release/FuzzNAME)
#   .build-fuzz/NAME -max_total_time=20     a short run (CI); longer by hand
#   .build-fuzz/NAME crash-<sha>            replay a crash
#
# Without the sanitizers, `swift build` makes .build/debug/FuzzNAME, which replays the files
# (or folders of files) it is given: `.build/debug/FuzzNAME crash-<sha>`.
#
# Environment: SWIFT (default: swift on PATH), FUZZ_FLAGS (extra `swift build` arguments,
# e.g. "-Xswiftc -Onone").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${1:-}
if [[ -z "$name" || ! -f "$root/Fuzz/$name/main.swift" ]]; then
    echo "usage: Fuzz/build.sh NAME   (NAME one of: $(cd "$root/Fuzz" && ls -d */ 2>/dev/null | tr -d / | grep -vx Support | tr '\n' ' '))" >&2
    exit 2
fi

echo "Fuzz/build.sh: building Fuzz$name -> .build-fuzz/$name" >&2
cd "$root"
# Linked by the toolchain's ld.lld: the system's ld.gold (binutils 2.40) stops with "internal
# error in format_file_lineno" on FuzzExt2Image (measured 2026-12-08), lld links every target.
# shellcheck disable=SC2086
"${SWIFT:-swift}" build -c release --scratch-path "$root/.build-fuzz" --product "Fuzz$name" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc FUZZING -Xswiftc -enable-testing \
    -Xswiftc -use-ld=lld ${FUZZ_FLAGS:-} >&2
ln -sfn "release/Fuzz$name" "$root/.build-fuzz/$name"
echo "$root/.build-fuzz/$name"
