/* NUCLEO-H7A3ZI-Q (MB1363, UM2408): what firmware/ports/family/stm32/port.c touches.
 * board_hal.c checks these addresses against STM32CubeH7's device header at build time. */
#ifndef UNPU_BOARD_H
#define UNPU_BOARD_H

#define UNPU_USART_BASE 0x40004800u   /* USART3: the ST-LINK V3 virtual COM port (PD8 TX, PD9 RX, AF7) */
#define UNPU_PIN_TS_GPIO 0x58020400u  /* GPIOB */
#define UNPU_PIN_TS_PIN 0             /* PB0 = LD1 (green): timestamp pin */
#define UNPU_PIN_STAGE_GPIO 0x58021000u /* GPIOE */
#define UNPU_PIN_STAGE_PIN 1          /* PE1 = LD2 (yellow): stage pin */

#define UNPU_STM32_HAL_HEADER "stm32h7xx_hal.h"     /* the STM32Cube HAL of the series (family/stm32/stm32_hal.h) */
#endif
