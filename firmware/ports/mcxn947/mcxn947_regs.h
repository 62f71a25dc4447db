/*
 * Minimal register layouts for the unpu MCX N947 port (no SDK headers needed, so CI compiles
 * port.c with arm-none-eabi-gcc alone). Peripheral base addresses come from board_sdk.c, which
 * takes them from the SDK's device header and checks these offsets against the SDK's structs.
 */
#ifndef MCXN947_REGS_H
#define MCXN947_REGS_H

#include <stdint.h>

#define MCX_REG(base, off) (*(volatile uint32_t *)((base) + (off)))

/* LPUART (the UART function of an LP_FLEXCOMM instance) */
#define LPUART_BAUD 0x10u
#define LPUART_STAT 0x14u
#define LPUART_CTRL 0x18u
#define LPUART_DATA 0x1Cu
#define LPUART_FIFO 0x28u
#define LPUART_BAUD_OSR_SHIFT 24u
#define LPUART_BAUD_BOTHEDGE (1u << 17)
#define LPUART_BAUD_SBR_MASK 0x1FFFu
#define LPUART_STAT_TDRE (1u << 23)
#define LPUART_STAT_RDRF (1u << 21)
#define LPUART_STAT_OR (1u << 19)
#define LPUART_STAT_FE (1u << 17)
#define LPUART_STAT_NF (1u << 18)
#define LPUART_CTRL_TE (1u << 19)
#define LPUART_CTRL_RE (1u << 18)

/* RGPIO */
#define GPIO_PSOR 0x44u
#define GPIO_PCOR 0x48u
#define GPIO_PDDR 0x54u

/* Armv8-M SysTick */
#define SYST_CSR 0xE000E010u
#define SYST_RVR 0xE000E014u
#define SYST_CVR 0xE000E018u
#define REG32(addr) (*(volatile uint32_t *)(addr))

#endif /* MCXN947_REGS_H */
