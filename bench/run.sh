#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - every benchmark of issue 6, one table.
#
#     bench/run.sh            # as root, from anywhere
#     bench/run.sh --scale    # the growth curves instead (bench/SCALE.md)
#
# Builds what it needs (cmake into build-bench/ unless DT_BENCH_BUILD says otherwise),
# runs the six benchmarks and issue 20's NAT router (7), prints the table on stdout and
# writes it, with the machine it was measured on, to bench/RESULTS.md. Each benchmark
# program prints its own rows ("row|figure|value|baseline|vs baseline|goal|status", see
# bench/common.h); this script only collects them. Progress goes to stderr, each
# benchmark's own log to $DT_BENCH_BUILD/bench-logs/.
#
# No benchmark passes or fails on a timing: "misses" in the table is a report. The exit
# status is non-zero only when a benchmark could not run at all (its row says so).
# The lab benchmarks use the namespace prefix "dtb" (DT_LAB), never a test's. About two
# minutes on a 2-vCPU VM.
#
# With --scale it runs the growth curves of issue 16 instead: each scale benchmark prints
# its own markdown section as "md|" lines (dtb_md() in bench/common.h), and run.sh writes
# them, after the machine's description, to bench/SCALE.md.
set -uo pipefail

MODE=table
case ${1:-} in
'') ;;
--scale) MODE=scale ;;
-h | --help)
	sed -n '3,/^set -uo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: bench/run.sh [--scale]" >&2
	exit 2
	;;
esac

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${DT_BENCH_BUILD:-$REPO/build-bench}
BIN=$BUILD/bin
LOGS=$BUILD/bench-logs
RESULTS=$BENCH_DIR/RESULTS.md
SCALE=$BENCH_DIR/SCALE.md
export DT_LAB=${DT_LAB:-dtb}
export DT_BIN=$BIN

note() { printf 'bench: %s\n' "$*" >&2; }

if ((EUID != 0)); then
	note "run as root: the data plane benchmarks load BPF programs and the lab needs namespaces"
	exit 2
fi

# --- build ----------------------------------------------------------------------------------
note "building into $BUILD"
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
	cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
fi
if ! cmake --build "$BUILD" --target dt-bench -j"$(nproc)" >"$BUILD/bench-build.log" 2>&1; then
	tail -n 30 "$BUILD/bench-build.log" >&2
	note "build failed (log: $BUILD/bench-build.log)"
	exit 1
fi
# The build's writeback and its last compiler processes would still run during the first
# benchmark (the fast path, 7 s): its traced rows came out 20-40% slower right after a build
# than a minute later. Flush, and give the machine a few seconds to settle.
sync
sleep 5
mkdir -p "$LOGS"
SCRATCH=$(mktemp -d "$BUILD/bench-scratch.XXXXXX") || exit 1
trap 'rm -rf -- "$SCRATCH"' EXIT

# --- run ------------------------------------------------------------------------------------
ROWS=$SCRATCH/rows
: >"$ROWS"
failed=0

# bench NUM NAME CMD...: runs one benchmark, its rows prefixed with NUM and NAME.
bench() {
	local num=$1 name=$2 log=$LOGS/$1-$2.log start rc=0 out
	shift 2
	note "$num. $name ..."
	start=$SECONDS
	out=$("$@" 2>"$log") || rc=$?
	grep '^row|' <<<"$out" | sed "s/^row|/$num|$name|/" >>"$ROWS"
	if ((rc != 0)) || ! grep -q '^row|' <<<"$out"; then
		failed=1
		printf '%s|%s|did not run (exit %s): see %s||||||failed\n' "$num" "$name" "$rc" "$log" >>"$ROWS"
		note "$num. $name failed (exit $rc); its log ends:"
		tail -n 15 "$log" >&2
	fi
	note "$num. $name: $((SECONDS - start)) s"
}

# scale NAME CMD...: runs one growth benchmark, its markdown lines appended in order.
MD=$SCRATCH/md
: >"$MD"
scale() {
	local name=$1 log=$LOGS/scale-$1.log start rc=0 out
	shift
	note "scale: $name ..."
	start=$SECONDS
	out=$("$@" 2>"$log") || rc=$?
	if ((rc != 0)) || ! grep -q '^md|' <<<"$out"; then
		failed=1
		printf '\n## %s\n\nDid not run (exit %s): see the log %s.\n' "$name" "$rc" "${log#"$REPO"/}" >>"$MD"
		note "scale: $name failed (exit $rc); its log ends:"
		tail -n 15 "$log" >&2
	else
		grep '^md|' <<<"$out" | sed 's/^md|//' >>"$MD"
	fi
	note "scale: $name: $((SECONDS - start)) s"
}

if [[ $MODE == scale ]]; then
	T0=$SECONDS
	mkdir -p "$SCRATCH/scale"
	# The growth curves, one line each (issue 16, "How the cost grows").
	# --- scale benchmarks: add below ---
	scale "analyzer" "$BIN/dt-bench-analyzer" --scale "$SCRATCH/scale" 10000000
	scale "task service and control path" "$BIN/dt-bench-tasks" "$SCRATCH/scale"
	scale "collector, agents at once" "$BIN/dt-bench-ingest" --scale "$SCRATCH/scale/ingest" 600
	# --- scale benchmarks: end ---
	ELAPSED=$((SECONDS - T0))
fi

if [[ $MODE == table ]]; then
T0=$SECONDS
bench 1 "fast path" "$BIN/dt-bench-fastpath"
mkdir -p "$SCRATCH/ingest" "$SCRATCH/analyzer"
bench 3 "collector ingest" "$BIN/dt-bench-ingest" "$SCRATCH/ingest" 600
rm -rf -- "${SCRATCH:?}/ingest"
bench 4 "analyzer" "$BIN/dt-bench-analyzer" "$SCRATCH/analyzer" 250000
rm -rf -- "${SCRATCH:?}/analyzer"
bench 2 "live forwarding" env ROUNDS="${ROUNDS:-9}" bash "$BENCH_DIR/live.sh"
bench 5 "memory" bash "$BENCH_DIR/memory.sh"
bench 6 "time to verdict" bash "$BENCH_DIR/verdict.sh"
bench 7 "NAT router" env ROUNDS="${ROUNDS:-9}" bash "$BENCH_DIR/nat.sh"
ELAPSED=$((SECONDS - T0))
fi

# --- the table ------------------------------------------------------------------------------
# Columns: # | benchmark | figure | value | baseline (same run) | vs baseline | goal | status
table() {
	sort -t'|' -k1,1n -s "$ROWS" | awk -F'|' '
		BEGIN { OFS = "" }
		{
			n++
			for (i = 1; i <= 8; i++) { c[n, i] = $i; gsub(/\|/, "/", c[n, i]) }
		}
		END {
			h[1] = "#"; h[2] = "benchmark"; h[3] = "figure"; h[4] = "value"
			h[5] = "baseline (same run)"; h[6] = "vs baseline"; h[7] = "goal"; h[8] = "status"
			for (i = 1; i <= 8; i++) { w[i] = length(h[i]) }
			for (r = 1; r <= n; r++) for (i = 1; i <= 8; i++) if (length(c[r, i]) > w[i]) w[i] = length(c[r, i])
			line = "|"; sep = "|"
			for (i = 1; i <= 8; i++) { line = line " " sprintf("%-" w[i] "s", h[i]) " |"; d = ""; for (k = 0; k < w[i]; k++) d = d "-"; sep = sep " " d " |" }
			print line; print sep
			for (r = 1; r <= n; r++) {
				line = "|"
				for (i = 1; i <= 8; i++) line = line " " sprintf("%-" w[i] "s", c[r, i]) " |"
				print line
			}
		}'
}

machine() {
	local cpu mem commit dirty=''
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
	commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
	# RESULTS.md (SCALE.md) itself is being written: its change does not make the tree dirty.
	[[ -n $(git -C "$REPO" status --porcelain -- . ':!bench/RESULTS.md' ':!bench/SCALE.md' 2>/dev/null) ]] &&
		dirty=' (with uncommitted changes)'
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- CPU: ${cpu:-unknown}, $(nproc) cores online, $mem of memory"
	echo "- kernel: $(uname -r) ($(uname -m)); spectre_v2: $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)"
	echo "- toolchain: $(clang --version 2>/dev/null | head -n1), libbpf $(pkg-config --modversion libbpf 2>/dev/null), LMDB $(pkg-config --modversion lmdb 2>/dev/null), nng $(awk '/#define NNG_(MAJOR|MINOR|PATCH)_VERSION/ { printf "%s%s", sep, $3; sep = "." }' /usr/include/nng/nng.h 2>/dev/null)"
	echo "- tree: commit $commit$dirty; build ${BUILD#"$REPO"/} (RelWithDebInfo)"
	echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared)"
	echo "- the whole run took ${ELAPSED} s"
}

if [[ $MODE == scale ]]; then
	{
		echo "# How the cost grows"
		echo
		echo "Written by \`bench/run.sh --scale\`; what each curve means and the capacity table"
		echo "derived from them: [README.md](README.md)."
		echo
		machine
		echo
		cat "$MD"
	} >"$SCALE"
	cat "$MD"
	echo
	machine | sed 's/^- /  /'
	note "curves written to $SCALE"
	exit "$failed"
fi

{
	echo "# Benchmark results"
	echo
	echo "Written by \`bench/run.sh\`; how each figure is measured: [README.md](README.md)."
	echo "Every baseline was measured in the same run as its figure."
	echo
	machine
	echo
	table
} >"$RESULTS"

echo
table
echo
machine | sed 's/^- /  /'
note "table written to $RESULTS"
exit "$failed"
