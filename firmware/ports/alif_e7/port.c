/*
 * unpu_port.h for the Alif Ensemble E7 Cortex-M55 subsystems (RTSS-HP or RTSS-HE, -DRTSS_HP /
 * -DRTSS_HE), bare metal over the Alif Ensemble CMSIS DFP (startup, clocks, CMSIS USART driver).
 *
 * UART: CMSIS-Driver USART instance UNPU_ALIF_UART (2 or 4), polled, 8N1 at UNPU_BAUDRATE.
 * Timer: the DWT cycle counter (common/port_dwt.c) at SystemCoreClock (the DFP's system code sets
 * it from the subsystem's real clock). Pins: none wired yet, idle a busy-wait until a timer
 * wake-up is wired for WFI (common/port_defaults.c).
 * NPU: each subsystem's local Ethos-U55 (IRQ 55, NPU_HP_IRQHandler / NPU_HE_IRQHandler in the DFP's
 * vector table) goes to the runner's handler; common/ethosu_dcache.c keeps the data cache coherent
 * with it.
 */
#include <stddef.h>
#include <stdint.h>

#include "Driver_USART.h"
#include "cortex_m.h"
#include "pinconf.h"
#include "soc.h"
#include "unpu_port.h"

#ifndef UNPU_ALIF_UART
#define UNPU_ALIF_UART 2
#endif
#ifndef UNPU_BAUDRATE
#define UNPU_BAUDRATE 115200
#endif

/* DevKit-E7 pins of the two UARTs routed to its USB bridge: port, RX pin, TX pin, function */
#if UNPU_ALIF_UART == 2
#define UART_PINS PORT_1, PIN_0, PIN_1, PINMUX_ALTERNATE_FUNCTION_1
extern ARM_DRIVER_USART Driver_USART2;
#define UART_DRIVER Driver_USART2
#elif UNPU_ALIF_UART == 4
#define UART_PINS PORT_12, PIN_1, PIN_2, PINMUX_ALTERNATE_FUNCTION_2
extern ARM_DRIVER_USART Driver_USART4;
#define UART_DRIVER Driver_USART4
#else
#error "UNPU_ALIF_UART must be 2 or 4"
#endif

#if defined(RTSS_HE)
#define NPU_IRQ NPU_HE_IRQ_IRQn
#else
#define NPU_IRQ NPU_HP_IRQ_IRQn
#endif

extern void unpu_ethosu_irq_handler(void);

static ARM_DRIVER_USART *const uart = &UART_DRIVER;

static void pins(uint8_t port, uint8_t rx, uint8_t tx, uint8_t function)
{
    pinconf_set(port, rx, function, PADCTRL_READ_ENABLE);
    pinconf_set(port, tx, function, 0);
}

void port_init(void)
{
    pins(UART_PINS);
    uart->Initialize(NULL);
    uart->PowerControl(ARM_POWER_FULL);
    uart->Control(ARM_USART_MODE_ASYNCHRONOUS | ARM_USART_DATA_BITS_8 | ARM_USART_PARITY_NONE |
                      ARM_USART_STOP_BITS_1 | ARM_USART_FLOW_CONTROL_NONE, UNPU_BAUDRATE);
    uart->Control(ARM_USART_CONTROL_TX, 1);
    uart->Control(ARM_USART_CONTROL_RX, 1);
    (void)cm_dwt_start();
}

int port_uart_getc(void)
{
    uint8_t c;
    if (uart->Receive(&c, 1) != ARM_DRIVER_OK)
        return -1;
    while (uart->GetRxCount() < 1) {
    }
    return c;
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    if (uart->Send(data, len) != ARM_DRIVER_OK)
        return;
    while (uart->GetTxCount() < len) {
    }
}

uint32_t port_timer_hz(void) { return SystemCoreClock; }

void NPU_HP_IRQHandler(void) { unpu_ethosu_irq_handler(); }
void NPU_HE_IRQHandler(void) { unpu_ethosu_irq_handler(); }

void port_npu_irq_enable(void)
{
    NVIC_ClearPendingIRQ(NPU_IRQ);
    NVIC_EnableIRQ(NPU_IRQ);
}
