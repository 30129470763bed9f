#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_version.sh - `--version` of every binary (issue 14): the project's version, the git
# revision the binary was built from (a commit of this repository, when it is a git
# checkout), the versions of libbpf, nng, LMDB, msgpack and libconfig that match the
# installed libraries, and for the agent the SHA-256 of its embedded BPF object, equal to
# sha256sum of the dyetrace.bpf.o the build made. --version needs no privilege: it also
# runs as nobody.
set -uo pipefail
# shellcheck source=test/pkg/pkg_checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/pkg_checks.sh"

version=$(pkg_project_version)
[[ -n $version ]] || not_ok "the project's version from $DT_BUILD/CMakeCache.txt"
libbpf=$(pkg-config --modversion libbpf | cut -d. -f1,2)
lmdb=$(pkg-config --modversion lmdb)
msgpack=$(pkg-config --modversion msgpack)
nng=$(dpkg-query -W -f='${Version}' libnng1 2>/dev/null | sed -E 's/^[0-9]+://; s/-[^-]*$//')
libconfig=$(pkg-config --modversion libconfig)
[[ $libconfig == *.*.* ]] || libconfig+=.0 # pkg-config says 1.5, the header 1.5.0
git_checkout=0
command -v git >/dev/null && git -C "$PKG_REPO" rev-parse --git-dir >/dev/null 2>&1 && git_checkout=1

for b in dyetrace dyetrace-agent dyetrace-collector dyetrace-analyzer; do
	out=$("$DT_BIN/$b" --version 2>&1)
	check_eq "$b --version: exit 0" "$?" 0
	mapfile -t l <<<"$out"
	check_eq "$b --version: first line '$b $version'" "${l[0]}" "$b $version"
	check_match "$b --version: a git revision line" "${l[1]:-}" '^git revision: [^ ]+$'
	rev=${l[1]#git revision: }
	if ((git_checkout)); then
		check "$b --version: revision '$rev' is a commit of this repository" \
			git -C "$PKG_REPO" rev-parse -q --verify "${rev%-dirty}^{commit}"
	fi
	check_match "$b --version: the libraries' versions" "${l[2]:-}" \
		'^libraries: libbpf [0-9]+\.[0-9]+, nng [0-9.]+, lmdb [0-9.]+, msgpack [0-9.]+, libconfig [0-9.]+$'
	check_eq "$b --version: the installed libraries' versions" "${l[2]:-}" \
		"libraries: libbpf $libbpf, nng ${nng:-?}, lmdb $lmdb, msgpack $msgpack, libconfig $libconfig"
	if [[ $b == dyetrace-agent ]]; then
		obj=$DT_BUILD/bpf/dyetrace.bpf.o
		sum=$(sha256sum "$obj" | cut -d' ' -f1) size=$(stat -c %s "$obj")
		check_eq "$b --version: the BPF object's tag is sha256sum of ${obj#"$DT_BUILD"/}" \
			"${l[3]:-}" "bpf object: sha256 $sum ($size bytes)"
		check_eq "$b --version: four lines" "${#l[@]}" 4
	else
		check_eq "$b --version: three lines" "${#l[@]}" 3
	fi
	if command -v setpriv >/dev/null; then
		out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$DT_BIN/$b" --version 2>&1)
		check_eq "$b --version as nobody: the same, exit 0" "$?:$out" "0:$(printf '%s\n' "${l[@]}")"
	fi
done
checks_summary
