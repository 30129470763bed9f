#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_completion.sh - the bash completion of the dyetrace CLI (packaging/dyetrace.bash,
# installed as /usr/share/bash-completion/completions/dyetrace). Sources it in a plain
# bash (no bash-completion package needed) and completes a few command lines: commands,
# subcommands, each command's options, option values, file names after -o, and task IDs
# asked from a real analyzer (started here on ipc sockets in a temporary directory).
# The options it offers are exactly the ones `dyetrace --help` documents.
set -uo pipefail
# shellcheck source=test/pkg/pkg_checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/pkg_checks.sh"

COMPLETION=$PKG_REPO/packaging/dyetrace.bash
TMP=$(mktemp -d)
ANALYZER_PID=
cleanup() {
	[[ -n $ANALYZER_PID ]] && kill "$ANALYZER_PID" 2>/dev/null && wait "$ANALYZER_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap 'cleanup; checks_summary; exit $?' EXIT

# complete LINE: what the completion offers at the end of LINE (sorted, one line), as bash
# would call it (COMP_LINE, COMP_POINT, COMP_WORDS, COMP_CWORD), with dyetrace on PATH.
complete_line() {
	PATH=$DT_BIN:$PATH bash --norc --noprofile -c '
		. "$1" || exit 1
		COMP_LINE=$2 COMP_POINT=${#2}
		read -ra COMP_WORDS <<<"$2"
		[[ $2 =~ [[:blank:]]$ ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_dyetrace
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " " | sed "s/ $//"
	' _ "$COMPLETION" "$1"
}

# expect LINE WANT: the completion of LINE is WANT (words in any order).
expect() {
	local got want
	got=$(complete_line "$1")
	want=$(tr ' ' '\n' <<<"$2" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')
	check_eq "complete '$1'" "$got" "$want"
}

check "the completion script loads in a plain bash and registers for dyetrace" \
	bash --norc --noprofile -c '. "$1" && complete -p dyetrace | grep -q -- "-F _dyetrace"' _ "$COMPLETION"

expect 'dyetrace ' 'task report help -a --analyzer -j --json -t --timeout --token -h --help --version'
expect 'dyetrace ta' 'task'
expect 'dyetrace task ' 'create list show cancel watch help'
expect 'dyetrace --json task c' 'create cancel'
expect 'dyetrace task create --pr' '--proto'
expect 'dyetrace task create --proto ' 'tcp udp icmp'
expect 'dyetrace -a ipc:///run/x.sock task create --direction r' 'request reply'
expect 'dyetrace task create --src 10.0.0.1 --i' ''
expect 'dyetrace task watch --i' '--interval'
expect 'dyetrace report 1 --format ' 'text json dot svg html pcapng'
expect 'dyetrace report --packets ' ''
touch "$TMP/report-1.html" "$TMP/report-1.svg"
expect "dyetrace report 1 -o $TMP/report-1." "$TMP/report-1.html $TMP/report-1.svg"

# The options offered anywhere are the ones the help documents (OPTIONS section).
help=$("$DT_BIN/dyetrace" --help)
documented=$(sed -n '/^OPTIONS$/,/^[A-Z]/p' <<<"$help" | grep -oE '^ +(-[a-z], )?--[a-z]+' |
	tr -d ' ,' | sed -E 's/^(-[a-z])(--)/\1\n\2/' | sort -u | tr '\n' ' ')
offered=$(for l in 'dyetrace -' 'dyetrace task create -' 'dyetrace task list -' \
	'dyetrace task show -' 'dyetrace task cancel -' 'dyetrace task watch -' 'dyetrace report -'; do
	complete_line "$l" | tr ' ' '\n'
	echo
done | sed '/^$/d' | sort -u | tr '\n' ' ')
check_eq "the options offered are the options of dyetrace --help" "$offered" "$documented"
commands=$(sed -n '/^COMMANDS$/,/^[A-Z]/p' <<<"$help" | grep -oE '^    (task [a-z]+|report)' |
	awk '{ print $NF }' | sort -u | tr '\n' ' ')
check_eq "the commands offered are the commands of dyetrace --help" \
	"$( (complete_line 'dyetrace task ' | tr ' ' '\n' | grep -v '^help$'; echo report) | sort -u | tr '\n' ' ')" \
	"$commands"

# Task IDs come from the analyzer, with the -a and --token of the command line.
token=completion-test-token-0123456789
cat >"$TMP/analyzer.conf" <<EOC
listen = "ipc://$TMP/ingest.sock";
api = "ipc://$TMP/api.sock";
store = "$TMP/store";
tenants = ( { name = "t"; token = "$token"; } );
EOC
"$DT_BIN/dyetrace-analyzer" -q -c "$TMP/analyzer.conf" 2>"$TMP/analyzer.log" &
ANALYZER_PID=$!
for _ in $(seq 100); do [[ -S $TMP/api.sock ]] && break; sleep 0.05; done
cli=("$DT_BIN/dyetrace" -a "ipc://$TMP/api.sock" --token "$token")
for i in 1 2; do
	check "create task $i (for its ID)" "${cli[@]}" task create --src "10.9.0.$i" --dst 10.9.0.100 \
		--proto icmp --vni 100
done
expect "dyetrace -a ipc://$TMP/api.sock --token $token task show " '1 2'
expect "dyetrace -a ipc://$TMP/api.sock --token $token report " '1 2'
expect "dyetrace -a ipc://$TMP/api.sock --token wrong-token-0123456789 task show " ''
expect "dyetrace -a ipc://$TMP/nothing.sock --token $token task cancel " ''
