/*
 * A 32-bit hardware counter extended to 64 bits (Cortex-M DWT CYCCNT, GAP8 FC cycles, Xtensa
 * CCOUNT...). Header-only and free of vendor headers, so it compiles and is tested anywhere.
 * Always inlined: it runs between a stage and its timer reading, and with plain `inline` GCC lays
 * out the QEMU boards' port_timer_ticks differently, which changes their instruction counts.
 */
#ifndef UNPU_TICKS64_H
#define UNPU_TICKS64_H

#include <stdint.h>

typedef struct {
    uint32_t last;   /* the previous 32-bit reading */
    uint64_t high;   /* wraps seen so far, << 32 */
} unpu_ticks_t;

/* `now` extended to 64 bits, from the previous reading `*last` and the wraps so far `*high`.
 * Correct as long as it is called at least once per counter period (2^32 counts: 28.6 s at
 * 150 MHz); a port's idle wait calls it often enough. */
static inline __attribute__((always_inline)) uint64_t unpu_ticks_extend_parts(uint32_t *last, uint64_t *high, uint32_t now)
{
    if (now < *last)
        *high += 1ull << 32;
    *last = now;
    return *high + now;
}

static inline __attribute__((always_inline)) uint64_t unpu_ticks_extend(unpu_ticks_t *state, uint32_t now)
{
    return unpu_ticks_extend_parts(&state->last, &state->high, now);
}

#endif /* UNPU_TICKS64_H */
