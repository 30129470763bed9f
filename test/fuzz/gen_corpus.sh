#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# gen_corpus.sh - regenerates the generated part of the fuzzers' seed corpus.
#
#     test/fuzz/gen_corpus.sh BUILD_DIR
#
#   corpus/proto/*.msgpack         every message of the wire format, made by the encoders
#                                  (dt-fuzz-gen-corpus, built in BUILD_DIR/test/fuzz/clang)
#   corpus/config/example-*.conf   packaging/*.conf without their comments
#
# The other files of corpus/config/ are written by hand and kept. Run it after a change of
# the wire format or of the example configurations, and commit the result.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:?usage: $0 BUILD_DIR}
gen=$build/test/fuzz/clang/dt-fuzz-gen-corpus
[[ -x $gen ]] || gen=$build/dt-fuzz-gen-corpus # a standalone build of test/fuzz/clang
[[ -x $gen ]] || {
	echo "gen_corpus.sh: no dt-fuzz-gen-corpus in $build (build it first)" >&2
	exit 1
}

mkdir -p "$here/corpus/proto" "$here/corpus/config"
rm -f "$here/corpus/proto/"*.msgpack
"$gen" "$here/corpus/proto"

for f in "$repo"/packaging/*.conf; do
	# No '#' appears inside a string of the examples.
	sed -e 's/#.*$//' -e 's/[[:space:]]*$//' "$f" | grep -v '^$' \
		>"$here/corpus/config/example-$(basename "$f")"
done
echo "gen_corpus.sh: corpus in $here/corpus ($(du -sh "$here/corpus" | cut -f1))"
