/*
 * The STM32 family's SDK side shared by the boards' board_hal.c (stm32_hal.c), over the STM32Cube
 * HAL of the board's series: board.h names its header (UNPU_STM32_HAL_HEADER).
 */
#ifndef UNPU_FAMILY_STM32_HAL_H
#define UNPU_FAMILY_STM32_HAL_H

#include <stdint.h>

#include "board.h"
#include UNPU_STM32_HAL_HEADER

/* The virtual COM port USART's TX/RX pins (`uart_pins` of `uart_port`) in alternate function
 * `uart_af`, and the meter's two pins (board.h) as push-pull outputs. The GPIO clocks must be on. */
void stm32_gpio_init(GPIO_TypeDef *uart_port, uint32_t uart_pins, uint32_t uart_af);

/* The USART's kernel clock, for the baud divider of port.c (the board's board_hal.c). */
uint32_t stm32_uart_clock_hz(void);

#endif /* UNPU_FAMILY_STM32_HAL_H */
