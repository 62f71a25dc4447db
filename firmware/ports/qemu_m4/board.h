/* QEMU mps2-an386: Arm MPS2 FPGA image, Cortex-M4F. */
#ifndef BOARD_H
#define BOARD_H
#define BOARD_NAME "qemu_m4"
#define BOARD_UART0_BASE 0x40004000u
#define BOARD_FPGAIO_BASE 0x40028000u
#define BOARD_CPU_HZ 25000000u       /* QEMU's MPS2 SYSCLK */
#define BOARD_SYSTICK_HZ 25000000u   /* SysTick on the core clock (CLKSOURCE=1) */
#endif
