# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# check_core.sh - the check primitives every shell test shares (the lab's checks.sh and the
# packaging tests' pkg_checks.sh source it): one line per check ("ok   - ..." or
# "FAIL - ..."), counted in CHECKS_PASSED and CHECKS_FAILED for the "N passed, M failed"
# line a test ends with. Sourced; not a test itself.

CHECKS_PASSED=0
CHECKS_FAILED=0

ok() {
	CHECKS_PASSED=$((CHECKS_PASSED + 1))
	printf 'ok   - %s\n' "$1"
}

not_ok() {
	CHECKS_FAILED=$((CHECKS_FAILED + 1))
	printf 'FAIL - %s%s\n' "$1" "${2:+ ($2)}"
}

# check DESC CMD...: one check, CMD succeeds; CMD's output is shown on failure.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-400)"
	fi
}

# check_eq DESC GOT WANT
check_eq() {
	if [[ $2 == "$3" ]]; then ok "$1"; else not_ok "$1" "got '$2', want '$3'"; fi
}
