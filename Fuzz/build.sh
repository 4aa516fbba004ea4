#!/usr/bin/env bash
# Builds one libFuzzer target: Fuzz/NAME/*.swift together with the project sources listed
# in Fuzz/NAME/sources.txt (one glob per line, relative to the repository root; blank lines
# and `#` comments ignored), compiled as a single module with the toolchain's libFuzzer and
# AddressSanitizer. Project files compile into that module directly, so targets use their
# types without importing them; the `import Core`, `import Wire`, `import VirtIO` and
# `import Drivers` lines of those files resolve to empty stand-in modules built here.
#
#   Fuzz/build.sh NAME                      -> .build-fuzz/NAME
#   .build-fuzz/NAME -max_total_time=20     a short run (CI); longer by hand
#   .build-fuzz/NAME crash-<sha>            replay a crash
#
# Environment: SWIFTC (default: swiftc on PATH), FUZZ_FLAGS (extra swiftc flags).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=${1:-}
if [[ -z "$name" || ! -d "$root/Fuzz/$name" ]]; then
    echo "usage: Fuzz/build.sh NAME   (NAME one of: $(cd "$root/Fuzz" && ls -d */ 2>/dev/null | tr -d / | tr '\n' ' '))" >&2
    exit 2
fi
target="$root/Fuzz/$name"

declare -A seen=()
sources=()
add() {
    if [[ -z "${seen[$1]:-}" ]]; then
        seen[$1]=1
        sources+=("$1")
    fi
}

shopt -s nullglob
for file in "$target"/*.swift; do add "$file"; done
if [[ -f "$target/sources.txt" ]]; then
    while IFS= read -r line || [[ -n "$line" ]]; do
        line=${line%%#*}
        line=$(echo "$line" | xargs)            # trim
        [[ -z "$line" ]] && continue
        matches=("$root"/$line)
        if (( ${#matches[@]} == 0 )); then
            echo "Fuzz/build.sh: '$line' (Fuzz/$name/sources.txt) matches no file" >&2
            exit 1
        fi
        for file in "${matches[@]}"; do add "$file"; done
    done < "$target/sources.txt"
fi
shopt -u nullglob

mkdir -p "$root/.build-fuzz"
output="$root/.build-fuzz/$name"

# Empty modules for the project modules the listed files import (they are all compiled
# into this one module instead).
stubs="$root/.build-fuzz/stubs"
mkdir -p "$stubs"
for module in $(sed -n -E 's/^(@testable )?import (Core|Wire|VirtIO|Drivers)$/\2/p' "${sources[@]}" | sort -u); do
    if [[ ! -f "$stubs/$module.swiftmodule" ]]; then
        : > "$stubs/empty.swift"
        "${SWIFTC:-swiftc}" -emit-module -parse-as-library -module-name "$module" \
            "$stubs/empty.swift" -emit-module-path "$stubs/$module.swiftmodule"
    fi
done
echo "Fuzz/build.sh: compiling $name (${#sources[@]} files) -> .build-fuzz/$name" >&2
# The module gets its own name so that a target named like a type (VsockHeader) cannot shadow it.
# shellcheck disable=SC2086
"${SWIFTC:-swiftc}" -sanitize=fuzzer,address -parse-as-library -O -g -use-ld=lld \
    -module-name "Fuzz$name" -I "$stubs" ${FUZZ_FLAGS:-} \
    "${sources[@]}" -o "$output"
echo "$output"
