# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# pkg_checks.sh - what the packaging tests (test/pkg/test_*.sh) share: one line per check,
# "N passed, M failed" at the end, exit status 0 only when all passed. Sourced; not a
# test itself. The tests get DT_BIN (the built binaries) and DT_BUILD (the build tree)
# from ctest; run alone they default to build/ in the repository.

PKG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DT_BUILD=${DT_BUILD:-$PKG_REPO/build}
DT_BIN=${DT_BIN:-$DT_BUILD/bin}
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac

# ok, not_ok, check, check_eq and the counters.
. "$PKG_REPO/test/lib/check_core.sh"

# check_match DESC TEXT ERE
check_match() {
	if [[ $2 =~ $3 ]]; then ok "$1"; else not_ok "$1" "'$2' does not match /$3/"; fi
}

# checks_summary: the closing line; returns 0 only when every check passed.
checks_summary() {
	echo "$CHECKS_PASSED passed, $CHECKS_FAILED failed"
	((CHECKS_FAILED == 0 && CHECKS_PASSED > 0))
}

# The project's version, as CMake knows it.
pkg_project_version() {
	sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$DT_BUILD/CMakeCache.txt"
}
