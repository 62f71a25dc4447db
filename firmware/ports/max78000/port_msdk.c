/*
 * unpu_port.h for the MAX78000 / MAX78002 (Cortex-M4F) over the MSDK peripheral drivers and BSP
 * (TARGET/BOARD chosen by the MSDK make system). Needs the MSDK headers.
 *
 * Clock: the 100 MHz (MAX78000) / 120 MHz (MAX78002) internal primary oscillator (IPO), as the
 * ai8x-synthesis examples select it. UART: the BSP's console UART (CONSOLE_UART, set up by
 * Board_Init at CONSOLE_BAUD = 115200 8N1), polled. Pins: two GPIO outputs (docs/protocol.md
 * "Pins"), UNPU_PIN_TS_PORT/PIN and UNPU_PIN_STAGE_PORT/PIN (board YAML `pins:`).
 * Timer: the DWT cycle counter (common/port_dwt.c) at the core clock, SystemCoreClock (the MSDK's
 * system file keeps it up to date). Idle: a busy-wait on it (common/port_defaults.c), as no timer
 * wake-up for WFI is wired yet.
 */
#include <stdint.h>

#include "cortex_m.h"
#include "mxc.h"
#include "unpu_port.h"

#ifndef UNPU_PIN_TS_PORT
#define UNPU_PIN_TS_PORT 1
#define UNPU_PIN_TS_PIN 6
#endif
#ifndef UNPU_PIN_STAGE_PORT
#define UNPU_PIN_STAGE_PORT 1
#define UNPU_PIN_STAGE_PIN 7
#endif

static mxc_uart_regs_t *uart;
static mxc_gpio_cfg_t pin_ts, pin_stage;

static void pin_init(mxc_gpio_cfg_t *cfg, int port, int pin)
{
    cfg->port = MXC_GPIO_GET_GPIO(port);
    cfg->mask = 1u << pin;
    cfg->pad = MXC_GPIO_PAD_NONE;
    cfg->func = MXC_GPIO_FUNC_OUT;
    cfg->vssel = MXC_GPIO_VSSEL_VDDIOH;
    MXC_GPIO_Config(cfg);
}

void port_init(void)
{
    MXC_ICC_Enable(MXC_ICC0);
    MXC_SYS_Clock_Select(MXC_SYS_CLOCK_IPO);
    SystemCoreClockUpdate();
    uart = MXC_UART_GET_UART(CONSOLE_UART);
    pin_init(&pin_ts, UNPU_PIN_TS_PORT, UNPU_PIN_TS_PIN);
    pin_init(&pin_stage, UNPU_PIN_STAGE_PORT, UNPU_PIN_STAGE_PIN);
    MXC_GPIO_OutSet(pin_ts.port, pin_ts.mask);      /* the timestamp pin rests high */
    MXC_GPIO_OutClr(pin_stage.port, pin_stage.mask);
    (void)cm_dwt_start();
}

int port_uart_getc(void)
{
    int c = MXC_UART_ReadCharacter(uart);   /* blocks until a byte arrives */
    return c < 0 ? -1 : (c & 0xff);
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        MXC_UART_WriteCharacter(uart, data[i]);
}

void port_pin_timestamp(int level)
{
    if (level)
        MXC_GPIO_OutSet(pin_ts.port, pin_ts.mask);
    else
        MXC_GPIO_OutClr(pin_ts.port, pin_ts.mask);
}

void port_pin_stage(int level)
{
    if (level)
        MXC_GPIO_OutSet(pin_stage.port, pin_stage.mask);
    else
        MXC_GPIO_OutClr(pin_stage.port, pin_stage.mask);
}

uint32_t port_timer_hz(void) { return SystemCoreClock; }
