#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check_layout.sh SOURCE_DIR [CLI_BINARY] - fails when the tree drifts from the layout that
# HACKING.md describes (issue 15). The ctest test style.layout runs it; alone:
#   bash cmake/check_layout.sh . build/bin/dyetrace
#
#  - analyzer/ holds the daemon only (no CLI, no renderer), no file of it over 620 lines;
#  - the bodies of the stitcher, the task table and the string table are only in their
#    own .c files;
#  - one LMDB wrapper: only lib/dt_lmdb.c opens an environment or a database;
#  - the CLI (CLI_BINARY, when given) links no daemon code;
#  - HACKING.md exists, and every file path it names in backquotes exists.
# Prints one line per breach; exit status 1 when there is one.
set -uo pipefail

src=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd) || exit 2
cli=${2:-}
cd "$src" || exit 2
bad=0
breach() {
	echo "check_layout.sh: $*"
	bad=1
}

for f in analyzer/*.c analyzer/*.h; do
	n=$(wc -l <"$f")
	((n <= 620)) || breach "$f has $n lines (split it along its jobs; about 600 at most)"
done
for f in analyzer/cli*.c analyzer/render*.c analyzer/export_*.c; do
	[[ -e $f ]] && breach "$f is not the daemon's (cli/ or report/)"
done

# only_in PATTERN FILE WHAT DIR...: PATTERN (grep -E) in no .c or .h file of DIR... but FILE.
only_in() {
	local pat=$1 own=$2 what=$3 f
	shift 3
	while read -r f; do
		[[ $f == "$own" ]] || breach "$what in $f (only $own may have it)"
	done < <(grep -rlE --include='*.c' --include='*.h' "$pat" "$@" 2>/dev/null)
}
all=(agent analyzer bench cli collector lib proto report test)
only_in '^struct dt_stitch \{' analyzer/stitch.c "the body of struct dt_stitch" "${all[@]}"
only_in '^struct dt_tasks \{' analyzer/tasks.c "the body of struct dt_tasks" "${all[@]}"
only_in '^struct dt_strtab \{' analyzer/strtab.c "the body of struct dt_strtab" "${all[@]}"
# The product's stores (bench/ingest.c opens LMDB itself: its baseline is raw LMDB).
only_in '^[^*]*mdb_(env_create|env_open|dbi_open)\(' lib/dt_lmdb.c \
	"an LMDB environment or database opened" agent analyzer cli collector lib proto report

if [[ -n $cli ]]; then
	if [[ ! -x $cli ]]; then
		breach "no CLI binary at $cli"
	elif syms=$(nm "$cli" | grep -oE ' [TtDdBb] (dt_stitch_|dt_paths_|dt_taskstore_|dt_tasks_new|ana_)[a-z_]*' |
		sort -u | tr '\n' ' ') && [[ -n $syms ]]; then
		breach "the CLI links daemon code:$syms"
	fi
fi

if [[ ! -f HACKING.md ]]; then
	breach "HACKING.md is missing"
else
	while read -r p; do
		compgen -G "$p" >/dev/null || breach "HACKING.md names $p, which does not exist"
	done < <(grep -oE '`[A-Za-z0-9_.-]+/[A-Za-z0-9_.*/-]*[A-Za-z0-9_*]`' HACKING.md | tr -d '`' |
		grep -vE 'NAME|/$' | sort -u)
fi
exit $bad
