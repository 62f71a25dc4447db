/*
 * The SDK-free half of the MAX78000/MAX78002 port (Cortex-M4F): the stage timer is the DWT cycle
 * counter, which runs at the core clock SystemCoreClock (CMSIS; the MSDK's system file keeps it
 * up to date). Core debug registers are architectural (ARMv7-M), so they are defined here and this
 * file compiles without the MSDK (tests/test_vendor_maxim.py does that with arm-none-eabi-gcc).
 */
#include <stdint.h>

#include "unpu_port.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CTRL_CYCCNTENA 1u
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

extern uint32_t SystemCoreClock;

static uint32_t dwt_last;
static uint64_t dwt_high;

void port_timer_start(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    dwt_last = 0;
    dwt_high = 0;
}

uint64_t port_timer_ticks(void)
{
    uint32_t now = DWT_CYCCNT;   /* extended to 64 bits: read at least once per 2^32 cycles (43 s at 100 MHz) */
    if (now < dwt_last)
        dwt_high += 1ull << 32;
    dwt_last = now;
    return dwt_high + now;
}

uint32_t port_timer_hz(void) { return SystemCoreClock; }
const char *port_timer_name(void) { return "dwt"; }

void port_delay_us(uint32_t us)
{
    uint64_t end = port_timer_ticks() + ((uint64_t)us * SystemCoreClock + 999999u) / 1000000u;
    while (port_timer_ticks() < end) {
    }
}
