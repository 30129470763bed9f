#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run_fuzzer.sh - one bounded fuzzing run, as the ctest test fuzz.<target> does it.
#
#     run_fuzzer.sh FUZZER TARGET SECONDS WORK_DIR [LIBFUZZER_OPTION...]
#
# Copies corpus/TARGET/ into WORK_DIR/TARGET/corpus (the fuzzer adds what it finds to the
# copy, never to the repository), replays the saved reproducers of crashes/TARGET/ if any,
# and fuzzes for SECONDS. Exits non-zero when the fuzzer finds a crash, a leak, undefined
# behaviour, a broken contract (an abort of the harness), a timeout or runaway memory; the
# input that did it is left in WORK_DIR/TARGET/artifacts/ and named in the output.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
fuzzer=${1:?usage: $0 FUZZER TARGET SECONDS WORK_DIR [OPTION...]}
target=${2:?target}
seconds=${3:?seconds}
work=${4:?work dir}/$target
shift 4

[[ -x $fuzzer ]] || {
	echo "run_fuzzer.sh: $fuzzer is not built (the dt_fuzzers target of the build)" >&2
	exit 1
}
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -R "$here/corpus/$target/." "$work/corpus/"
dirs=("$work/corpus")
if [[ -d $here/crashes/$target ]] && compgen -G "$here/crashes/$target/*" >/dev/null; then
	dirs+=("$here/crashes/$target")
fi

# The configuration fuzzer writes its input to a file: in memory, and gone afterwards even
# when a crash skips its clean-up.
tmp=${TMPDIR:-/tmp}
[[ -w /dev/shm ]] && tmp=/dev/shm
export DT_FUZZ_TMPDIR
DT_FUZZ_TMPDIR=$(mktemp -d "$tmp/dt-fuzz.XXXXXX")
trap 'rm -rf "$DT_FUZZ_TMPDIR"' EXIT
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

log=$work/fuzz.log
seeds=$(ls "$work/corpus" | wc -l)
echo "fuzz.$target: $seconds s on a copy of corpus/$target ($seeds seeds)${dirs[1]:+," \
	"replaying crashes/$target}"
rc=0
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$@" "${dirs[@]}" >"$log" 2>&1 || rc=$?
if ((rc == 0)); then
	grep -E '^(#[0-9]+[[:space:]]+DONE|stat::)' "$log" || true
	echo "fuzz.$target: no crash ($(ls "$work/corpus" | wc -l) inputs in the corpus copy)"
	exit 0
fi
# The report: the harness's or the sanitizer's complaint and the stack, without the
# libFuzzer progress lines and dictionary that come before it.
grep -vE '^(#[0-9]+[[:space:]]|INFO: |"|###### )' "$log" | tail -n 80
echo "fuzz.$target: FAILED (exit status $rc); full log: $log"
for a in "$work"/artifacts/*; do
	[[ -e $a ]] || continue
	echo "fuzz.$target: reproducer $a"
	echo "    replay: LSAN_OPTIONS=$LSAN_OPTIONS $fuzzer $a"
	echo "    keep:   mkdir -p $here/crashes/$target && cp $a $here/crashes/$target/"
done
exit 1
