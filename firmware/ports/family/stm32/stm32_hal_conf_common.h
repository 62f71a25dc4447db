/* HAL configuration values the STM32 boards share; their stm32xxxx_hal_conf.h includes this after
 * the series' own values (oscillators that differ, enabled modules). */
#ifndef UNPU_STM32_HAL_CONF_COMMON_H
#define UNPU_STM32_HAL_CONF_COMMON_H

#define LSE_VALUE 32768UL
#define LSE_STARTUP_TIMEOUT 5000UL
#define LSI_VALUE 32000UL
#define EXTERNAL_CLOCK_VALUE 12288000UL
#define VDD_VALUE 3300UL
#define TICK_INT_PRIORITY 0x0FUL
#define USE_RTOS 0

#define assert_param(expr) ((void)0U)

#endif
