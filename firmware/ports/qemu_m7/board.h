/* QEMU mps2-an500: Arm MPS2 FPGA image, Cortex-M7 (double-precision FPU, as the STM32H7A3's).
 * Addresses and clock from QEMU's hw/arm/mps2.c (the AN385/AN386/AN500 map; SYSCLK_FRQ). */
#ifndef BOARD_H
#define BOARD_H
#define BOARD_NAME "qemu_m7"
#define BOARD_UART0_BASE 0x40004000u
#define BOARD_FPGAIO_BASE 0x40028000u
#define BOARD_CPU_HZ 25000000u       /* QEMU's MPS2 SYSCLK, also the core's cpuclk */
#define BOARD_SYSTICK_HZ 25000000u   /* SysTick on the core clock (CLKSOURCE=1) */
#endif
