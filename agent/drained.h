/* SPDX-License-Identifier: MIT */
/*
 * drained.h - the count of ring records the agents of a node drained, kept in the pinned
 * map dt_drained (struct dt_drained, bpf/dt_sample.h) so that it outlives an agent killed
 * with SIGKILL.
 *
 * The agent notes each record as its ring buffer callback is entered. libbpf releases a
 * record (advances the ring's consumer position) only after the callback returns, so an
 * agent that dies in between has counted a record that is still in the ring, and that the
 * next agent drains again. Each note therefore also keeps the consumer position the record
 * started at, in the slot the count is about to select, before the count itself is
 * stored (one aligned 8-byte store): whatever instruction the agent dies at, the next one
 * reads a count and the position of that count's record, and drops the record from the
 * count when the ring still holds it. The count is then exact: the records the dead agents
 * took out of the ring.
 */
#ifndef DT_DRAINED_H
#define DT_DRAINED_H

#include <stdbool.h>
#include <stdint.h>

struct dt_drained_map;

/*
 * Maps the dt_drained map (map_fd) and the ring's consumer page (ring_fd). fresh: the data
 * plane was created by this agent (no previous agent's pins): the count starts at 0 under a
 * new identity. Otherwise the count left by the previous agent is corrected for a record
 * it had entered and not released (see above). Returns 0 or -errno.
 */
int dt_drained_open(int map_fd, int ring_fd, bool fresh, struct dt_drained_map **out);
void dt_drained_close(struct dt_drained_map *d);

/* Notes one record, as the ring buffer callback is entered (before it uses the record). */
void dt_drained_note(struct dt_drained_map *d);

/* The records drained from this data plane, by every agent that ran it, and its identity. */
uint64_t dt_drained_count(const struct dt_drained_map *d);
uint64_t dt_drained_id(const struct dt_drained_map *d);

#endif /* DT_DRAINED_H */
