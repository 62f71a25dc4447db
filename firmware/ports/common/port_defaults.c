/*
 * Weak defaults for the unpu_port.h hooks a port may leave out; a port's own definition wins at
 * link time. No marker pins (docs/protocol.md "Pins": ports without wired pins), a busy-wait on
 * the port's stage timer, and `idle` as that busy-wait for ports without a timer wake-up.
 */
#include "delay.h"
#include "unpu_port.h"

__attribute__((weak)) void port_pin_timestamp(int level) { (void)level; }
__attribute__((weak)) void port_pin_stage(int level) { (void)level; }

__attribute__((weak)) void port_delay_us(uint32_t us) { unpu_delay_on_timer_us(us); }

__attribute__((weak)) void port_idle_us(uint32_t us) { port_delay_us(us); }
