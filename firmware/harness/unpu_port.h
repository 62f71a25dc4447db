/*
 * What a board port provides to the portable harness (firmware/ports/<board>/).
 * The harness never touches hardware directly; everything board-specific is behind these calls.
 */
#ifndef UNPU_PORT_H
#define UNPU_PORT_H

#include <stdint.h>

void port_init(void);                               /* clocks, UART, timer, pins */

/* Serial link (the DUT protocol runs over it). */
int port_uart_getc(void);                           /* blocks; returns 0..255, or -1 when the link is gone */
void port_uart_write(const uint8_t *data, uint32_t len);

/* Stage timer: a monotonic 64-bit tick count (the port handles counter wrap) and its rate. */
uint64_t port_timer_ticks(void);
uint32_t port_timer_hz(void);
const char *port_timer_name(void);                  /* "dwt" | "systick" | "os" | ... (docs/protocol.md) */

/* Pins for the power meter (docs/protocol.md, "Pins"): the timestamp pin is high and falls for
 * >= 1 us at each m-lap-us point and around `idle`; the stage pin toggles at stage boundaries.
 * Ports without pins leave them out: firmware/ports/common/port_defaults.c has no-op defaults. */
void port_pin_timestamp(int level);
void port_pin_stage(int level);
void port_delay_us(uint32_t us);                    /* busy-wait (common/port_defaults.c: on the stage timer) */

/* `idle`: wait `us` (<= 60 s) in the lowest-power way the port has (e.g. WFI woken by a timer).
 * firmware/ports/common/port_defaults.c has a weak busy-wait default (port_delay_us) for ports
 * that have nothing better. */
void port_idle_us(uint32_t us);

/* Leave the program (semihosting exit on QEMU, exit() natively, a reset or a halt on boards). */
void port_exit(int code);

#endif /* UNPU_PORT_H */
