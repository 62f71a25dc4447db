/*
 * NUCLEO-N657X0-Q bring-up over STM32CubeN6 (HAL + BSP): the SDK-dependent half of the port
 * (../family/stm32/port.c is the SDK-free half, compiled with this directory's board.h).
 * The application is loaded into AXISRAM1 by the first-stage boot loader (STM32N6_FSBL), which also
 * sets the clocks; SystemCoreClockUpdate() reads what they are, so info% reports the real CPU clock.
 * Here: caches, USART1 on PE5/PE6 (AF7), the meter's pins, the Neural-ART (clock, reset, its four
 * 448 KiB RAMs, NPU cache, secure/privileged bus master) and the octo-SPI NOR memory-mapped at
 * 0x7000_0000, where stedgeai's weights are.
 */
#include "stm32_hal.h"
#include "stm32n6xx_nucleo_xspi.h"
#include "npu_cache.h"

#include "unpu_harness.h"
#include "unpu_port.h"

_Static_assert(UNPU_USART_BASE == USART1_BASE_S, "board.h: USART1 address");
_Static_assert(UNPU_PIN_TS_GPIO == GPIOD_BASE_S && UNPU_PIN_STAGE_GPIO == GPIOD_BASE_S, "board.h: GPIO addresses");

uint32_t stm32_uart_clock_hz(void) { return HAL_RCCEx_GetPeriphCLKFreq(RCC_PERIPHCLK_USART1); }

static void io_config(void)
{
    __HAL_RCC_GPIOD_CLK_ENABLE();
    __HAL_RCC_GPIOE_CLK_ENABLE();
    __HAL_RCC_USART1_CLK_ENABLE();
    stm32_gpio_init(GPIOE, GPIO_PIN_5 | GPIO_PIN_6, GPIO_AF7_USART1);
}

static void npu_config(void)
{
    RAMCFG_HandleTypeDef ram = {0};
    RAMCFG_TypeDef *const banks[] = {RAMCFG_SRAM3_AXI, RAMCFG_SRAM4_AXI, RAMCFG_SRAM5_AXI, RAMCFG_SRAM6_AXI};
    RIMC_MasterConfig_t master = {0};

    __HAL_RCC_NPU_CLK_ENABLE();
    __HAL_RCC_NPU_FORCE_RESET();
    __HAL_RCC_NPU_RELEASE_RESET();
    __HAL_RCC_AXISRAM3_MEM_CLK_ENABLE();
    __HAL_RCC_AXISRAM4_MEM_CLK_ENABLE();
    __HAL_RCC_AXISRAM5_MEM_CLK_ENABLE();
    __HAL_RCC_AXISRAM6_MEM_CLK_ENABLE();
    __HAL_RCC_RAMCFG_CLK_ENABLE();
    for (unsigned i = 0; i < sizeof banks / sizeof banks[0]; i++) {
        ram.Instance = banks[i];
        HAL_RAMCFG_EnableAXISRAM(&ram);   /* out of shutdown */
    }
    npu_cache_enable();
    __HAL_RCC_RIFSC_CLK_ENABLE();
    master.MasterCID = RIF_CID_1;
    master.SecPriv = RIF_ATTRIBUTE_SEC | RIF_ATTRIBUTE_PRIV;
    HAL_RIF_RIMC_ConfigMasterAttributes(RIF_MASTER_INDEX_NPU, &master);
    HAL_RIF_RISC_SetSlaveSecureAttributes(RIF_RISC_PERIPH_INDEX_NPU, RIF_ATTRIBUTE_SEC | RIF_ATTRIBUTE_PRIV);
}

static void flash_config(void)
{
    BSP_XSPI_NOR_Init_t nor = {.InterfaceMode = BSP_XSPI_NOR_OPI_MODE, .TransferRate = BSP_XSPI_NOR_DTR_TRANSFER};

    if (BSP_XSPI_NOR_Init(0, &nor) != BSP_ERROR_NONE || BSP_XSPI_NOR_EnableMemoryMappedMode(0) != BSP_ERROR_NONE)
        port_exit(82);
}

int main(void)
{
    MEMSYSCTL->MSCR |= MEMSYSCTL_MSCR_ICACTIVE_Msk | MEMSYSCTL_MSCR_DCACTIVE_Msk;
    HAL_Init();
    SCB_EnableICache();
    SCB_EnableDCache();
    SystemCoreClockUpdate();
    io_config();
    npu_config();
    flash_config();
    port_init();
    return unpu_harness_main();
}
