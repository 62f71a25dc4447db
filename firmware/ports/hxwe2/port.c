/*
 * unpu_port.h for the Himax WiseEye2 (HX6538) big Cortex-M55 on the Seeed Grove Vision AI Module V2,
 * over the WE2 SDK (built as its scenario app "unpu_bench", see Makefile).
 *
 * UART: the SDK console UART0 (921600 8N1 on the module's USB-serial), opened by board_init().
 * Timer: the DWT cycle counter (common/port_dwt.c) at the CM55M clock the SDK's clock driver
 * reports (never a constant: the seed paper's WE2 numbers assumed 100 MHz). Pins: none wired yet,
 * idle a busy-wait (common/port_defaults.c).
 * Model: flashed apart (xmodem, unpu/boards/himax.py) and read through the QSPI flash's XIP window,
 * which port_init() enables. NPU: the Ethos-U55's IRQ goes to the runner's handler;
 * common/ethosu_dcache.c keeps the data cache coherent with it.
 */
#include <stddef.h>
#include <stdint.h>

#include "WE2_core.h"
#include "WE2_device.h"
#include "board.h"
#include "cortex_m.h"
#include "hx_drv_scu_export.h"
#include "hx_drv_uart.h"
#include "spi_eeprom_comm.h"
#include "unpu_harness.h"
#include "unpu_port.h"

extern void unpu_ethosu_irq_handler(void);

static DEV_UART_PTR uart;
static uint32_t cpu_hz;

void port_init(void)
{
    uart = hx_drv_uart_get_dev(USE_DW_UART_0);
    hx_lib_spi_eeprom_open(USE_DW_SPI_MST_Q);
    hx_lib_spi_eeprom_enable_XIP(USE_DW_SPI_MST_Q, true, FLASH_QUAD, true);
    hx_drv_scu_get_freq(SCU_CLK_FREQ_TYPE_HSC_CM55M, &cpu_hz);
    (void)cm_dwt_start();
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

uint32_t port_timer_hz(void) { return cpu_hz; }

void port_npu_irq_enable(void)
{
    EPII_NVIC_SetVector(U55_IRQn, (uint32_t)unpu_ethosu_irq_handler);
    NVIC_EnableIRQ(U55_IRQn);
}

int main(void)
{
    board_init();
    port_init();
    return unpu_harness_main();
}
