#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_packages.sh - the Debian packages, installed on this machine and removed again
# (issue 14). Builds the four packages from the build tree (cpack, as packaging/setup.sh
# package does), checks their contents, dependencies and conffiles, and that lintian finds
# no error. Installs them with apt-get, then:
#   - dyetrace --version and every daemon's --version from the installed paths;
#   - the system user dyetrace; the analyzer's configuration readable by its group only;
#   - each daemon's --check on its installed configuration, the collector's and the
#     analyzer's as the user dyetrace (as their units run them); a broken copy exits 2;
#   - the manual pages resolve and render without a warning; the bash completion loads;
#   - systemd-analyze verify on the installed units (which also runs man for their
#     Documentation=), the least-privilege settings of each unit, and systemd-analyze
#     security's exposure score of each;
# and removes them with dpkg -r (not purge): nothing of theirs may be left but the conffiles
# (and the system user, which Debian keeps). A purge then removes the conffiles too.
#
# Needs root; it changes this machine's package database while it runs, and refuses to
# run where a dyetrace package is installed (it would replace it). Whatever happens, the
# packages are purged at the end and a user dyetrace it created is deleted.
set -uo pipefail
# shellcheck source=test/pkg/pkg_checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/pkg_checks.sh"

PKGS=(dyetrace dyetrace-agent dyetrace-collector dyetrace-analyzer)
DAEMONS=(agent collector analyzer)
TMP=$(mktemp -d)
chmod 755 "$TMP" # apt's _apt user reads the .debs from here
INSTALLED=0
USER_EXISTED=0
getent passwd dyetrace >/dev/null && USER_EXISTED=1
export DEBIAN_FRONTEND=noninteractive

cleanup() {
	local p left=()
	for p in "${PKGS[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == [ir][ci]* ]] && left+=("$p")
	done
	if ((INSTALLED && ${#left[@]})); then
		echo "# cleanup: purging ${left[*]}"
		dpkg --purge "${left[@]}" >/dev/null 2>&1
	fi
	if ((INSTALLED && !USER_EXISTED)) && getent passwd dyetrace >/dev/null; then
		echo "# cleanup: deleting the system user dyetrace this test's installation created"
		deluser --quiet --system dyetrace >/dev/null 2>&1
		getent group dyetrace >/dev/null && delgroup --quiet --system dyetrace >/dev/null 2>&1
	fi
	rm -rf "$TMP"
}
trap 'cleanup; checks_summary; exit $?' EXIT
trap 'not_ok "interrupted"; exit 130' INT TERM

# --- Preconditions
if ((EUID != 0)); then
	not_ok "runs as root (it installs packages)"
	exit 1
fi
for tool in cpack dpkg-deb apt-get lintian systemd-analyze man runuser setpriv; do
	if ! command -v "$tool" >/dev/null; then
		not_ok "$tool is installed (packaging/setup.sh deps installs it)"
		exit 1
	fi
done
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$DT_BUILD/CMakeCache.txt")
if [[ $prefix != /usr ]]; then
	not_ok "the build tree's install prefix is /usr" "it is '$prefix': reconfigure with -DCMAKE_INSTALL_PREFIX=/usr (packaging/setup.sh build does)"
	exit 1
fi
for p in "${PKGS[@]}"; do
	if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]]; then
		not_ok "no dyetrace package is installed on this machine before the test" \
			"$p is; the test would replace it: dpkg --purge ${PKGS[*]} first"
		exit 1
	fi
done
version=$(pkg_project_version)
arch=$(dpkg --print-architecture)

# --- Build the packages
if cpack --config "$DT_BUILD/CPackConfig.cmake" -B "$TMP/out" >"$TMP/cpack.log" 2>&1; then
	ok "cpack builds the packages"
else
	not_ok "cpack builds the packages" "$(tail -n 5 "$TMP/cpack.log" | tr '\n' ' ')"
	exit 1
fi
debs=()
for p in "${PKGS[@]}"; do
	debs+=("$TMP/out/${p}_${version}_$arch.deb")
	check "package $p: ${p}_${version}_$arch.deb" test -s "${debs[-1]}"
done
# contents DEB: the paths in DEB, one a line, without the leading "." (directories end in /)
contents() { dpkg-deb -c "$1" | awk '{ print substr($6, 2) }'; }
has() { # has DEB PATH...: DEB holds every PATH
	local deb=$1 p missing=()
	shift
	for p in "$@"; do contents "$deb" | grep -qxF "$p" || missing+=("$p"); done
	((${#missing[@]} == 0)) || {
		echo "missing: ${missing[*]}"
		return 1
	}
}
check "dyetrace: the CLI, its manual page, its bash completion" has "${debs[0]}" /usr/bin/dyetrace \
	/usr/share/man/man1/dyetrace.1.gz /usr/share/bash-completion/completions/dyetrace \
	/usr/share/doc/dyetrace/copyright
for i in 1 2 3; do
	d=${DAEMONS[i - 1]} p=${PKGS[i]}
	check "$p: the daemon, its configuration, unit, manual pages, state directory" has "${debs[i]}" \
		"/usr/sbin/$p" "/etc/dyetrace/$d.conf" "/lib/systemd/system/$p.service" \
		"/usr/share/man/man8/$p.8.gz" "/usr/share/man/man5/$p.conf.5.gz" /var/lib/dyetrace/ \
		"/usr/share/doc/$p/copyright"
	check_eq "$p: its configuration is a conffile" \
		"$(dpkg-deb --ctrl-tarfile "${debs[i]}" | tar -xOf - ./conffiles 2>/dev/null)" "/etc/dyetrace/$d.conf"
	deps=$(dpkg-deb -f "${debs[i]}" Depends)
	check_match "$p: Depends on the shared libraries it links (shlibdeps)" "$deps" \
		'libbpf1.*libc6.*libconfig9.*liblmdb0.*libmsgpackc2.*libnng1'
	[[ $d == agent ]] || check_match "$p: Depends on adduser (its postinst adds the user)" "$deps" '(^|, )adduser(,|$)'
done
check_match "dyetrace: Depends on the shared libraries it links" \
	"$(dpkg-deb -f "${debs[0]}" Depends)" 'libc6.*liblmdb0.*libmsgpackc2.*libnng1'
lintian --fail-on error "${debs[@]}" >"$TMP/lintian.log" 2>&1
rc=$?
sed 's/^/# lintian: /' "$TMP/lintian.log" | grep -v 'running with root privileges'
check_eq "lintian: no error (exit status; warnings are listed above)" "$rc:$(grep -c '^E:' "$TMP/lintian.log")" "0:0"

# --- Install
# What existed before: after the removal, the packages' directories that did not must be gone.
for deb in "${debs[@]}"; do contents "$deb"; done | sort -u >"$TMP/paths"
while read -r path; do
	[[ -e $path ]] && echo "$path"
done <"$TMP/paths" >"$TMP/existed"
INSTALLED=1
if apt-get install -y -q --no-install-recommends "${debs[@]}" >"$TMP/apt.log" 2>&1; then
	ok "apt-get installs the four packages"
else
	not_ok "apt-get installs the four packages" "$(tail -n 8 "$TMP/apt.log" | tr '\n' ' ')"
	exit 1
fi
for p in "${PKGS[@]}"; do
	check_eq "$p: installed" "$(dpkg-query -W -f='${Status} ${Version}' "$p")" "install ok installed $version"
done

# --- The installed binaries
out=$(dyetrace --version)
check_eq "dyetrace --version (on PATH: /usr/bin/dyetrace)" "$(command -v dyetrace):$(head -n 1 <<<"$out")" \
	"/usr/bin/dyetrace:dyetrace $version"
check_match "... names the git revision and the libraries" "$out" $'\ngit revision: [^\n]+\nlibraries: libbpf '
for d in "${DAEMONS[@]}"; do
	out=$("/usr/sbin/dyetrace-$d" --version)
	check_eq "/usr/sbin/dyetrace-$d --version" "$(head -n 1 <<<"$out")" "dyetrace-$d $version"
done
check_match "dyetrace-agent --version tags its BPF object" "$(/usr/sbin/dyetrace-agent --version)" \
	$'\nbpf object: sha256 [0-9a-f]{64} \\([0-9]+ bytes\\)$'

# --- The user, the configurations, --check
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd dyetrace)
check "the system user dyetrace exists" getent passwd dyetrace
check_eq "... a system user (uid below 1000), home /var/lib/dyetrace, no login shell" \
	"$((${uid:-1000} < 1000)) $home $shell" "1 /var/lib/dyetrace /usr/sbin/nologin"
check_eq "... with its own group" "$(id -gn dyetrace 2>/dev/null)" dyetrace
check_eq "/etc/dyetrace/analyzer.conf (tenant tokens): root:dyetrace 640" \
	"$(stat -c '%U:%G %a' /etc/dyetrace/analyzer.conf)" "root:dyetrace 640"
for d in agent collector; do
	check_eq "/etc/dyetrace/$d.conf: root:root 644" "$(stat -c '%U:%G %a' "/etc/dyetrace/$d.conf")" "root:root 644"
done
out=$(/usr/sbin/dyetrace-agent --check -c /etc/dyetrace/agent.conf 2>&1)
check_eq "dyetrace-agent --check on the installed configuration (as root, like its unit)" \
	"$?:$out" "0:/etc/dyetrace/agent.conf: configuration OK"
for d in collector analyzer; do
	out=$(runuser -u dyetrace -- "/usr/sbin/dyetrace-$d" --check -c "/etc/dyetrace/$d.conf" 2>&1)
	check_eq "dyetrace-$d --check on the installed configuration, as the user dyetrace (like its unit)" \
		"$?:$out" "0:/etc/dyetrace/$d.conf: configuration OK"
done
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/sbin/dyetrace-analyzer --check \
	-c /etc/dyetrace/analyzer.conf 2>&1)
check_eq "another user cannot read the analyzer's configuration: exit 2" \
	"$?:$out" "2:dyetrace-analyzer: /etc/dyetrace/analyzer.conf: Permission denied"
sed 's/^store_max_mib = /store_max_mb = /' /etc/dyetrace/collector.conf >"$TMP/collector-typo.conf"
line=$(grep -n '^store_max_mb = ' "$TMP/collector-typo.conf" | cut -d: -f1)
out=$(/usr/sbin/dyetrace-collector --check -c "$TMP/collector-typo.conf" 2>&1)
check_eq "--check of a configuration with a typo: exit 2, file:line: what" "$?:$out" \
	"2:dyetrace-collector: $TMP/collector-typo.conf:${line:-?}: unknown setting 'store_max_mb'"

# --- Manual pages and completion
for page in dyetrace.1 dyetrace-agent.8 dyetrace-collector.8 dyetrace-analyzer.8 \
	dyetrace-agent.conf.5 dyetrace-collector.conf.5 dyetrace-analyzer.conf.5; do
	sec=${page##*.} name=${page%.*}
	check_eq "man -w $sec $name" "$(man -w "$sec" "$name" 2>&1)" "/usr/share/man/man$sec/$page.gz"
	warn=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
		"/usr/share/man/man$sec/$page.gz" 2>&1 >/dev/null)
	check_eq "$page renders without a warning (man --warnings)" "$warn" ""
done
check "the installed completion completes 'dyetrace task cr' to create" bash --norc --noprofile -c '
	. /usr/share/bash-completion/completions/dyetrace
	COMP_LINE="dyetrace task cr" COMP_POINT=16 COMP_WORDS=(dyetrace task cr) COMP_CWORD=2
	_dyetrace
	[[ ${COMPREPLY[*]} == create ]]'

# --- The units
units=()
for d in "${DAEMONS[@]}"; do units+=("/lib/systemd/system/dyetrace-$d.service"); done
out=$(systemd-analyze verify "${units[@]}" 2>&1)
check_eq "systemd-analyze verify on the installed units: exit 0, nothing to say" "$?:$out" "0:"
# unit_has UNIT SETTING...: UNIT has each "Key=value" line.
unit_has() {
	local u=/lib/systemd/system/$1.service s missing=()
	shift
	for s in "$@"; do grep -qxF "$s" "$u" || missing+=("$s"); done
	((${#missing[@]} == 0)) || {
		echo "missing: ${missing[*]}"
		return 1
	}
}
check "dyetrace-agent.service: root with only CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYSLOG" \
	unit_has dyetrace-agent "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYSLOG" \
	NoNewPrivileges=yes ProtectSystem=strict StateDirectory=dyetrace/agent-spool \
	"ExecStartPre=/usr/sbin/dyetrace-agent --check -c /etc/dyetrace/agent.conf"
for d in collector analyzer; do
	check "dyetrace-$d.service: user dyetrace, no capability, read-only system but its state" \
		unit_has "dyetrace-$d" User=dyetrace Group=dyetrace CapabilityBoundingSet= AmbientCapabilities= \
		NoNewPrivileges=yes ProtectSystem=strict "StateDirectory=dyetrace/$d" \
		"ExecStartPre=/usr/sbin/dyetrace-$d --check -c /etc/dyetrace/$d.conf"
	# The state directory is the configuration's store.
	check_eq "dyetrace-$d.conf: store is the unit's StateDirectory" \
		"$(sed -nE 's/^store = "([^"]*)";.*/\1/p' "/etc/dyetrace/$d.conf")" "/var/lib/dyetrace/$d"
done
check "dyetrace-analyzer.service: RuntimeDirectory=dyetrace for its API socket" \
	unit_has dyetrace-analyzer RuntimeDirectory=dyetrace
check_eq "analyzer.conf: api is in that runtime directory" \
	"$(sed -nE 's/^api = "([^"]*)";.*/\1/p' /etc/dyetrace/analyzer.conf)" "ipc:///run/dyetrace/api.sock"
check_eq "agent.conf: spool_dir is the agent unit's StateDirectory" \
	"$(sed -nE 's/^spool_dir = "([^"]*)";.*/\1/p' /etc/dyetrace/agent.conf)" "/var/lib/dyetrace/agent-spool"
for d in "${DAEMONS[@]}"; do
	limit=20 # tenths: 2.0 on the scale systemd-analyze prints
	[[ $d == agent ]] && limit=50 # root with BPF, network and mount capabilities
	out=$(systemd-analyze security --offline=true --threshold="$limit" "/lib/systemd/system/dyetrace-$d.service" 2>&1)
	rc=$?
	check_eq "systemd-analyze security: dyetrace-$d.service exposure at most $((limit / 10)).0 (is $(tail -n 1 <<<"$out" | grep -oE '[0-9]+\.[0-9]+ [A-Z]+'))" "$rc" 0
done

# --- Remove (not purge): only the conffiles stay
before_user=$(getent passwd dyetrace)
if dpkg -r "${PKGS[@]}" >"$TMP/remove.log" 2>&1; then
	ok "dpkg -r removes the four packages"
else
	not_ok "dpkg -r removes the four packages" "$(tail -n 5 "$TMP/remove.log" | tr '\n' ' ')"
fi
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)
	if [[ $p == dyetrace ]]; then
		check_match "$p: removed (no conffiles: nothing kept)" "${st:-un }" '^(un|rc|pn) ?$'
	else
		check_eq "$p: removed, its conffile kept (rc)" "${st% }" rc
	fi
done
conffiles=$(printf '/etc/dyetrace/%s.conf\n' "${DAEMONS[@]}")
left=()
while read -r path; do
	path=${path%/}
	[[ -z $path ]] && continue
	grep -qxF "$path" <<<"$conffiles" && continue
	grep -qxF "$path" "$TMP/existed" && continue
	grep -qxF "$path/" "$TMP/existed" && continue
	[[ $path == /etc/dyetrace ]] && continue # holds the conffiles
	[[ -e $path || -L $path ]] && left+=("$path")
done <"$TMP/paths"
check_eq "nothing of the packages is left but the conffiles" "${left[*]}" ""
check_eq "the conffiles are left: /etc/dyetrace holds exactly them" \
	"$(find /etc/dyetrace -mindepth 1 | sort | tr '\n' ' ')" "$(sort <<<"$conffiles" | tr '\n' ' ')"
check_eq "the system user dyetrace stays (Debian keeps system users)" "$(getent passwd dyetrace)" "$before_user"

# --- Purge: the conffiles go too
dpkg --purge "${PKGS[@]}" >"$TMP/purge.log" 2>&1
check_eq "dpkg --purge: exit 0" "$?" 0
check "... /etc/dyetrace is gone" test ! -e /etc/dyetrace
check "... /var/lib/dyetrace is gone" test ! -e /var/lib/dyetrace
