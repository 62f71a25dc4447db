/* NUCLEO-N657X0-Q (MB1940, UM3417): what the shared STM32 port (../family/stm32/port.c) touches, at the
 * secure aliases (the application runs secure, as ST's FSBL leaves it). board_hal.c checks these
 * addresses against STM32CubeN6's device header at build time.
 * The pins are Arduino-header GPIOs chosen for the meter: check them against UM3417 before wiring. */
#ifndef UNPU_BOARD_H
#define UNPU_BOARD_H

#define UNPU_USART_BASE 0x52001000u   /* USART1: the ST-LINK V3 virtual COM port (PE5 TX, PE6 RX, AF7) */
#define UNPU_PIN_TS_GPIO 0x56020C00u  /* GPIOD */
#define UNPU_PIN_TS_PIN 0             /* PD0: timestamp pin */
#define UNPU_PIN_STAGE_GPIO 0x56020C00u /* GPIOD */
#define UNPU_PIN_STAGE_PIN 1          /* PD1: stage pin */

#define UNPU_STM32_HAL_HEADER "stm32n6xx_hal.h"     /* the STM32Cube HAL of the series (family/stm32/stm32_hal.h) */
#endif
