/* SPDX-License-Identifier: MIT */
/*
 * attribute.h - what one sample belongs to: the index of the task keys, the translations
 * learned from NAT samples, and the first fragments attributed (the matching steps 1 to 4
 * of stitch.h). The stitcher (stitch.h) holds what this cannot attribute yet and tries
 * again when its window closes.
 *
 * Not thread-safe; the analyzer serializes access.
 */
#ifndef DT_ATTRIBUTE_H
#define DT_ATTRIBUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dt_proto.h"
#include "paths.h"
#include "tasks.h"

/*
 * A sample as the stitcher takes it: the observation it becomes, and what attributing it
 * needs besides (kept while it is held, not afterwards).
 */
struct dt_stitch_in {
	struct dt_obs o;	 /* dir and canon are filled by the stitcher */
	struct dt_tuple orig;	 /* DT_SAMPLE_F_NAT: the tuple inside the NAT */
	uint32_t task_id;	 /* a first hop's task, else 0 */
	uint8_t cap[DT_CAP_MAX]; /* the packet prefix: o.cap_len bytes, zeros after */
};

/*
 * Fills in from the wire sample w, whose names were interned as node, ifname, drop_name
 * and drop_where (DT_STRTAB_NONE for none), arrived at arrival_ms.
 */
void dt_stitch_in_fill(struct dt_stitch_in *in, const struct dt_wire_sample *w, uint32_t node,
		       uint32_t ifname, uint32_t drop_name, uint32_t drop_where,
		       uint64_t arrival_ms);

/*
 * Told of every translation the stitcher learns or relearns, for task's direction dir: a
 * packet of that direction seen as outside is inside in the task's terms. The analyzer
 * arms the outside form of replies at their first hop (dt_tasks_add_learned()).
 */
typedef void (*dt_stitch_learn_fn)(void *arg, struct dt_task *task, uint8_t dir,
				   const struct dt_tuple *outside, const struct dt_tuple *inside);

/* A hash table of tuples (attribute.c). */
struct dt_tmap_slot; /* attribute.c */

struct dt_tmap {
	struct dt_tmap_slot *slots;
	uint32_t n_slots; /* a power of two */
	uint32_t n;
};

/* What a sample was attributed to. */
struct dt_match {
	struct dt_task *task;
	uint8_t dir;
	struct dt_tuple canon;
	bool frag; /* a later fragment: ident is its datagram's */
	uint32_t ident;
};

/* The index: kept in step with the task table's generation by dt_attrib_sync(). */
struct dt_attrib {
	struct dt_tasks *tasks;
	uint64_t keys_gen;   /* tasks' generation the key index was built for */
	struct dt_tmap keys; /* task keys: exact and any-port */
	uint32_t *vnis;	     /* the distinct VNIs of the task keys */
	size_t n_vnis;
	struct dt_tmap nat;	     /* learned translations: outside tuple -> inside */
	struct dt_tmap frags;	     /* first fragments attributed: (addresses as seen, protocol,
				      * IPv4 id) -> their task, direction, canonical tuple and ident */
	dt_stitch_learn_fn on_learn; /* NULL: nobody is told */
	void *on_learn_arg;
	uint64_t learned;  /* translations learned or changed */
	uint64_t nat_full; /* translations not learned (or first fragments not remembered):
			    * the table is full */
};

/* An empty index over tasks (which must outlive it). */
void dt_attrib_init(struct dt_attrib *at, struct dt_tasks *tasks);
void dt_attrib_free(struct dt_attrib *at);

/* Rebuilds the key index when the task table changed. Returns 0 or -ENOMEM. */
int dt_attrib_sync(struct dt_attrib *at);

/* Attributes in (stitch.h, steps 1 to 4) into *m, learning from it (a translation, a first
 * fragment). False when nothing matches yet. */
bool dt_attrib_match(struct dt_attrib *at, const struct dt_stitch_in *in, struct dt_match *m);

/* Learns outside -> inside (m->canon) for m's task and direction, and the reverse when the
 * task traces the other direction; on_learn is told. */
void dt_attrib_learn(struct dt_attrib *at, const struct dt_tuple *outside,
		     const struct dt_match *m);

/* Remembers a first fragment seen as o and attributed as m, for its datagram's later
 * fragments. */
void dt_attrib_remember_frag(struct dt_attrib *at, const struct dt_obs *o,
			     const struct dt_match *m);

/* How many translations the index holds. */
size_t dt_attrib_n_nat(const struct dt_attrib *at);

#endif /* DT_ATTRIBUTE_H */
