/* The HAL modules the stm32h7a3 port uses, and the board's oscillator values (STM32CubeH7's
 * stm32h7xx_hal.h includes this file). */
#ifndef STM32H7xx_HAL_CONF_H
#define STM32H7xx_HAL_CONF_H

#define HAL_MODULE_ENABLED
#define HAL_CORTEX_MODULE_ENABLED
#define HAL_FLASH_MODULE_ENABLED
#define HAL_GPIO_MODULE_ENABLED
#define HAL_PWR_MODULE_ENABLED
#define HAL_RCC_MODULE_ENABLED

#define HSE_VALUE 8000000UL            /* ST-LINK MCO (not used: the port runs from HSI) */
#define HSE_STARTUP_TIMEOUT 5000UL
#define CSI_VALUE 4000000UL
#define HSI_VALUE 64000000UL
#define USE_SD_TRANSCEIVER 0
#define USE_SPI_CRC 0

#include "stm32_hal_conf_common.h"

#include "stm32h7xx_hal_rcc.h"
#include "stm32h7xx_hal_gpio.h"
#include "stm32h7xx_hal_cortex.h"
#include "stm32h7xx_hal_flash.h"
#include "stm32h7xx_hal_pwr.h"

#endif
