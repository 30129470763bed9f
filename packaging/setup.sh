#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# setup.sh - from a fresh Debian 12 machine to a running dyetrace, in one command.
#
#     sudo packaging/setup.sh demo     install the dependencies, build, run the demo
#     sudo packaging/setup.sh test     install the dependencies, build, run every test
#                                      (warnings are errors; the unit tests run again
#                                      under ASan and UBSan from build-asan/)
#     sudo packaging/setup.sh deps     install the dependencies only (Debian packages)
#          packaging/setup.sh build    configure and build into build/
#     sudo packaging/setup.sh package  install the dependencies, build, make the Debian
#                                      packages in build/packages/ and run lintian on them
#
# Works from any directory. deps skips apt-get entirely when every package is already
# installed. The demo and the tests need root: they load eBPF programs and build network
# namespaces (only inside namespaces they create; nothing is sent anywhere else).
set -euo pipefail

# Tools in sbin (apt-get, ip, bpftool) even where PATH leaves those directories out.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${DT_BUILD_DIR:-$REPO/build}
# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer (test only).
ASAN_BUILD_DIR=${DT_ASAN_BUILD_DIR:-$REPO/build-asan}

# Everything a fresh Debian 12 needs: toolchain and libraries to build, tools the lab uses.
PACKAGES=(
	# build
	build-essential cmake pkg-config clang llvm libclang-rt-14-dev libbpf-dev bpftool
	libnng-dev libmsgpack-dev liblmdb-dev lmdb-utils libconfig-dev libcriterion-dev
	# the style check (style.clang_format: clang-format 14, .clang-format)
	clang-format
	# the lab: namespaces, veth, bridges, VXLAN, NAT and firewall rules (nftables,
	# iptables with the statistic match), captures, traffic, JSON assertions
	iproute2 iptables nftables tcpdump jq ethtool socat iputils-ping procps coreutils curl
	# certificates for the TLS tests (unit.test_tls, lab.test_tls)
	openssl
	# the exports and their checks: svg through Graphviz, pcapng read back by tshark, the
	# html report in headless Chromium, the JSON schema, Prometheus text format
	graphviz tshark chromium python3-jsonschema python3-prometheus-client
	# Debian packages and their test: CPack's dependency list (dpkg-shlibdeps, file),
	# lintian, manual pages (man-db), systemd-analyze verify of the units (the systemd
	# package only; it does not make systemd the init system), the system user (adduser)
	dpkg-dev file lintian man-db systemd adduser
	# the lab's Prometheus servers (test_prometheus runs its own, in the lab's namespaces;
	# on a host booted with systemd the package also enables its own service on :9090)
	prometheus
)

say() { printf '==> %s\n' "$*"; }
die() {
	printf 'setup.sh: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '6,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

need_root() {
	if ((EUID != 0)); then
		die "'$1' needs root (it installs packages, loads eBPF programs and creates network namespaces); run: sudo $0 $1"
	fi
}

do_deps() {
	need_root deps
	local p missing=()
	for p in "${PACKAGES[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		say "dependencies: all ${#PACKAGES[@]} packages already installed"
		return 0
	fi
	say "dependencies: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || die "apt-get update failed"
	# (tshark asks whether non-root users may capture: the default, no, is right here)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
}

# do_build [CMAKE_OPTION...]
do_build() {
	say "build: cmake into $BUILD_DIR"
	# The prefix /usr: where the Debian packages install (packaging/CMakeLists.txt).
	cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr "$@"
	cmake --build "$BUILD_DIR" -j"$(nproc)"
}

# The unit tests and what they need, with ASan and UBSan (DT_SANITIZE), at -O1 (quicker to
# build than -O2, still fast) with the asserts on. Warnings are the main build's to fail:
# gcc warns otherwise at -O1 (-Wformat-truncation sees other value ranges).
do_build_asan() {
	say "build: the unit tests with sanitizers into $ASAN_BUILD_DIR"
	cmake -S "$REPO" -B "$ASAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
		-DDT_SANITIZE=ON
	cmake --build "$ASAN_BUILD_DIR" -j"$(nproc)" --target dt_unit_tests
}

do_demo() {
	need_root demo
	do_deps
	do_build
	say "demo"
	DT_BIN="$BUILD_DIR/bin" bash "$REPO/test/lab/demo.sh"
}

# Warnings fail the build (DT_WERROR); style.clang_format is one of the tests. Both runs
# run to the end, so that one failing never hides the other's result.
do_test() {
	need_root test
	do_deps
	do_build -DDT_WERROR=ON
	do_build_asan
	local rc=0
	say "tests: the unit tests under ASan and UBSan"
	ctest --test-dir "$ASAN_BUILD_DIR" -R '^unit\.' -j"$(nproc)" --output-on-failure || rc=1
	say "tests: style, unit, BPF, lab, packages and fuzz"
	ctest --test-dir "$BUILD_DIR" --output-on-failure || rc=1
	((rc == 0)) || die "tests failed (see above)"
}

do_package() {
	need_root package
	do_deps
	do_build
	say "packages: cpack into $BUILD_DIR/packages"
	rm -f "$BUILD_DIR"/packages/*.deb
	cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$BUILD_DIR/packages" ||
		die "cpack failed (see above)"
	say "lintian (errors fail; warnings are shown)"
	lintian --fail-on error "$BUILD_DIR"/packages/*.deb || die "lintian found errors in the packages"
	say "packages:"
	ls -1 "$BUILD_DIR"/packages/*.deb
}

cd "$REPO"
case ${1:-} in
deps) do_deps ;;
build) do_build ;;
demo) do_demo ;;
test) do_test ;;
package) do_package ;;
-h | --help | help)
	usage
	;;
*)
	usage >&2
	exit 2
	;;
esac
