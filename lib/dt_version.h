/* SPDX-License-Identifier: MIT */
/*
 * dt_version.h - what --version prints, the same for every binary:
 *
 *     dyetrace-agent 0.1.0
 *     git revision: 8e3ba05c1d2a-dirty
 *     libraries: libbpf 1.1, nng 1.5.2, lmdb 0.9.24, msgpack 4.0.0, libconfig 1.5.0
 *
 * The version is the project's (CMake's project(VERSION)); the git revision is
 * `git describe --always --dirty` of the source tree at build time ("unknown" outside a
 * git checkout); the libraries' versions are the ones the program runs with, as each
 * library reports them (libconfig has no such call: its version is the one built
 * against). The agent adds a line with the tag of its BPF object.
 */
#ifndef DT_VERSION_H
#define DT_VERSION_H

#include <stdio.h>

/* The git revision the binary was built from, or "unknown". */
const char *dt_git_revision(void);

/* Prints the lines above for program name to f. */
void dt_version_print(FILE *f, const char *name);

#endif /* DT_VERSION_H */
