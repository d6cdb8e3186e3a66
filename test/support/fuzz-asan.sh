#!/bin/bash
# The netlink fuzzer (netlink-fuzz.mjs) against the addon built with
# AddressSanitizer: the sources and dist/ are copied to a scratch directory
# (default /tmp/tsproxy-asan; $1 to choose), the addon is built there with
# -fsanitize=address, and the fuzzer runs with libasan preloaded into node.
# The tree's own build/ is left alone. Run `npm run compile` first (dist/).
#   TSPROXY_FUZZ_CASES=300000 TSPROXY_FUZZ_MS=3000000 test/support/fuzz-asan.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/tsproxy-asan}
mkdir -p "$dir/test/unit" "$dir/test/support"
rm -rf "$dir/native" "$dir/dist"
cp -r "$root/native" "$root/dist" "$root/package.json" "$dir/"
cp "$root/test/support/netlink-fuzz.mjs" "$root/test/support/nlmsg.mjs" "$dir/test/support/"
cp "$root"/test/unit/*-fixtures.test.ts "$dir/test/unit/"
ln -sfn "$root/node_modules" "$dir/node_modules"
sed 's/"-O2"\]/"-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"],\n      "ldflags": ["-fsanitize=address"]/' \
  "$root/binding.gyp" > "$dir/binding.gyp"
grep -q fsanitize "$dir/binding.gyp" || { echo "binding.gyp: no -O2 flag to replace" >&2; exit 1; }
(cd "$dir" && npx node-gyp rebuild >"$dir/build.log" 2>&1) || { tail -20 "$dir/build.log" >&2; exit 1; }
cd "$dir"
LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1} \
  node test/support/netlink-fuzz.mjs | { grep -v '^progress ' || true; }
