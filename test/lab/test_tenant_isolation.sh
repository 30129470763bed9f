#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_tenant_isolation.sh - tenants of the task service (issue 4) on the lab, with the
# tenants t1, t2 and t3 besides the default tenant "lab":
#
#   - a tenant shows, reports, watches and cancels its own tasks; another tenant's task
#     answers "not found" (exit 3) exactly like a task that does not exist, and a cancel
#     by another tenant leaves the task armed and coloring;
#   - task list shows only the tenant's own tasks;
#   - a wrong, unknown or missing token is refused (exit 4), for every command, and the
#     refusal never echoes the token; no token ever appears in the analyzer's log;
#   - a six-tuple that overlaps another tenant's active task (the same flow, a flow its
#     any-port key covers, or a reply key over its request key) is refused (exit 4)
#     without naming the other task or its tenant; once that task is cancelled, the flow
#     is free for everyone;
#   - samples of another tenant's ended task (colored before its nodes disarmed it) do
#     not show in a tenant's report (its "unmatched" count);
#   - a tenant at its quota of active tasks (tasks_max_per_tenant, 4 here) is refused
#     more (exit 4, naming the maximum) while other tenants still create theirs.
#
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtti" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtti}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

# A small quota of active tasks per tenant, to show that one tenant's quota is its own.
QUOTA=4
LAB_OPT_LIMITS=${LAB_LIMITS_DEFAULT/tasks_max_per_tenant = 4096/tasks_max_per_tenant = $QUOTA}

checks_lab_up "lab up (overlay, daemons, tenants lab, t1, t2, t3)" \
	"lab up: overlay, daemons, tenants lab, t1, t2, t3" --tenants 3

# as TENANT ARGS...: run (OUT, ERR, RC) the CLI as TENANT.
as() {
	local t=$1
	shift
	run lab_cli_as "$t" "$@"
}

# check_refused DESC: the last run was refused for its token (exit 4); counts the refusals
# the analyzer answered ("unknown tenant token"), to match its counter at the end.
REFUSED=0
check_refused() {
	check_rc "$1" "$EXIT_REFUSED"
	[[ $RC == "$EXIT_REFUSED" && $ERR == *"unknown tenant token"* ]] && REFUSED=$((REFUSED + 1))
	return 0
}

# ids_of: the task ids in OUT (a --json task list), sorted, space separated.
ids_of() { jq -r '.tasks[].id' <<<"$OUT" 2>/dev/null | sort -n | tr '\n' ' ' | sed 's/ $//'; }

# names_other MSG ID TENANT: true when MSG names task ID or TENANT.
names_other() {
	grep -qiE "(task|id|#|number)[ :#]*$2([^0-9.]|$)" <<<"$1" || grep -qw -- "$3" <<<"$1"
}

# ---------------------------------------------------------------------------------------
# Each tenant its own task.
as t1 --json task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI"
check_rc "t1 creates task A (icmp i1 -> i2, any echo id)" 0
A=$(jq -r '.id // empty' <<<"$OUT" 2>/dev/null)
as t2 --json task create --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --sport 40900 --dport 5900 --proto udp --vni "$LAB_VNI"
check_rc "t2 creates task B (udp i2:40900 -> i1:5900)" 0
B=$(jq -r '.id // empty' <<<"$OUT" 2>/dev/null)
if [[ -z $A || -z $B ]]; then
	not_ok "both tasks have an id" "A '$A', B '$B'"
	exit 1
fi
check_eq "task A belongs to t1, task B to t2" \
	"$(lab_cli_as t1 --json task show "$A" | jq -r .tenant) $(lab_cli_as t2 --json task show "$B" | jq -r .tenant)" "t1 t2"
check "t1's task A armed" lab_as t1 lab_task_wait_armed "$A"
check "t2's task B armed" lab_as t2 lab_task_wait_armed "$B"

# ---------------------------------------------------------------------------------------
# Another tenant's task does not exist for t2 (and for the default tenant).
NX=$((A > B ? A + 1000 : B + 1000))
as t2 --json task show "$NX"
check_rc "t2: task show of a task that does not exist: not found" "$EXIT_NOT_FOUND"
nx_answer=$(jq -c '.error | .message |= gsub("\\b'"$NX"'\\b"; "ID")' <<<"$OUT" 2>&1)
for cmd in "task show" "report" "task watch" "task cancel"; do
	# shellcheck disable=SC2086 # cmd is two words on purpose
	as t2 --json -t 3000 $cmd "$A"
	check_rc "t2: $cmd of t1's task A: not found (exit 3)" "$EXIT_NOT_FOUND"
	got=$(jq -c '.error | .message |= gsub("\\b'"$A"'\\b"; "ID")' <<<"$OUT" 2>&1)
	check_eq "t2: $cmd of A answers exactly like a task that does not exist" "$got" "$nx_answer"
done
as lab --json task show "$A"
check_rc "the default tenant: task show of t1's task A: not found" "$EXIT_NOT_FOUND"
as t1 --json task show "$B"
check_rc "t1: task show of t2's task B: not found" "$EXIT_NOT_FOUND"
as t1 --json task cancel "$B"
check_rc "t1: task cancel of t2's task B: not found" "$EXIT_NOT_FOUND"

# The failed cancels changed nothing: A is still armed and colors.
as t1 --json task show "$A"
check_eq "t1's task A is still active after t2's cancel" "$(jq -r '.state | IN("armed", "running")' <<<"$OUT" 2>&1)" true
# B's datagrams need a receiver: an ICMP "port unreachable" from i1 to i2 would rightly
# belong to A (every ICMP packet from i1 to i2).
lab_bg udp-sink "$LAB_I1" socat -u UDP-RECV:5900,reuseaddr /dev/null
check "10 pings i1 -> i2" lab_in "$LAB_I1" ping -c 10 -i 0.05 -W 1 -q "$LAB_I2_IP"
check_eq "3 datagrams i2:40900 -> i1:5900" "$(lab_udp_send "$LAB_I2" 20 "40900:$LAB_I1_IP:5900:3")" 3
check "t1's task A colored and delivered the 10 pings" lab_as t1 lab_task_wait_counts "$A" 10 10
as t1 --json report "$A"
check_rc "t1: report of its task A" 0
printf '%s\n' "$OUT" >"$LAB_DIR/report-A.json"
jq_true "$LAB_DIR/report-A.json" "t1: A's report holds its own 10 echo requests i1 -> i2 and nothing else" \
	'if (.packets | length == 10) and all(.packets[]; .flow.src == $s and .flow.dst == $d
		and .flow.proto == "icmp" and .direction == "request") then true
	 else [.packets[] | "\(.flow.proto) \(.flow.src):\(.flow.sport) -> \(.flow.dst):\(.flow.dport) \(.direction)"]
		| group_by(.) | map("\(length)x \(.[0])") | join(", ") end' \
	--arg s "$LAB_I1_IP" --arg d "$LAB_I2_IP"
lab_as t2 lab_task_wait_counts "$B" 3 10
as t2 --json report "$B"
printf '%s\n' "$OUT" >"$LAB_DIR/report-B.json"
jq_true "$LAB_DIR/report-B.json" "t2: B's report holds its own 3 datagrams and nothing else" \
	'if (.packets | length == 3) and all(.packets[]; .flow.src == $s and .flow.dst == $d
		and .flow.sport == 40900 and .flow.dport == 5900 and .flow.proto == "udp") then true
	 else [.packets[] | "\(.flow.proto) \(.flow.src):\(.flow.sport) -> \(.flow.dst):\(.flow.dport) \(.direction)"]
		| group_by(.) | map("\(length)x \(.[0])") | join(", ") end' \
	--arg s "$LAB_I2_IP" --arg d "$LAB_I1_IP"

# ---------------------------------------------------------------------------------------
# Lists.
as t1 --json task list
check_eq "t1: task list shows only A (exit status: ids)" "$RC: $(ids_of)" "0: $A"
as t2 --json task list
check_eq "t2: task list shows only B (exit status: ids)" "$RC: $(ids_of)" "0: $B"
as t3 --json task list
check_eq "t3: task list is empty (exit status: ids)" "$RC: $(ids_of)" "0: "
as lab --json task list
check_eq "the default tenant: task list is empty (exit status: ids)" "$RC: $(ids_of)" "0: "

# ---------------------------------------------------------------------------------------
# Tokens.
bad_tokens=("wrong-token-0123456789abcdef" "$(lab_tenant_token t1)x" "t1" "x")
for tok in "${bad_tokens[@]}"; do
	for cmd in "task list" "task show $A" "report $A" "task cancel $A"; do
		# shellcheck disable=SC2086 # cmd is words on purpose
		run lab_cli --token "$tok" $cmd
		check_refused "token '$tok': $cmd refused (exit 4)"
	done
	run lab_cli --token "$tok" task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 40901 --dport 5901 \
		--proto udp --vni "$LAB_VNI"
	check_refused "token '$tok': task create refused (exit 4)"
	if [[ ${#tok} -ge 4 && "$OUT$ERR" == *"$tok"* ]]; then
		not_ok "token '$tok': the refusal does not echo the token" "$ERR"
	else
		ok "token '$tok': the refusal does not echo the token ($ERR)"
	fi
done
run env DYETRACE_TOKEN=wrong-token-0123456789abcdef "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" task list
check_refused "a wrong token in DYETRACE_TOKEN: refused (exit 4)"
run lab_cli_notoken task list
check_refused "no token at all: task list refused (exit 4)"
run lab_cli_notoken task show "$A"
check_refused "no token at all: task show refused (exit 4)"
run lab_cli --token "$(lab_tenant_token t2)" --json task show "$B"
check_rc "--token overrides DYETRACE_TOKEN (t2's token shows B)" 0
as t1 --json task show "$A"
check_eq "t1's task A is untouched by the refused requests" "$(jq -r '.state | IN("armed", "running")' <<<"$OUT" 2>&1)" true

# ---------------------------------------------------------------------------------------
# Overlaps across tenants: refused without naming the other task or tenant.
overlap() { # DESC TENANT OWNER-ID OWNER-TENANT ARGS...
	local desc=$1 t=$2 oid=$3 owner=$4
	shift 4
	as "$t" task create "$@" --vni "$LAB_VNI"
	check_rc "$t: $desc: refused (exit 4)" "$EXIT_REFUSED"
	if names_other "$ERR$OUT" "$oid" "$owner"; then
		not_ok "$t: $desc: the refusal names neither task $oid nor $owner" "$ERR"
	else
		ok "$t: $desc: the refusal names neither task $oid nor $owner ($ERR)"
	fi
}
overlap "A's very flow (icmp i1 -> i2)" t2 "$A" t1 --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp
overlap "one echo id of A's any-id flow" t3 "$A" t1 --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 7 --proto icmp
overlap "icmp i2 -> i1 both directions (its reply key is A's flow)" t3 "$A" t1 --src "$LAB_I2_IP" \
	--dst "$LAB_I1_IP" --proto icmp --direction both
overlap "any port over B's flow (udp i2 -> i1)" t1 "$B" t2 --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --proto udp
overlap "B's exact six-tuple" t3 "$B" t2 --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --sport 40900 --dport 5900 --proto udp
as t3 --json task create --src "$LAB_I2_IP" --dst "$LAB_I1_IP" --sport 40902 --dport 5900 --proto udp --vni "$LAB_VNI"
check_rc "t3: a neighbouring flow (udp i2:40902 -> i1:5900) is accepted" 0
C=$(jq -r '.id // empty' <<<"$OUT" 2>/dev/null)
[[ -n $C ]] && lab_cli_as t3 task cancel "$C" >/dev/null 2>&1

# Another tenant's leftovers do not show in t1's report: t2 cancels B and its flow goes on
# at once (the nodes disarm B with their next control exchange, so a few of these packets
# are still colored and sampled, attributed to no task).
as t1 --json report "$A"
u0=$(jq -r '.unmatched' <<<"$OUT" 2>/dev/null)
as t2 --json task cancel "$B"
check_rc "t2 cancels its task B" 0
check_eq "20 datagrams on B's flow right after its cancel" "$(lab_udp_send "$LAB_I2" 20 "40900:$LAB_I1_IP:5900:20")" 20
sleep 2.5 # the analysis window (1 s by default) passes: held samples are let go
as t1 --json report "$A"
u1=$(jq -r '.unmatched' <<<"$OUT" 2>/dev/null)
check_eq "t1's report of A does not count t2's leftover samples (unmatched before, after)" "$u0 $u1" "0 0"

# Once A is cancelled by its tenant, its flow is free for another.
as t1 --json task cancel "$A"
check_rc "t1 cancels its task A" 0
as t2 --json task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI"
check_rc "t2: A's flow is accepted once A is cancelled" 0
D=$(jq -r '.id // empty' <<<"$OUT" 2>/dev/null)
[[ -n $D ]] && lab_cli_as t2 task cancel "$D" >/dev/null 2>&1
as t2 --json task show "$A"
check_rc "t2: t1's cancelled task A is still not found" "$EXIT_NOT_FOUND"
as t1 --json report "$A"
check_rc "t1: the report of its cancelled task A" 0

# ---------------------------------------------------------------------------------------
# Quotas are per tenant.
quota_ids=()
for ((q = 0; q < QUOTA; q++)); do
	as t3 --json task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport $((41000 + q)) --dport 6000 \
		--proto udp --vni "$LAB_VNI"
	[[ $RC == 0 ]] && quota_ids+=("$(jq -r .id <<<"$OUT")")
done
check_eq "t3 creates $QUOTA tasks (its quota)" "${#quota_ids[@]}" "$QUOTA"
as t3 task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41100 --dport 6000 --proto udp --vni "$LAB_VNI"
check_rc "t3: one more active task is refused (exit 4)" "$EXIT_REFUSED"
check "t3: the refusal names the maximum ($QUOTA)" grep -qw "$QUOTA" <<<"$ERR"
echo "# $ERR"
as t2 --json task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41101 --dport 6000 --proto udp --vni "$LAB_VNI"
check_rc "t2 still creates a task while t3 is at its quota" 0
E=$(jq -r '.id // empty' <<<"$OUT" 2>/dev/null)
[[ -n $E ]] && lab_cli_as t2 task cancel "$E" >/dev/null 2>&1
lab_cli_as t3 task cancel "${quota_ids[0]:-0}" >/dev/null 2>&1
as t3 --json task create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --sport 41100 --dport 6000 --proto udp --vni "$LAB_VNI"
check_rc "t3: after cancelling one, it may create another" 0

# ---------------------------------------------------------------------------------------
# The API socket is for the analyzer's group only (root's here, no api_group): mode 0660.
# Tokens stay required on top. The lab's directory is opened for the check, so that only
# the socket's own mode keeps a user out, and the CLI is run from a copy there: the
# checkout's own directories may be closed to other users (a mktemp -d clone is 0700).
check_eq "the API socket has mode 0660" "$(stat -c %a "$LAB_DIR/api.sock")" 660
cli_as_nobody() { # cli_as_nobody SETPRIV-GROUP-OPTION: task list as uid 65534 with t1's token
	setpriv --reuid=65534 --regid=65534 "$1" env DYETRACE_TOKEN="$(lab_tenant_token t1)" \
		"$LAB_DIR/dyetrace-cli" -a "ipc://$LAB_DIR/api.sock" task list
}
dir_mode=$(stat -c %a "$LAB_DIR")
chmod 0711 "$LAB_DIR"
install -m 0755 "$LAB_BIN/dyetrace" "$LAB_DIR/dyetrace-cli"
OUT=$(cli_as_nobody --clear-groups 2>&1)
RC=$?
check "a user outside the group cannot connect: permission denied (rc $RC: ${OUT%%$'\n'*})" \
	grep -qi "permission denied" <<<"$OUT"
OUT=$(cli_as_nobody --groups=0 2>&1)
RC=$?
check "a user in the group connects with a token (rc $RC)" test "$RC" -eq 0
chmod "$dir_mode" "$LAB_DIR"

# No token in the analyzer's log.
leaked=()
for t in lab t1 t2 t3; do
	grep -qF -- "$(lab_tenant_token "$t")" "$LAB_DIR"/analyzer*.log && leaked+=("$t")
done
grep -qF -- "wrong-token-0123456789abcdef" "$LAB_DIR"/analyzer*.log && leaked+=("the wrong token")
check_eq "no token (good or wrong) appears in the analyzer's log" "${leaked[*]}" ""
# The refusals were counted and logged, rate limited.
if lab_analyzer_stop TERM; then ok "the analyzer stops cleanly (SIGTERM)"; else not_ok "the analyzer stops cleanly (SIGTERM)"; fi
check_eq "the analyzer counted the $REFUSED refused requests (api_refused_token at exit)" \
	"$(exit_counter "$LAB_DIR/analyzer.log" DT-ANA-EXIT api_refused_token)" "$REFUSED"
n=$(grep -c 'DT-ANA-AUTH' "$LAB_DIR/analyzer.log")
check_range "the refusals were logged, rate limited ($n DT-ANA-AUTH lines for $REFUSED)" "$n" 1 $((REFUSED - 1))

checks_teardown_clean
