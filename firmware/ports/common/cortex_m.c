/* See cortex_m.h. Register addresses: Armv7-M / Armv8-M Architecture Reference Manuals (DWT, DEMCR). */
#include "cortex_m.h"
#include "unpu_port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT CM_DWT_CYCCNT
#define DWT_LAR REG(0xE0001FB0u)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL_CYCCNTENA 1u
#define DWT_LAR_KEY 0xC5ACCE55u

uint32_t cm_dwt_last;
uint64_t cm_dwt_high;

int cm_dwt_start(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_KEY;   /* Cortex-M7 locks the DWT out of reset; where there is no lock it is ignored */
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    cm_dwt_last = 0;
    cm_dwt_high = 0;
    const uint32_t before = DWT_CYCCNT;
    for (volatile int i = 0; i < 100; i++) {
    }
    return DWT_CYCCNT != before;
}

/* Weak: ports with somewhere to go (semihosting, a reset) define their own. */
__attribute__((weak)) void port_exit(int code)
{
    (void)code;
    __asm volatile("cpsid i" ::: "memory");
    for (;;)
        __asm volatile("wfi");
}
