#!/usr/bin/env bash
# Builds one libFuzzer target: Fuzz/NAME/*.swift together with the project sources listed
# in Fuzz/NAME/sources.txt (one glob per line, relative to the repository root; blank lines
# and `#` comments ignored), compiled as a single module with the toolchain's libFuzzer and
# AddressSanitizer. Core files compile into that module directly, so targets use Core's
# types without `import Core`.
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
echo "Fuzz/build.sh: compiling $name (${#sources[@]} files) -> .build-fuzz/$name" >&2
# The module gets its own name so that a target named like a type (VsockHeader) cannot shadow it.
# shellcheck disable=SC2086
"${SWIFTC:-swiftc}" -sanitize=fuzzer,address -parse-as-library -O -g -use-ld=lld \
    -module-name "Fuzz$name" ${FUZZ_FLAGS:-} \
    "${sources[@]}" -o "$output"
echo "$output"
