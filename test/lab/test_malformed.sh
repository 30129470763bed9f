#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Malformed messages against the running daemons: each is refused with a counted,
# logged error, and every daemon goes on serving (a traced ping still works after).
#   - collector and analyzer ingest endpoints, and the analyzer's API: dt-poke sends one
#     message of each malformed kind and must get an "invalid" error reply;
#   - agent: a fake collector answers its heartbeats with garbage; the agent counts the
#     bad replies, logs them (rate limited), keeps running and exits cleanly.
set -uo pipefail
DT_LAB=${DT_LAB:-dtmal}
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

checks_trap
trap '((CHECKS_FAILED == 0)) || lab_logs_tail 20; checks_finish; exit $?' EXIT
lab_up || { not_ok "lab up"; exit 1; }
poke="$LAB_BIN/dt-poke"
kinds=(garbage truncated wrong-type newer-version bad-hook bad-cap trailing)

refused() { # NS URL KIND
	local out
	out=$(lab_in "$1" "$poke" send "$2" "$3" 2>&1)
	[[ $out == "error invalid:"* ]] || { echo "    got: $out"; return 1; }
}

for k in "${kinds[@]}"; do
	check "collector refuses a $k batch" refused "$LAB_H1" "$LAB_COLLECTOR_URL" "$k"
	check "analyzer ingest refuses a $k batch" refused "$LAB_MGMT" "$LAB_ANALYZER_URL" "$k"
done
for k in garbage truncated newer-version trailing; do
	check "analyzer API refuses a $k request" refused "$LAB_MGMT" "ipc://$LAB_DIR/api.sock" "$k"
done

# The daemons are still there and a trace still works end to end.
id=$(lab_task_create --src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI")
check "task created after the malformed flood" test -n "$id"
check "task armed" lab_task_wait_armed "$id"
lab_in "$LAB_I1" ping -c 3 -i 0.2 -q "$LAB_I2_IP" >/dev/null
check "traced ping reported after the malformed flood" lab_task_wait_counts "$id" 3

# The agent side: a fake collector that answers with garbage.
ip -n "$LAB_MGMT" link add d0 type veth peer name d1 && ip -n "$LAB_MGMT" link set d0 up
cat >"$LAB_DIR/fake-agent.conf" <<EOC
node = "fake";
collector = "ipc://$LAB_DIR/fake.sock";
spool_dir = "$LAB_DIR/spool-fake";
heartbeat_ms = 50;
ack_timeout_ms = 500;
interfaces = ( { name = "d0"; role = "uplink"; } );
EOC
lab_bg fake-collector "$LAB_MGMT" "$poke" serve "ipc://$LAB_DIR/fake.sock" 5
lab_bg fake-agent "$LAB_MGMT" "$LAB_BIN/dyetrace-agent" -c "$LAB_DIR/fake-agent.conf"
fake_done() { ! lab__alive "$(lab_pid fake-collector)"; }
for _ in $(seq 100); do fake_done && break; sleep 0.1; done
check "fake collector sent its 5 garbage replies" fake_done
check "agent still running after garbage replies" lab__alive "$(lab_pid fake-agent)"
kill -TERM "$(lab_pid fake-agent)"
rc=0
wait "$(lab_pid fake-agent)" || rc=$?
check "agent exits cleanly on SIGTERM (status $rc)" test "$rc" -eq 0
check "agent logged the bad replies" grep -q 'DT-LINK-BADACK' "$LAB_DIR/fake-agent.log"
check "agent counted 5 bad replies" grep -q 'DT-AGENT-EXIT.*bad_replies=5 ' "$LAB_DIR/fake-agent.log"

# Control sets that decode but cannot be right: the first reply arms generation 3, the four
# others carry a generation above 2^48.
sed -e "s|fake.sock|fake2.sock|" -e "s|spool-fake|spool-fake2|" "$LAB_DIR/fake-agent.conf" \
	>"$LAB_DIR/fake-agent2.conf"
lab_bg fake-collector2 "$LAB_MGMT" "$poke" serve "ipc://$LAB_DIR/fake2.sock" 5 controls
lab_bg fake-agent2 "$LAB_MGMT" "$LAB_BIN/dyetrace-agent" -c "$LAB_DIR/fake-agent2.conf"
fake2_done() { ! lab__alive "$(lab_pid fake-collector2)"; }
for _ in $(seq 100); do fake2_done && break; sleep 0.1; done
check "fake collector sent its 5 control sets" fake2_done
check "agent still running after the refused control sets" lab__alive "$(lab_pid fake-agent2)"
kill -TERM "$(lab_pid fake-agent2)"
rc=0
wait "$(lab_pid fake-agent2)" || rc=$?
check "agent exits cleanly on SIGTERM (status $rc)" test "$rc" -eq 0
check "agent counted 4 refused control sets, no bad reply" \
	grep -q 'DT-AGENT-EXIT.*bad_replies=0 controls_refused=4 ' "$LAB_DIR/fake-agent2.log"
check "agent kept generation 3 (DT-LINK-BADCONTROL)" \
	grep -q 'DT-LINK-BADCONTROL: .*keeping generation 3 ' "$LAB_DIR/fake-agent2.log"
n=$(grep -c 'DT-LINK-BADCONTROL' "$LAB_DIR/fake-agent2.log")
check_range "the refusals were logged, rate limited ($n lines for 4)" "$n" 1 3

# Counted and logged on the server side.
for d in agent-h1 agent-h2 collector analyzer; do lab_bg_stop "$d"; done
want=${#kinds[@]}
check "collector counted $want malformed" grep -q "DT-COLL-EXIT.*malformed=$want " "$LAB_DIR/collector.log"
check "collector logged DT-INGEST-MALFORMED" grep -q 'DT-INGEST-MALFORMED' "$LAB_DIR/collector.log"
check "analyzer counted $want malformed batches" grep -q "DT-ANA-EXIT.* malformed=$want " "$LAB_DIR/analyzer.log"
check "analyzer counted 4 malformed API requests" grep -q 'DT-ANA-EXIT.*api_malformed=4 ' "$LAB_DIR/analyzer.log"

