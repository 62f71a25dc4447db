/*
 * unpu_port.h for the STM32 boards (stm32h7a3: Cortex-M7, stm32n6: Cortex-M55), SDK-free: the
 * registers it touches are defined here (addresses in the board's board.h), so harness + port
 * compile without STM32Cube (CI does).
 *
 * UART: the board's ST-LINK virtual COM port USART, polled, 8N1; the board's SDK part (board_hal.c)
 * enables its clock and pins and gives the USART kernel clock (stm32_uart_clock_hz) for the divider.
 * Timer: the DWT cycle counter (common/port_dwt.c) at SystemCoreClock (CMSIS, set by the SDK's
 * clock code). Pins: two GPIO outputs (board.h: timestamp and stage pin), driven through BSRR.
 * Idle: WFI, woken by the SDK's 1 ms SysTick (HAL tick), until the DWT says the time is up.
 * Exit: a system reset (AIRCR), so the board is ready for the next run.
 */
#include <stdint.h>

#include "board.h"
#include "cortex_m.h"
#include "unpu_port.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

/* USART (same IP on STM32H7 and STM32N6; RM0455 / RM0486) */
#define USART_CR1 REG(UNPU_USART_BASE + 0x00u)
#define USART_BRR REG(UNPU_USART_BASE + 0x0Cu)
#define USART_ISR REG(UNPU_USART_BASE + 0x1Cu)
#define USART_ICR REG(UNPU_USART_BASE + 0x20u)
#define USART_RDR REG(UNPU_USART_BASE + 0x24u)
#define USART_TDR REG(UNPU_USART_BASE + 0x28u)
#define CR1_UE (1u << 0)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define ISR_ERRORS 0x0Fu          /* PE, FE, NE, ORE */
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)

/* GPIO output set/reset */
#define GPIO_BSRR(base) REG((base) + 0x18u)

#define SCB_AIRCR REG(0xE000ED0Cu)     /* Armv7-M / Armv8-M system control */

#ifndef UNPU_BAUDRATE
#define UNPU_BAUDRATE 115200
#endif

extern uint32_t SystemCoreClock;            /* CMSIS system file of the STM32Cube package */
extern uint32_t stm32_uart_clock_hz(void);  /* board_hal.c */

void port_init(void)
{
    USART_CR1 = 0;
    USART_BRR = (stm32_uart_clock_hz() + UNPU_BAUDRATE / 2u) / UNPU_BAUDRATE;   /* oversampling by 16 */
    USART_CR1 = CR1_UE | CR1_RE | CR1_TE;
    (void)cm_dwt_start();
    port_pin_timestamp(1);
    port_pin_stage(0);
}

int port_uart_getc(void)
{
    for (;;) {
        uint32_t isr = USART_ISR;
        if (isr & ISR_ERRORS)
            USART_ICR = ISR_ERRORS;         /* an overrun must not stall reception */
        if (isr & ISR_RXNE)
            return (int)(USART_RDR & 0xFFu);
    }
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        while (!(USART_ISR & ISR_TXE)) {
        }
        USART_TDR = data[i];
    }
}

uint32_t port_timer_hz(void) { return SystemCoreClock; }

void port_idle_us(uint32_t us)
{
    uint64_t end = port_timer_ticks() + ((uint64_t)us * SystemCoreClock + 999999u) / 1000000u;
    while (port_timer_ticks() < end)
        __asm volatile("wfi" ::: "memory");   /* the 1 ms HAL tick wakes the core; 32-bit DWT wraps in > 4 s */
}

void port_pin_timestamp(int level)
{
    GPIO_BSRR(UNPU_PIN_TS_GPIO) = level ? (1u << UNPU_PIN_TS_PIN) : (1u << (UNPU_PIN_TS_PIN + 16));
}

void port_pin_stage(int level)
{
    GPIO_BSRR(UNPU_PIN_STAGE_GPIO) = level ? (1u << UNPU_PIN_STAGE_PIN) : (1u << (UNPU_PIN_STAGE_PIN + 16));
}

void port_exit(int code)
{
    (void)code;
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = 0x05FA0004u;               /* VECTKEY | SYSRESETREQ */
    for (;;) {
    }
}
