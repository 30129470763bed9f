#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs and Python are single-quoted on purpose
# SPDX-License-Identifier: MIT
#
# test_exports.sh - `dyetrace report --format json|dot|svg|html|pcapng` on a real trace with
# a real drop. As in test_loss_firewall.sh, an nftables rule in h2's bridge drops the echo
# requests i1 -> i2 (NETFILTER_DROP); then the rule goes and more pings pass, both ways
# (the task traces both directions). The report of that task is exported in every format
# and each export is read back by the tool its users would read it with:
#
#   json    validates against report/report.schema.json (Draft 2020-12, Debian's
#           python3-jsonschema), also with every object closed (the schema names every
#           key), and every number of the schema has a unit; the error document too;
#   dot     Graphviz reads it; a cluster per node;
#   svg     drawn by dot, well-formed XML naming the drop place and its reason; without
#           dot on PATH the CLI exits 7 with the sentence that says what to install;
#   html    headless Chromium loads it with no console error and shows the verdict;
#           a screenshot is saved; without dot it still draws the path;
#   pcapng  tshark reads one packet per hop, one interface per (node, ifname, hook), the
#           task in every comment and the reason in the comments of the drops; the CLI
#           refuses to write it to a terminal (exit 2).
#
# The exports and the screenshot are kept in $DT_ARTIFACTS (default <repo>/build/artifacts).
# One line per check, "N passed, M failed" at the end; exit status 0 only when all pass.
# Namespace prefix "dtex" unless DT_LAB says otherwise.
set -uo pipefail

: "${DT_LAB:=dtex}"
export DT_LAB
# shellcheck source=test/lab/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
# shellcheck source=test/lab/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

WINDOW_MS=${DT_LAB_WINDOW_MS:-500}
PINGS=10 # dropped by the rule
AFTER=5  # delivered, with their replies, once the rule is gone
PY=/usr/bin/python3 # Debian's: it has python3-jsonschema
SCHEMA=$LAB_REPO/report/report.schema.json
ART=${DT_ARTIFACTS:-$LAB_REPO/build/artifacts}
EXP=$ART/exports-report # .json .dot .svg .html .png .pcapng

checks_trap
for tool in dot tshark chromium "$PY"; do
	check "tool: $tool" command -v "$tool"
done
check "artifacts dir $ART" mkdir -p "$ART"
rm -f "$EXP".* "$ART"/exports-*
if ! lab_up --window-ms "$WINDOW_MS"; then
	not_ok "lab up (overlay, daemons, window_ms $WINDOW_MS)"
	exit 1
fi
ok "lab up: overlay, analyzer (window_ms $WINDOW_MS), collector, agents h1 and h2"

checks_task task "create the ping task (icmp i1 <-> i2, both directions)" "task armed" \
	--src "$LAB_I1_IP" --dst "$LAB_I2_IP" --proto icmp --vni "$LAB_VNI" --direction both

check "h2: nftables bridge rule drops echo requests i1 -> i2" \
	nft_bridge_drop "$LAB_H2" dtlab_fw forward "ip saddr $LAB_I1_IP ip daddr $LAB_I2_IP icmp type echo-request"
lab_in "$LAB_I1" ping -c "$PINGS" -i 0.05 -W 1 -q "$LAB_I2_IP" >/dev/null 2>&1
check_eq "h2's rule counted $PINGS drops" "$(nft_counter "$LAB_H2" bridge dtlab_fw forward)" "$PINGS"
check "h2: remove the rule" lab_in "$LAB_H2" nft delete table bridge dtlab_fw
check "$AFTER more pings, all answered" lab_in "$LAB_I1" ping -c "$AFTER" -i 0.05 -W 1 -q "$LAB_I2_IP"
check "every packet judged (window passed)" lab_task_wait_judged "$task" $((PINGS + 2 * AFTER))

# ---------------------------------------------------------------------------------------
# json

run lab_cli report --format json -o "$EXP.json" "$task"
check_rc "json: written to a file" 0
r=$EXP.json
check_verdict "$r" json $((PINGS + 2 * AFTER)) $((2 * AFTER)) "$PINGS" 0
jq_true "$r" "json: schema dyetrace.report, version 2" \
	'.schema == "dyetrace.report" and .schema_version == 2'
jq_true "$r" "json: the drop hop with reason NETFILTER_DROP" \
	'.verdict.reason == "NETFILTER_DROP" and .verdict.at.hook == "drop" and .verdict.at.node == "h2"'
jq_true "$r" "json: two hosts, no copies: each path a chain, every hop after the one before" \
	'all(.packets[]; .copies == 0 and .destination_known and
		all(.hops | to_entries[]; .value.branch == "destination" and
			.value.parent == (if .key == 0 then null else .key - 1 end))) and .copies == []'
jq_true "$r" "json: every hop has cap_len, a byte count" \
	'all(.packets[].hops[]; .cap_len | type == "number" and . >= 0 and . <= 65535)'
run lab_cli --json report "$task"
check_eq "json: --json is --format json" "$OUT" "$(cat "$r")"

# schema_check FILE: FILE validates against the schema as written, and with every object
# closed (additionalProperties false wherever the schema lists properties and says
# nothing else), so that no key goes undocumented.
schema_check() {
	"$PY" - "$SCHEMA" "$1" <<-'EOF'
		import copy, json, sys
		from jsonschema import Draft202012Validator
		schema = json.load(open(sys.argv[1]))
		doc = json.load(open(sys.argv[2]))
		Draft202012Validator.check_schema(schema)
		Draft202012Validator(schema).validate(doc)
		def close(s):
		    if isinstance(s, dict):
		        if "properties" in s and "additionalProperties" not in s:
		            s["additionalProperties"] = False
		        for v in s.values():
		            close(v)
		    elif isinstance(s, list):
		        for v in s:
		            close(v)
		strict = copy.deepcopy(schema)
		close(strict)
		errors = sorted(Draft202012Validator(strict).iter_errors(doc), key=str)
		for e in errors[:5]:
		    print("closed schema:", e.message, "at", list(e.absolute_path))
		sys.exit(1 if errors else 0)
	EOF
}
check "json: validates against report.schema.json (Draft 2020-12, also closed)" schema_check "$r"

# Every integer or number the schema describes has a unit: in its name, or in x-unit.
units_check() {
	"$PY" - "$SCHEMA" <<-'EOF'
		import json, sys
		schema = json.load(open(sys.argv[1]))
		bad = []
		def numeric(s):
		    t = s.get("type")
		    t = t if isinstance(t, list) else [t]
		    return "integer" in t or "number" in t
		def walk(s, where):
		    if isinstance(s, dict):
		        for name, p in s.get("properties", {}).items():
		            if numeric(p) and not name.endswith(("_ns", "_ms", "_s", "_ns2")) \
		                    and "x-unit" not in p:
		                bad.append(where + "." + name)
		        for k, v in s.items():
		            walk(v, where + "/" + k)
		    elif isinstance(s, list):
		        for v in s:
		            walk(v, where)
		walk(schema, "#")
		print("numbers without a unit:", bad)
		sys.exit(1 if bad else 0)
	EOF
}
check "schema: every number has its unit (name _ns/_ms/_s or x-unit)" units_check

run lab_cli --json report 999999
check_rc "json: a task that does not exist: exit 3" 3
printf '%s\n' "$OUT" >"$ART/exports-error.json"
check "json: the error document validates against the schema too" schema_check "$ART/exports-error.json"

# What the other formats must show, from the JSON.
drop_if=$(jq_val "$r" '.verdict.at.ifname')
hops_total=$(jq_val "$r" '[.packets[].hops[]] | length')
places=$(jq_val "$r" '[.packets[].hops[] | "\(.node)/\(.ifname)/\(.hook)"] | unique | length')
dropped=$(jq_val "$r" '[.packets[] | select(.fate == "dropped")] | length')
sentence=$(jq_val "$r" '.verdict.sentence')
echo "# verdict: $sentence; drop at h2/$drop_if; $hops_total hops at $places places"

# ---------------------------------------------------------------------------------------
# dot and svg

run lab_cli report --format dot -o "$EXP.dot" "$task"
check_rc "dot: written" 0
check "dot: Graphviz reads it" dot -Tsvg -o /dev/null "$EXP.dot"
check "dot: one cluster per node" grep -q '^	subgraph "cluster_h2" {' "$EXP.dot"
check "dot: the drop place is red and names its reason" \
	grep -qE "\[label=\"DROP at $drop_if\\\\nreason NETFILTER_DROP\\\\n$PINGS packets dropped.*color=\"#c62828\"" "$EXP.dot"
check "dot: replies are dashed" grep -q 'label="reply: .*style=dashed' "$EXP.dot"

run lab_cli report --format svg -o "$EXP.svg" "$task"
check_rc "svg: drawn by dot" 0
svg_check() {
	"$PY" - "$EXP.svg" "$drop_if" <<-'EOF'
		import sys, xml.etree.ElementTree as ET
		root = ET.parse(sys.argv[1]).getroot()
		assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
		texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
		assert "DROP at " + sys.argv[2] in texts, texts
		assert "reason NETFILTER_DROP" in texts, texts
		titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
		assert "cluster_h1" in titles and "cluster_h2" in titles, titles
	EOF
}
check "svg: well-formed XML naming the drop place (DROP at $drop_if) and NETFILTER_DROP" svg_check

nodot=$(mktemp -d) # a PATH without dot
run env PATH="$nodot" "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" --token "$LAB_TOKEN" \
	report --format svg -o "$ART/exports-nodot.svg" "$task"
check_rc "svg without dot: exit 7" 7
check "svg without dot: says what to install" grep -qF \
	"svg needs Graphviz's dot (apt-get install graphviz); use --format dot and render it elsewhere" <<<"$ERR"
check "svg without dot: no file written" test ! -e "$ART/exports-nodot.svg"

# ---------------------------------------------------------------------------------------
# html

run lab_cli report --format html -o "$EXP.html" "$task"
check_rc "html: written" 0
check "html: the path is dot's SVG, inline, without its XML prolog" \
	bash -c "grep -q '^<svg width=' '$EXP.html' && ! grep -q '<?xml' '$EXP.html'"
check "html: nothing to fetch or run (no script, link, import, url(), src or href)" \
	bash -c "! grep -Eiq '<script|<link|@import|url\\(|(src|href) *=' '$EXP.html'"
run env PATH="$nodot" "$LAB_BIN/dyetrace" -a "ipc://$LAB_DIR/api.sock" --token "$LAB_TOKEN" \
	report --format html -o "$ART/exports-nodot.html" "$task"
check_rc "html without dot: written anyway" 0
check "html without dot: the path drawn as boxes, the drop in red" \
	grep -q "<div class=\"place drop\">DROP at $drop_if: reason NETFILTER_DROP" "$ART/exports-nodot.html"
check "html without dot: no SVG" bash -c "! grep -q '<svg' '$ART/exports-nodot.html'"
rmdir "$nodot"

# chrome FILE ARGS...: headless Chromium on FILE, a fresh profile, no network of its own;
# its stdout in $LAB_DIR/chrome.out, its log in $LAB_DIR/chrome.err.
chrome() {
	local file=$1 profile rc
	shift
	profile=$(mktemp -d)
	timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" --enable-logging=stderr --v=0 "$@" "file://$file" \
		>"$LAB_DIR/chrome.out" 2>"$LAB_DIR/chrome.err"
	rc=$?
	rm -rf "$profile"
	return $rc
}
# The console errors of the last chrome run (uncaught exceptions, console messages,
# failed loads).
chrome_errors() {
	grep -E 'Uncaught|:CONSOLE|ERR_|Failed to load' "$LAB_DIR/chrome.err"
}
dom_has_verdict() {
	"$PY" -c 'import html, sys; d = open(sys.argv[1]).read(); s = html.escape(sys.argv[2], quote=False)
sys.exit(0 if "<span id=\"verdict-sentence\">" + s + "</span>" in d else 1)' "$LAB_DIR/chrome.out" "$sentence"
}
png_check() {
	"$PY" - "$1" <<-'EOF'
		import struct, sys, zlib
		data = open(sys.argv[1], "rb").read()
		assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
		w, h = struct.unpack(">II", data[16:24])
		assert (w, h) == (1280, 1600), (w, h)
		assert len(data) > 30000, "%d bytes: nearly blank" % len(data)
	EOF
}

for page in "$EXP.html" "$ART/exports-nodot.html"; do
	name=${page##*/}
	check "$name: headless Chromium loads it (--dump-dom)" chrome "$page" --dump-dom
	check "$name: the DOM shows the verdict sentence" dom_has_verdict
	check "$name: no console error" bash -c "! grep -Eq 'Uncaught|:CONSOLE|ERR_|Failed to load' '$LAB_DIR/chrome.err'"
	chrome_errors | head -n 5 | sed 's/^/#   /'
done
check "html: screenshot (1280x1600)" chrome "$EXP.html" --screenshot="$EXP.png" --window-size=1280,1600
check "html: the screenshot is a non-trivial 1280x1600 PNG" png_check "$EXP.png"

# ---------------------------------------------------------------------------------------
# pcapng

run script -qefc "DYETRACE_TOKEN=$LAB_TOKEN $LAB_BIN/dyetrace -a ipc://$LAB_DIR/api.sock report --format pcapng $task" /dev/null
check_rc "pcapng to a terminal: refused, exit 2" 2
check "pcapng to a terminal: says why" grep -q "refusing to write it to a terminal" <<<"$OUT"

run lab_cli report --format pcapng -o "$EXP.pcapng" "$task"
check_rc "pcapng: written" 0
fields=$LAB_DIR/pcapng-fields.txt
check "pcapng: tshark reads it" bash -c "tshark -r '$EXP.pcapng' -T fields -E separator=/t \
	-e frame.interface_id -e frame.interface_description -e frame.comment >'$fields' 2>'$fields.err'"
check_eq "pcapng: one packet per hop ($hops_total)" "$(wc -l <"$fields")" "$hops_total"
check_eq "pcapng: one interface per (node, ifname, hook) ($places)" \
	"$(cut -f1 "$fields" | sort -u | wc -l)" "$places"
check_eq "pcapng: distinct interface descriptions ($places)" \
	"$(cut -f2 "$fields" | sort -u | wc -l)" "$places"
check_eq "pcapng: every comment names task $task" \
	"$(grep -c "dyetrace task $task " "$fields")" "$hops_total"
check_eq "pcapng: every comment names the destination branch (no copies on 2 hosts)" \
	"$(grep -c ', branch destination' "$fields")" "$hops_total"
check_eq "pcapng: the $dropped drops' comments name NETFILTER_DROP" \
	"$(grep -c 'dropped: NETFILTER_DROP' "$fields")" "$dropped"
check_eq "pcapng: drops are on the drop place's interface" \
	"$(grep 'dropped: NETFILTER_DROP' "$fields" | cut -f2 | sort -u | grep -c "interface $drop_if, hook drop")" 1

for f in "$ART"/exports-*; do
	printf '# %s: %s bytes\n' "$f" "$(stat -c %s "$f")"
done
checks_teardown_clean
