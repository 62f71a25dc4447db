/* See stm32_hal.h. The HAL's 1 ms tick also wakes port.c's idle WFI. */
#include "stm32_hal.h"

void SysTick_Handler(void) { HAL_IncTick(); }

static void output_pin(uintptr_t port, uint32_t pin)
{
    GPIO_InitTypeDef init = {0};
    init.Pin = 1u << pin;
    init.Mode = GPIO_MODE_OUTPUT_PP;
    init.Pull = GPIO_NOPULL;
    init.Speed = GPIO_SPEED_FREQ_HIGH;
    HAL_GPIO_Init((GPIO_TypeDef *)port, &init);
}

void stm32_gpio_init(GPIO_TypeDef *uart_port, uint32_t uart_pins, uint32_t uart_af)
{
    GPIO_InitTypeDef init = {0};
    init.Pin = uart_pins;
    init.Mode = GPIO_MODE_AF_PP;
    init.Pull = GPIO_PULLUP;
    init.Speed = GPIO_SPEED_FREQ_HIGH;
    init.Alternate = uart_af;
    HAL_GPIO_Init(uart_port, &init);
    output_pin(UNPU_PIN_TS_GPIO, UNPU_PIN_TS_PIN);
    output_pin(UNPU_PIN_STAGE_GPIO, UNPU_PIN_STAGE_PIN);
}
