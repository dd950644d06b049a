/* The object side of the stress run: shared immortal constants increfed and
 * decrefed by every thread with no atomics, singleton lookups, and free-list
 * traffic.  See objects.c. */
#ifndef STRESS_OBJECTS_H
#define STRESS_OBJECTS_H

#include "islet.h"

#define RING 32

void objects_setup(islet_runtime_t *rt);
void objects_step(islet_interp_t *in, long i, void **ring);
/* Returns the ring, empties the free lists; what stays live is the
 * interpreter's own singleton: OBJECTS_LIVE blocks, freed by its teardown. */
void objects_end_cycle(islet_interp_t *in, void **ring);
#define OBJECTS_LIVE 1
/* Failures found: a shared immortal whose count changed, a singleton of the
 * wrong interpreter. */
int objects_failures(void);

#endif
