/*
 * The MCUXpresso SDK side of the MCX N947 port: the only file here that needs SDK headers.
 * Clocks from the board's clock_config.c (BOARD_BootClockPLL150M: core at 150 MHz from PLL0),
 * LP_FLEXCOMM4 as LPUART on P1_8 (RX) / P1_9 (TX), the FRDM-MCXN947 debug console pins, clocked
 * from FRO 12 MHz, and the two marker pins as GPIOs (UNPU_TS_PORT/PIN, UNPU_STAGE_PORT/PIN).
 * The register offsets port.c uses (mcxn947_regs.h) are checked against the SDK's structs.
 */
#include <stddef.h>

#include "clock_config.h"
#include "fsl_clock.h"
#include "fsl_device_registers.h"
#include "fsl_lpflexcomm.h"
#include "mcxn947_board.h"
#include "mcxn947_regs.h"

#ifndef UNPU_TS_PORT
#define UNPU_TS_PORT 0
#define UNPU_TS_PIN 10
#endif
#ifndef UNPU_STAGE_PORT
#define UNPU_STAGE_PORT 0
#define UNPU_STAGE_PIN 27
#endif

_Static_assert(offsetof(LPUART_Type, BAUD) == LPUART_BAUD, "LPUART BAUD offset");
_Static_assert(offsetof(LPUART_Type, STAT) == LPUART_STAT, "LPUART STAT offset");
_Static_assert(offsetof(LPUART_Type, CTRL) == LPUART_CTRL, "LPUART CTRL offset");
_Static_assert(offsetof(LPUART_Type, DATA) == LPUART_DATA, "LPUART DATA offset");
_Static_assert(offsetof(GPIO_Type, PSOR) == GPIO_PSOR, "GPIO PSOR offset");
_Static_assert(offsetof(GPIO_Type, PCOR) == GPIO_PCOR, "GPIO PCOR offset");
_Static_assert(offsetof(GPIO_Type, PDDR) == GPIO_PDDR, "GPIO PDDR offset");
_Static_assert(LPUART_STAT_TDRE_MASK == LPUART_STAT_TDRE && LPUART_STAT_RDRF_MASK == LPUART_STAT_RDRF,
               "LPUART STAT bits");
_Static_assert(LPUART_CTRL_TE_MASK == LPUART_CTRL_TE && LPUART_CTRL_RE_MASK == LPUART_CTRL_RE, "LPUART CTRL bits");

static PORT_Type *const ports[] = PORT_BASE_PTRS;
static GPIO_Type *const gpios[] = GPIO_BASE_PTRS;
static const clock_ip_name_t port_clocks[] = {kCLOCK_Port0, kCLOCK_Port1, kCLOCK_Port2, kCLOCK_Port3,
                                              kCLOCK_Port4, kCLOCK_Port5};
static const clock_ip_name_t gpio_clocks[] = {kCLOCK_Gpio0, kCLOCK_Gpio1, kCLOCK_Gpio2, kCLOCK_Gpio3,
                                              kCLOCK_Gpio4, kCLOCK_Gpio5};

static void gpio_pin(uint32_t port, uint32_t pin)
{
    CLOCK_EnableClock(port_clocks[port]);
    CLOCK_EnableClock(gpio_clocks[port]);
    ports[port]->PCR[pin] = PORT_PCR_MUX(0);   /* Alt0: GPIO */
}

void mcx_board_init(mcx_board_t *out)
{
    BOARD_BootClockPLL150M();                  /* sets SystemCoreClock */

    CLOCK_SetClkDiv(kCLOCK_DivFlexcom4Clk, 1u);
    CLOCK_AttachClk(kFRO12M_to_FLEXCOMM4);
    CLOCK_EnableClock(kCLOCK_Port1);
    PORT1->PCR[8] = PORT_PCR_MUX(2) | PORT_PCR_IBE(1);   /* FC4_P0: RXD */
    PORT1->PCR[9] = PORT_PCR_MUX(2) | PORT_PCR_IBE(1);   /* FC4_P1: TXD */
    (void)LP_FLEXCOMM_Init(4u, LP_FLEXCOMM_PERIPH_LPUART);
    out->uart_base = (uintptr_t)LPUART4;
    out->uart_clock_hz = CLOCK_GetLPFlexCommClkFreq(4u);

    gpio_pin(UNPU_TS_PORT, UNPU_TS_PIN);
    gpio_pin(UNPU_STAGE_PORT, UNPU_STAGE_PIN);
    out->ts_gpio_base = (uintptr_t)gpios[UNPU_TS_PORT];
    out->ts_pin = UNPU_TS_PIN;
    out->stage_gpio_base = (uintptr_t)gpios[UNPU_STAGE_PORT];
    out->stage_pin = UNPU_STAGE_PIN;
}
