/*
 * Shared implementation of unpu_port.h for Arm MPS2/MPS3 FPGA images as emulated by QEMU
 * (CMSDK APB UART, FPGAIO LED register as marker pins, SysTick, semihosting).
 * Each port directory provides board.h with the addresses and clocks below.
 */
#ifndef CMSDK_PORT_H
#define CMSDK_PORT_H

#include <stdint.h>

#include "board.h"      /* BOARD_UART0_BASE, BOARD_FPGAIO_BASE, BOARD_CPU_HZ, BOARD_SYSTICK_HZ, BOARD_NAME */
#include "unpu_port.h"

void cmsdk_uart_puts(const char *s);
void SysTick_Handler(void);

/* Semihosting (BKPT 0xAB): SYS_EXIT_EXTENDED and SYS_WRITE0 (debug output on QEMU's stdout). */
void semihost_exit(int code);
void semihost_write0(const char *s);

#endif /* CMSDK_PORT_H */
