/*
 * Cortex-M (Armv7-M, Armv8-M Mainline) helpers for any port on such a core. They use only
 * registers whose addresses the architecture fixes, so they need no vendor CMSIS header.
 * cortex_m.c also has a weak port_exit for boards with nothing to return to: interrupts off, then
 * sleep for good.
 */
#ifndef UNPU_CORTEX_M_H
#define UNPU_CORTEX_M_H

#include <stdint.h>

#include "ticks64.h"

#define CM_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

extern uint32_t cm_dwt_last;   /* the counter's 64-bit extension (cortex_m.c) */
extern uint64_t cm_dwt_high;

/* Enable and zero the DWT cycle counter; 1 when it counts. It does not on QEMU, whose DWT reads 0,
 * nor on cores built without one (DWT_CTRL.NOCYCCNT). */
int cm_dwt_start(void);

/* The cycle counter extended to 64 bits; read it at least once per 2^32 cycles. Always inlined,
 * on separate variables rather than an unpu_ticks_t, for the reason ticks64.h gives. */
static inline __attribute__((always_inline)) uint64_t cm_dwt_ticks(void)
{
    return unpu_ticks_extend_parts(&cm_dwt_last, &cm_dwt_high, CM_DWT_CYCCNT);
}

#endif /* UNPU_CORTEX_M_H */
