/*
 * unpu_port.h for the NXP MCX N947 (Cortex-M33 core 0) on the FRDM-MCXN947, bare metal.
 *
 * UART: the LPUART of LP_FLEXCOMM4 (the board's MCU-Link VCOM), polled, 8N1 at UNPU_BAUDRATE;
 * oversampling and divider are chosen for the smallest baud error from the clock board_sdk.c reports.
 * Timer: the DWT cycle counter (common/port_dwt.c) at SystemCoreClock (150 MHz after the SDK's
 * BOARD_BootClockPLL150M). Pins: two RGPIO outputs (board_sdk.c muxes them; board YAML `pins:`).
 * Idle: WFI woken by a 1 ms SysTick; DWT stops while the core sleeps, so the wait counts SysTick
 * interrupts, not cycles.
 *
 * Only the register layouts of mcxn947_regs.h and common/cortex_m.h are used here: this file
 * compiles without the SDK.
 */
#include <stdint.h>

#include "cortex_m.h"
#include "mcxn947_board.h"
#include "mcxn947_regs.h"
#include "unpu_harness.h"
#include "unpu_port.h"

#ifndef UNPU_BAUDRATE
#define UNPU_BAUDRATE 115200
#endif

extern uint32_t SystemCoreClock;   /* CMSIS system file of the SDK */

static mcx_board_t board;
static volatile uint32_t systick_count;

/* -- UART ---------------------------------------------------------------------------------- */

/* BAUD register value with the smallest error: baud = clock / (osr * sbr), osr 4..32. */
static uint32_t lpuart_baud(uint32_t clock_hz, uint32_t baud)
{
    uint32_t best = 0, best_err = UINT32_MAX;
    for (uint32_t osr = 4; osr <= 32; osr++) {
        uint32_t sbr = (clock_hz + osr * baud / 2u) / (osr * baud);
        if (sbr == 0 || sbr > LPUART_BAUD_SBR_MASK)
            continue;
        uint32_t actual = clock_hz / (osr * sbr);
        uint32_t err = actual > baud ? actual - baud : baud - actual;
        if (err < best_err) {
            best_err = err;
            best = ((osr - 1u) << LPUART_BAUD_OSR_SHIFT) | sbr | (osr < 8u ? LPUART_BAUD_BOTHEDGE : 0u);
        }
    }
    return best;
}

static void uart_init(void)
{
    MCX_REG(board.uart_base, LPUART_CTRL) = 0;
    MCX_REG(board.uart_base, LPUART_BAUD) = lpuart_baud(board.uart_clock_hz, UNPU_BAUDRATE);
    MCX_REG(board.uart_base, LPUART_STAT) = LPUART_STAT_OR | LPUART_STAT_NF | LPUART_STAT_FE;  /* w1c */
    MCX_REG(board.uart_base, LPUART_CTRL) = LPUART_CTRL_TE | LPUART_CTRL_RE;
}

int port_uart_getc(void)
{
    for (;;) {
        uint32_t stat = MCX_REG(board.uart_base, LPUART_STAT);
        if (stat & LPUART_STAT_OR)   /* an overrun stops reception until cleared */
            MCX_REG(board.uart_base, LPUART_STAT) = LPUART_STAT_OR;
        if (stat & LPUART_STAT_RDRF)
            return (int)(MCX_REG(board.uart_base, LPUART_DATA) & 0xFFu);
    }
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        while (!(MCX_REG(board.uart_base, LPUART_STAT) & LPUART_STAT_TDRE)) {
        }
        MCX_REG(board.uart_base, LPUART_DATA) = data[i];
    }
}

/* -- timer --------------------------------------------------------------------------------- */

uint32_t port_timer_hz(void) { return SystemCoreClock; }

void SysTick_Handler(void) { systick_count++; }

void port_idle_us(uint32_t us)
{
    const uint32_t ms = us / 1000u;
    REG32(SYST_CSR) = 0;
    REG32(SYST_RVR) = SystemCoreClock / 1000u - 1u;
    REG32(SYST_CVR) = 0;
    systick_count = 0;
    REG32(SYST_CSR) = 7u;          /* ENABLE | TICKINT | core clock */
    while (systick_count < ms)
        __asm volatile("dsb\n wfi" ::: "memory");
    REG32(SYST_CSR) = 0;
    port_delay_us(us % 1000u);
    (void)port_timer_ticks();      /* resync the 64-bit extension after the sleep */
}

/* -- pins ---------------------------------------------------------------------------------- */

static void pin_set(uintptr_t gpio, uint32_t pin, int level)
{
    MCX_REG(gpio, level ? GPIO_PSOR : GPIO_PCOR) = 1u << pin;
}

void port_pin_timestamp(int level) { pin_set(board.ts_gpio_base, board.ts_pin, level); }
void port_pin_stage(int level) { pin_set(board.stage_gpio_base, board.stage_pin, level); }

static void pins_init(void)
{
    pin_set(board.ts_gpio_base, board.ts_pin, 1);   /* at rest high */
    pin_set(board.stage_gpio_base, board.stage_pin, 0);
    MCX_REG(board.ts_gpio_base, GPIO_PDDR) |= 1u << board.ts_pin;
    MCX_REG(board.stage_gpio_base, GPIO_PDDR) |= 1u << board.stage_pin;
}

/* -- start and exit -------------------------------------------------------------------------- */

void port_init(void)
{
    mcx_board_init(&board);
    uart_init();
    (void)cm_dwt_start();
    pins_init();
}

int main(void)
{
    port_init();
    return unpu_harness_main();
}
