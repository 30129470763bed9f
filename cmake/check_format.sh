#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check_format.sh [SOURCE_DIR] - fails when a tracked *.c or *.h file differs from what
# clang-format makes of it with the repository's .clang-format (one style for every folder).
# The ctest test style.clang_format runs it; alone: bash cmake/check_format.sh
#
# Prints each file that differs with the number of places, and the command that fixes them;
# `clang-format --dry-run FILE` shows the places. CLANG_FORMAT chooses the binary (default:
# clang-format-14, Debian 12's, else clang-format: other versions format a little otherwise).
# The files are git's (git ls-files); outside a git checkout, every *.c and *.h below
# SOURCE_DIR but build*/.
set -uo pipefail

src=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd) || exit 2
cd "$src" || exit 2

# Files the check leaves alone, with the reason (none today: nothing tracked is generated,
# vmlinux.h and the skeletons are written into the build tree).
exclude=()

cf=${CLANG_FORMAT:-}
if [[ -z $cf ]]; then
	cf=$(command -v clang-format-14 || command -v clang-format) || {
		echo "check_format.sh: clang-format not found (Debian: apt-get install clang-format;" \
			"packaging/setup.sh deps installs it)" >&2
		exit 2
	}
fi
[[ -f .clang-format ]] || {
	echo "check_format.sh: no .clang-format in $src" >&2
	exit 2
}

# git refuses a repository owned by another user (CI runs as root): this one is only read.
if files=$(git -c safe.directory='*' ls-files -- '*.c' '*.h' 2>/dev/null) && [[ -n $files ]]; then
	mapfile -t files <<<"$files"
else
	mapfile -t files < <(find . -path './build*' -prune -o -type f \( -name '*.c' -o -name '*.h' \) \
		-print | sed 's|^\./||' | sort)
fi

checked=()
for f in "${files[@]}"; do
	for x in "${exclude[@]}"; do
		[[ $f == "$x" ]] && continue 2
	done
	[[ -f $f ]] && checked+=("$f") # (a file deleted in the work tree is not checked)
done
((${#checked[@]})) || {
	echo "check_format.sh: no *.c or *.h file in $src" >&2
	exit 2
}

# One run over every file: it reports each place as FILE:LINE:COL: error: ...
out=$("$cf" --style=file --dry-run -Werror "${checked[@]}" 2>&1)
rc=$?
version=$("$cf" --version)
if ((rc == 0)); then
	echo "${#checked[@]} files as .clang-format wants them ($version)"
	exit 0
fi
bad=$(grep -oE '^[^ :]+:[0-9]+:[0-9]+: error: code should be clang-formatted' <<<"$out" |
	cut -d: -f1 | uniq -c | awk '{ printf "%s: %d place%s\n", $2, $1, $1 == 1 ? "" : "s" }')
if [[ -z $bad ]]; then # not a style difference: clang-format itself failed
	printf '%s\n' "$out" >&2
	echo "check_format.sh: $cf failed (exit $rc)" >&2
	exit 2
fi
printf '%s\n' "$bad"
echo "$(wc -l <<<"$bad") of ${#checked[@]} files differ from .clang-format ($version)."
echo "See the places: $cf --dry-run FILE; fix them: $cf -i FILE"
exit 1
