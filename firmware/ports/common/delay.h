/*
 * port_delay_us as a busy-wait on the port's stage timer (port_timer_ticks, port_timer_hz), inline
 * so that a port can compile it next to its timer: port_defaults.c's weak default calls it, the
 * Arm MPS2/MPS3 port has its own copy inlined with its SysTick reads.
 */
#ifndef UNPU_DELAY_H
#define UNPU_DELAY_H

#include "unpu_port.h"

static inline __attribute__((always_inline)) void unpu_delay_on_timer_us(uint32_t us)
{
    const uint64_t end = port_timer_ticks() + ((uint64_t)us * port_timer_hz() + 999999u) / 1000000u;
    while (port_timer_ticks() < end) {
    }
}

#endif /* UNPU_DELAY_H */
