/*
 * unpu_port.h for the Himax WiseEye2 (HX6538) big Cortex-M55 on the Seeed Grove Vision AI Module V2,
 * over the WE2 SDK (built as its scenario app "unpu_bench", see Makefile).
 *
 * UART: the SDK console UART0 (921600 8N1 on the module's USB-serial), opened by board_init().
 * Timer: the DWT cycle counter at the CM55M clock the SDK's clock driver reports (never a constant:
 * the seed paper's WE2 numbers assumed 100 MHz). Pins: none wired yet (no-ops).
 * Model: flashed apart (xmodem, unpu/boards/himax.py) and read through the QSPI flash's XIP window,
 * which port_init() enables. NPU: the Ethos-U55's IRQ goes to the runner's handler.
 */
#include <stddef.h>
#include <stdint.h>

#include "WE2_core.h"
#include "WE2_device.h"
#include "board.h"
#include "hx_drv_scu_export.h"
#include "hx_drv_uart.h"
#include "spi_eeprom_comm.h"
#include "unpu_harness.h"
#include "unpu_port.h"

extern void unpu_ethosu_irq_handler(void);

static DEV_UART_PTR uart;
static uint32_t cpu_hz;
static uint32_t dwt_last;
static uint64_t dwt_high;

void port_init(void)
{
    uart = hx_drv_uart_get_dev(USE_DW_UART_0);
    hx_lib_spi_eeprom_open(USE_DW_SPI_MST_Q);
    hx_lib_spi_eeprom_enable_XIP(USE_DW_SPI_MST_Q, true, FLASH_QUAD, true);
    hx_drv_scu_get_freq(SCU_CLK_FREQ_TYPE_HSC_CM55M, &cpu_hz);
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
    DWT->CYCCNT = 0;
    DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
}

int port_uart_getc(void)
{
    uint8_t c;
    return uart->uart_read(&c, 1) < 0 ? -1 : c;
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    uart->uart_write(data, len);
}

uint64_t port_timer_ticks(void)
{
    uint32_t now = DWT->CYCCNT;   /* extended to 64 bits: read at least every 2^32 cycles */
    if (now < dwt_last)
        dwt_high += 1ull << 32;
    dwt_last = now;
    return dwt_high + now;
}

uint32_t port_timer_hz(void) { return cpu_hz; }
const char *port_timer_name(void) { return "dwt"; }

void port_delay_us(uint32_t us)
{
    uint64_t end = port_timer_ticks() + ((uint64_t)us * cpu_hz + 999999u) / 1000000u;
    while (port_timer_ticks() < end) {
    }
}

/* `idle`: a busy-wait until a timer wake-up is wired for WFI (then the core could sleep). */
void port_idle_us(uint32_t us) { port_delay_us(us); }

void port_pin_timestamp(int level) { (void)level; }
void port_pin_stage(int level) { (void)level; }

void port_exit(int code)
{
    (void)code;
    __disable_irq();
    for (;;)
        __WFI();
}

void port_npu_irq_enable(void)
{
    EPII_NVIC_SetVector(U55_IRQn, (uint32_t)unpu_ethosu_irq_handler);
    NVIC_EnableIRQ(U55_IRQn);
}

/* The Ethos-U driver's cache hooks (weak in the driver): the NPU reads the arena's inputs and
 * writes its outputs behind the core's data cache. */
void ethosu_flush_dcache(uint32_t *p, size_t bytes)
{
    if (!(SCB->CCR & SCB_CCR_DC_Msk))
        return;
    if (p)
        SCB_CleanDCache_by_Addr(p, (int32_t)bytes);
    else
        SCB_CleanDCache();
}

void ethosu_invalidate_dcache(uint32_t *p, size_t bytes)
{
    if (!(SCB->CCR & SCB_CCR_DC_Msk))
        return;
    if (p)
        SCB_CleanInvalidateDCache_by_Addr(p, (int32_t)bytes);
    else
        SCB_CleanInvalidateDCache();
}

int main(void)
{
    board_init();
    port_init();
    return unpu_harness_main();
}
