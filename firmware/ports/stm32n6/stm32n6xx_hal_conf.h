/* The HAL modules the stm32n6 port uses (STM32CubeN6's stm32n6xx_hal.h includes this file). */
#ifndef STM32N6xx_HAL_CONF_H
#define STM32N6xx_HAL_CONF_H

#define HAL_MODULE_ENABLED
#define HAL_CORTEX_MODULE_ENABLED
#define HAL_GPIO_MODULE_ENABLED
#define HAL_PWR_MODULE_ENABLED
#define HAL_RAMCFG_MODULE_ENABLED
#define HAL_RCC_MODULE_ENABLED
#define HAL_RIF_MODULE_ENABLED
#define HAL_XSPI_MODULE_ENABLED

#define HSE_VALUE 48000000UL
#define HSE_STARTUP_TIMEOUT 100UL
#define HSI_VALUE 64000000UL
#define MSI_VALUE 4000000UL

#include "stm32_hal_conf_common.h"

#include "stm32n6xx_hal_rcc.h"
#include "stm32n6xx_hal_gpio.h"
#include "stm32n6xx_hal_cortex.h"
#include "stm32n6xx_hal_pwr.h"
#include "stm32n6xx_hal_ramcfg.h"
#include "stm32n6xx_hal_rif.h"
#include "stm32n6xx_hal_xspi.h"

#endif
