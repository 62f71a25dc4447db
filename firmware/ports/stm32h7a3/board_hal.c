/*
 * NUCLEO-H7A3ZI-Q bring-up over STM32CubeH7 (HAL): the SDK-dependent half of the port
 * (../family/stm32/port.c is the SDK-free half). 280 MHz from HSI through PLL1 (VOS0, SMPS supply
 * as on the -Q parts), caches on, USART3 on PD8/PD9 (AF7) for the ST-LINK virtual COM port, PB0/PE1
 * as the meter's pins.
 */
#include "stm32_hal.h"
#include "unpu_harness.h"
#include "unpu_port.h"

_Static_assert(UNPU_USART_BASE == USART3_BASE, "board.h: USART3 address");
_Static_assert(UNPU_PIN_TS_GPIO == GPIOB_BASE && UNPU_PIN_STAGE_GPIO == GPIOE_BASE, "board.h: GPIO addresses");

uint32_t stm32_uart_clock_hz(void) { return HAL_RCC_GetPCLK1Freq(); }   /* USART3 kernel clock: rcc_pclk1 */

static void clock_config(void)
{
    RCC_OscInitTypeDef osc = {0};
    RCC_ClkInitTypeDef clk = {0};

    HAL_PWREx_ConfigSupply(PWR_DIRECT_SMPS_SUPPLY);
    __HAL_PWR_VOLTAGESCALING_CONFIG(PWR_REGULATOR_VOLTAGE_SCALE0);
    while (!__HAL_PWR_GET_FLAG(PWR_FLAG_VOSRDY)) {
    }
    osc.OscillatorType = RCC_OSCILLATORTYPE_HSI;
    osc.HSIState = RCC_HSI_DIV1;                 /* 64 MHz */
    osc.HSICalibrationValue = RCC_HSICALIBRATION_DEFAULT;
    osc.PLL.PLLState = RCC_PLL_ON;
    osc.PLL.PLLSource = RCC_PLLSOURCE_HSI;
    osc.PLL.PLLM = 4;                            /* 16 MHz reference */
    osc.PLL.PLLN = 35;                           /* 560 MHz VCO */
    osc.PLL.PLLP = 2;                            /* 280 MHz system clock */
    osc.PLL.PLLQ = 4;
    osc.PLL.PLLR = 2;
    osc.PLL.PLLRGE = RCC_PLL1VCIRANGE_3;
    osc.PLL.PLLVCOSEL = RCC_PLL1VCOWIDE;
    osc.PLL.PLLFRACN = 0;
    if (HAL_RCC_OscConfig(&osc) != HAL_OK)
        port_exit(80);
    clk.ClockType = RCC_CLOCKTYPE_HCLK | RCC_CLOCKTYPE_SYSCLK | RCC_CLOCKTYPE_PCLK1 | RCC_CLOCKTYPE_PCLK2 |
                    RCC_CLOCKTYPE_D3PCLK1 | RCC_CLOCKTYPE_D1PCLK1;
    clk.SYSCLKSource = RCC_SYSCLKSOURCE_PLLCLK;
    clk.SYSCLKDivider = RCC_SYSCLK_DIV1;
    clk.AHBCLKDivider = RCC_HCLK_DIV1;
    clk.APB3CLKDivider = RCC_APB3_DIV2;
    clk.APB1CLKDivider = RCC_APB1_DIV2;
    clk.APB2CLKDivider = RCC_APB2_DIV2;
    clk.APB4CLKDivider = RCC_APB4_DIV2;
    if (HAL_RCC_ClockConfig(&clk, FLASH_LATENCY_6) != HAL_OK)
        port_exit(81);
}

static void io_config(void)
{
    __HAL_RCC_GPIOB_CLK_ENABLE();
    __HAL_RCC_GPIOD_CLK_ENABLE();
    __HAL_RCC_GPIOE_CLK_ENABLE();
    __HAL_RCC_USART3_CLK_ENABLE();
    stm32_gpio_init(GPIOD, GPIO_PIN_8 | GPIO_PIN_9, GPIO_AF7_USART3);
}

int main(void)
{
    SCB_EnableICache();
    SCB_EnableDCache();
    HAL_Init();
    clock_config();
    SystemCoreClockUpdate();
    io_config();
    port_init();
    return unpu_harness_main();
}
