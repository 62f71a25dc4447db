/* QEMU mps3-an547: Arm Corstone SSE-300 FPGA image, Cortex-M55 (Secure aliases). */
#ifndef BOARD_H
#define BOARD_H
#define BOARD_NAME "qemu_m55"
#define BOARD_UART0_BASE 0x59303000u
#define BOARD_FPGAIO_BASE 0x59302000u
#define BOARD_CPU_HZ 32000000u       /* QEMU's AN547 SYSCLK */
#define BOARD_SYSTICK_HZ 32000000u   /* SysTick on the core clock (CLKSOURCE=1) */
#endif
