/*
 * unpu_port.h for the Alif Ensemble E7 Cortex-M55 subsystems (RTSS-HP or RTSS-HE, -DRTSS_HP /
 * -DRTSS_HE), bare metal over the Alif Ensemble CMSIS DFP (startup, clocks, CMSIS USART driver).
 *
 * UART: CMSIS-Driver USART instance UNPU_ALIF_UART (2 or 4), polled, 8N1 at UNPU_BAUDRATE.
 * Timer: the DWT cycle counter at SystemCoreClock (the DFP's system code sets it from the
 * subsystem's real clock). Pins: none wired yet (no-ops).
 * NPU: each subsystem's local Ethos-U55 (IRQ 55, NPU_HP_IRQHandler / NPU_HE_IRQHandler in the DFP's
 * vector table) goes to the runner's handler; the data cache is cleaned/invalidated for it.
 */
#include <stddef.h>
#include <stdint.h>

#include "Driver_USART.h"
#include "pinconf.h"
#include "soc.h"
#include "unpu_harness.h"
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
static uint32_t dwt_last;
static uint64_t dwt_high;

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
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
    DWT->CYCCNT = 0;
    DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
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

uint64_t port_timer_ticks(void)
{
    uint32_t now = DWT->CYCCNT;   /* extended to 64 bits: read at least every 2^32 cycles */
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

void NPU_HP_IRQHandler(void) { unpu_ethosu_irq_handler(); }
void NPU_HE_IRQHandler(void) { unpu_ethosu_irq_handler(); }

void port_npu_irq_enable(void)
{
    NVIC_ClearPendingIRQ(NPU_IRQ);
    NVIC_EnableIRQ(NPU_IRQ);
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
    port_init();
    return unpu_harness_main();
}
