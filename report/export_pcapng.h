/* SPDX-License-Identifier: MIT */
/*
 * export_pcapng.h - a report's sampled packets as a pcapng file, for Wireshark and tshark.
 *
 * Every hop of every packet of a report carries the packet's first bytes as they were at
 * that hop (struct dt_hop: cap_link, cap_len, cap; at most DT_CAP_MAX bytes, as the
 * agent's capture_bytes allows). The export writes each of them as one packet, so that an
 * operator can look at the traced packets themselves, hop by hop, in Wireshark:
 *
 *   - One section (pcapng 1.0, written little-endian; the byte-order magic says so). Its
 *     header names the application ("dyetrace") and carries a comment "dyetrace report of
 *     task 7 (10.100.0.1 -> 10.100.0.2 icmp vni 100): <verdict sentence>" (Statistics >
 *     Capture File Properties).
 *   - One interface per distinct place and link type, numbered in the order the places
 *     first appear, packets taken in timestamp order. Its name is "node/ifname" (the
 *     "Interface name" of a frame, field frame.interface_name), its description "node h2,
 *     interface ul0, hook uplink-in, Ethernet" (frame.interface_description); timestamps
 *     in nanoseconds; snapshot length DT_CAP_MAX.
 *   - Link types: Ethernet (LINKTYPE_ETHERNET, 1) for the tc hooks (port, uplink and
 *     gateway), whose prefix starts at the Ethernet header (on an uplink, the outer header
 *     of the VXLAN packet: Wireshark decodes the VXLAN and the tenant's frame inside);
 *     raw IPv4 (LINKTYPE_RAW, 101) for kernel drop samples, whose prefix starts at the
 *     IPv4 header. A hop where nothing was captured (cap_link DT_CAP_NONE) is a packet of
 *     0 captured bytes on the interface its hook would have captured on (Ethernet at a tc
 *     hook, raw IPv4 at a drop), so that it shares the interface of its captured peers and
 *     still shows its time, its length on the wire and its comment.
 *   - One packet per hop, all packets ordered by the hop's timestamp (ties in report
 *     order). The timestamp is the sample's (wall clock of the node that took it: hops on
 *     different nodes are only as comparable as their clocks). The captured length is the
 *     prefix's; the original length ("bytes on wire") is the packet's length on that link
 *     as best known: the total length of the IPv4 header at the start of the prefix (after
 *     the Ethernet header) when the prefix holds one, else the tenant packet's IPv4 length,
 *     plus 14 on Ethernet, plus 50 more (outer Ethernet, IPv4, UDP, VXLAN) at an uplink;
 *     never less than the captured length. Wireshark marks a shorter capture as "[Packet
 *     size limited during capture]", which is expected.
 *   - The direction flag (epb_flags) is inbound at port-in, uplink-in and gw-in, outbound at
 *     port-out, uplink-out and gw-out, and not given for drops.
 *   - Every hop is written, on every branch: a packet the overlay copied (head-end
 *     replication, flooding bridges) has a tree of hops (struct dt_hop: parent, branch),
 *     and each copy's hops are packets of the file too, the same hook once per copy.
 *   - A comment on each packet (field frame.comment) names the hop, the hop it followed
 *     (its parent; not said for the first hop) and its branch, "destination" (the branch
 *     towards the packet's destination, which decides its fate) or "copy" (a bystander's):
 *         dyetrace task 7 request packet ip_id 0x1a2b hop 3/5 h2/ul0 uplink-in, after hop
 *         2, branch destination
 *     The last hop of the destination branch adds the packet's fate, "; fate: delivered"
 *     ("vanished", "in-flight"), or for a dropped packet, whose destination branch ends
 *     with the drop:
 *         dyetrace task 7 request packet ip_id 0x1a2b hop 5/7 h2/vxlan0 drop, after hop 4,
 *         branch destination; dropped: NETFILTER_DROP at nf_hook_slow+0x8c
 *     ("dropped: reason 2", the kernel's number, when it had no name for the reason;
 *     "at ..." only when the place is known). The last hop of a copy says how the copy
 *     ended, with the drop that ended it:
 *         dyetrace task 7 request packet ip_id 0x1a2b hop 7/7 h3/br0 drop, after hop 6,
 *         branch copy (filtered, NOT_SPECIFIED at br_handle_frame_finish+0x1c5)
 *     ("(vanished)", "(in-flight)", "(delivered)" at other hooks).
 *     One packet's hops are found with the display filter
 *     frame.comment contains "ip_id 0x1a2b"; the packets of a drop with
 *     frame.comment contains "dropped:" (never a copy's); the copies with
 *     frame.comment contains "branch copy". Bytes in names that are not printable ASCII
 *     are written as '?'.
 *
 * The file is written front to back (the section length is "unknown"); f may be a pipe.
 * Memory: one fixed interface table (about 380 KiB for DT_PCAPNG_MAX_IFACES) and 8 bytes
 * per packet of the report, freed before returning; nothing per hop.
 */
#ifndef DT_EXPORT_PCAPNG_H
#define DT_EXPORT_PCAPNG_H

#include <stdio.h>

#include "dt_proto.h"

/* Distinct interfaces (node, ifname, hook, link type) one export may describe. */
#define DT_PCAPNG_MAX_IFACES 4096

/* Writes every sampled packet of r (every hop of every packet) as a pcapng file to f.
 * Returns 0, or a negative errno (-EIO when f reports an error).
 * Also: -EINVAL, with nothing written, when r is not a report the decoder could have
 * produced (a cap_len above DT_CAP_MAX, an unknown cap_link, branch or copy end, a hop
 * whose parent is not an earlier hop or a first hop with a parent, more than
 * DT_REPORT_MAX_HOPS hops or DT_REPORT_MAX_PACKETS packets, hops missing); -E2BIG, with
 * nothing written, when the hops name more than DT_PCAPNG_MAX_IFACES interfaces; -ENOMEM.
 * f is flushed, not closed; after an error its content is unspecified.
 */
int dt_export_pcapng(FILE *f, const struct dt_report *r);

#endif /* DT_EXPORT_PCAPNG_H */
