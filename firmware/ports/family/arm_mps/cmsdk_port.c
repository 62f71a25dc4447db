/*
 * unpu_port.h for the Arm MPS2/MPS3 FPGA images with CMSDK peripherals, as QEMU emulates them
 * (qemu_m4: AN386 Cortex-M4F, qemu_m55: AN547 Cortex-M55) and the Corstone-300 FVP models them.
 * Addresses and clocks come from the port's board.h; with the Security Extension (Armv8-M) the
 * core boots Secure and board.h gives the Secure aliases.
 *
 * UART: CMSDK APB UART0, polled (STATE bit0 TX full, bit1 RX full; CTRL bits 0/1 enable TX/RX;
 * QEMU drops TX bytes unless TX is enabled). The host link is QEMU's TCP chardev.
 *
 * Timer: DWT CYCCNT when it counts (common/cortex_m.c); QEMU's reads 0, so SysTick is used, clocked by
 * the core clock (CLKSOURCE=1), reload 0xFFFFFF, with the 24-bit wrap counted in SysTick_Handler.
 * Ticks = overflows * 2^24 + (2^24 - VAL) mod 2^24, read race-free (overflow count read twice).
 *
 * Determinism under `-icount shift=0`: the instruction stream is deterministic except where the
 * firmware waits for the host (UART RX polling). After every such wait the SysTick phase is re-zeroed
 * (CVR written while the running total is carried over), so the timer's tick boundaries fall on the
 * same instructions in every run and stage counts repeat exactly. The tick fraction (< 1 tick) in
 * progress at that instant is dropped; no timed stage ever spans a UART wait.
 *
 * Idle (`idle MS%`): WFI, woken by SysTick, whose period is shortened to the time left (at most
 * 2^24 ticks a wrap) for the wait and restored after it, so the core sleeps for all of it.
 *
 * Pins: the FPGAIO LED register (bit 0 = timestamp pin, bit 1 = stage pin; contract in
 * docs/protocol.md, "Pins"); QEMU traces writes with `-d trace:mps2_fpgaio_write`.
 */
#include <stdint.h>

#include "cmsdk_port.h"
#include "cortex_m.h"
#include "delay.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define UART_DATA REG(BOARD_UART0_BASE + 0x00u)
#define UART_STATE REG(BOARD_UART0_BASE + 0x04u)
#define UART_CTRL REG(BOARD_UART0_BASE + 0x08u)
#define UART_BAUDDIV REG(BOARD_UART0_BASE + 0x10u)
#define UART_STATE_TXFULL 1u
#define UART_STATE_RXFULL 2u

#define FPGAIO_LED REG(BOARD_FPGAIO_BASE + 0x00u)

#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_ICSR REG(0xE000ED04u)
#define SCB_SHPR3 REG(0xE000ED20u)

#define SYSTICK_RELOAD 0xFFFFFFu
#define SYSTICK_PERIOD (SYSTICK_RELOAD + 1u)

/* -- UART ---------------------------------------------------------------------------------- */

static void uart_init(void)
{
    UART_CTRL = 0;
    UART_BAUDDIV = BOARD_CPU_HZ / 115200u;   /* QEMU ignores the rate; real CMSDK UARTs need >= 16 */
    UART_CTRL = 3u;                          /* TX and RX enable, no interrupts */
}

static void uart_putc(uint8_t c)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = c;
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        uart_putc(data[i]);
}

void cmsdk_uart_puts(const char *s)
{
    while (*s)
        uart_putc((uint8_t)*s++);
}

static void timer_resync(void);

int port_uart_getc(void)
{
    /* The link cannot "go away" on QEMU (the chardev waits for a client): block. */
    while (!(UART_STATE & UART_STATE_RXFULL)) {
    }
    int c = (int)(UART_DATA & 0xFFu);
    timer_resync();
    return c;
}

/* -- timer --------------------------------------------------------------------------------- */

static int use_dwt;
static volatile uint32_t systick_overflows;   /* wraps since the last resync */
static uint64_t systick_base;                 /* ticks accumulated before the last resync */
static uint32_t systick_period = SYSTICK_PERIOD;   /* ticks a wrap: shorter only inside port_idle_us */

void SysTick_Handler(void)
{
    (void)SYST_CSR;   /* clears COUNTFLAG */
    systick_overflows++;
}

static uint64_t systick_now(void)
{
    uint32_t hi, val;
    do {
        hi = systick_overflows;
        val = SYST_CVR;
    } while (hi != systick_overflows);
    return systick_base + (uint64_t)hi * systick_period + (val ? systick_period - val : 0u);
}

/* Restart the SysTick count from this instruction with `period` ticks a wrap, the running total
 * carried over. */
static void systick_restart(uint32_t period)
{
    __asm volatile("cpsid i" ::: "memory");
    systick_base = systick_now();
    SYST_RVR = period - 1u;
    SYST_CVR = 0;                 /* the count restarts from this instruction */
    SCB_ICSR = 1u << 25;          /* PENDSTCLR: a wrap cannot be pending after the reset */
    (void)SYST_CSR;               /* clear COUNTFLAG */
    systick_overflows = 0;
    systick_period = period;
    __asm volatile("cpsie i" ::: "memory");
}

static void timer_resync(void)
{
    if (!use_dwt)
        systick_restart(SYSTICK_PERIOD);
}

static void timer_init(void)
{
    use_dwt = cm_dwt_start();
    /* SysTick runs either way (it is cheap) but is only read when DWT does not count. */
    SYST_CSR = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu);   /* SysTick at the highest priority */
    systick_overflows = 0;
    systick_base = 0;
    SYST_CSR = 7u;                           /* ENABLE | TICKINT | CLKSOURCE = core clock */
}

uint64_t port_timer_ticks(void)
{
    if (use_dwt)
        return cm_dwt_ticks();
    return systick_now();
}

uint32_t port_timer_hz(void)
{
    return use_dwt ? BOARD_CPU_HZ : BOARD_SYSTICK_HZ;
}

const char *port_timer_name(void)
{
    return use_dwt ? "dwt" : "systick";
}

/* Not port_defaults.c's: inlined with the SysTick reads here. The wait sits between a UART resync
 * and the next timed stage, so its instruction count sets where the stages' SysTick ticks fall. */
void port_delay_us(uint32_t us) { unpu_delay_on_timer_us(us); }

/* One SysTick wrap of `ticks` (>= 2) in WFI. PRIMASK is set around the check so the wrap cannot
 * slip in between the check and WFI (a pending interrupt still ends WFI; it is taken at cpsie). */
static void sleep_ticks(uint32_t ticks)
{
    systick_restart(ticks);
    __asm volatile("cpsid i" ::: "memory");
    while (systick_overflows == 0u) {
        __asm volatile("dsb\n wfi\n cpsie i\n isb\n cpsid i" ::: "memory");
    }
    __asm volatile("cpsie i" ::: "memory");
}

void port_idle_us(uint32_t us)
{
    uint64_t left = (uint64_t)us * BOARD_SYSTICK_HZ / 1000000u;
    while (left >= 2u) {
        const uint32_t chunk = left > SYSTICK_PERIOD ? SYSTICK_PERIOD : (uint32_t)left;
        sleep_ticks(chunk);
        left -= chunk;
    }
    systick_restart(SYSTICK_PERIOD);
}

/* -- pins ---------------------------------------------------------------------------------- */

static uint32_t led_shadow;

static void led_set(uint32_t bit, int level)
{
    led_shadow = level ? (led_shadow | bit) : (led_shadow & ~bit);
    FPGAIO_LED = led_shadow;
}

void port_pin_timestamp(int level) { led_set(1u, level); }
void port_pin_stage(int level) { led_set(2u, level); }

/* -- semihosting and exit ------------------------------------------------------------------- */

static int semihost_call(int op, void *arg)
{
    register int r0 __asm("r0") = op;
    register void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihost_write0(const char *s)
{
    semihost_call(0x04, (void *)s);                  /* SYS_WRITE0 */
}

void semihost_exit(int code)
{
    uint32_t block[2] = {0x20026u, (uint32_t)code};  /* ADP_Stopped_ApplicationExit, exit code */
    semihost_call(0x20, block);                      /* SYS_EXIT_EXTENDED */
}

void port_exit(int code)
{
    semihost_exit(code);
    for (;;) {
    }
}

/* -- init and main -------------------------------------------------------------------------- */

void port_init(void)
{
    uart_init();
    timer_init();
    led_shadow = 0;
    FPGAIO_LED = 0;
}
