/* core_tree.h — a text digest of a whole tree as seen through the core
 * API (paths, types, sizes, content hashes, symlink targets, xattrs, hard
 * link groups), for comparing stores. No shared state, no locks. */
#pragma once

#include "core/core.h"

#include <glib.h>

/* Digest of the tree under `root`, one sorted line per entry. Reads every
 * file; a read error shows as "read-error" in its line. */
char *ctree_digest(Core *c, uint64_t root);
