/* ranges.c — lists of byte ranges kept as (start, end) pairs of uint64 in
 * a GArray, as the write path, the flusher and the open-time cache
 * reconciliation use them. Pure functions on the caller's arrays; no
 * state, no locks. */
#include "core/core_private.h"

void range_add(GArray **arr, uint64_t a, uint64_t b)
{
    if (!*arr)
        *arr = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t pair[2] = { a, b };
    g_array_append_vals(*arr, pair, 2);
}

void range_remove(GArray *arr, uint64_t a, uint64_t b)
{
    for (guint i = 0; arr && i + 1 < arr->len; i += 2)
        if (g_array_index(arr, uint64_t, i) == a && g_array_index(arr, uint64_t, i + 1) == b) {
            g_array_remove_range(arr, i, 2);
            return;
        }
}

void range_subtract(uint64_t a, uint64_t b, GArray *excl, GArray *out)
{
    g_array_set_size(out, 0);
    uint64_t pair[2] = { a, b };
    g_array_append_vals(out, pair, 2);
    for (guint i = 0; excl && i + 1 < excl->len; i += 2) {
        uint64_t xa = g_array_index(excl, uint64_t, i), xb = g_array_index(excl, uint64_t, i + 1);
        g_autoptr(GArray) next = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        for (guint j = 0; j + 1 < out->len; j += 2) {
            uint64_t pa = g_array_index(out, uint64_t, j), pb = g_array_index(out, uint64_t, j + 1);
            if (xb <= pa || xa >= pb) {
                uint64_t q[2] = { pa, pb };
                g_array_append_vals(next, q, 2);
                continue;
            }
            if (xa > pa) {
                uint64_t q[2] = { pa, xa };
                g_array_append_vals(next, q, 2);
            }
            if (xb < pb) {
                uint64_t q[2] = { xb, pb };
                g_array_append_vals(next, q, 2);
            }
        }
        g_array_set_size(out, 0);
        g_array_append_vals(out, next->data, next->len);
    }
}
