/* QEMU mps2-an505: Arm MPS2 FPGA image AN505, a Cortex-M33 in Arm's ARMv8-M IoT Kit subsystem,
 * booting Secure. QEMU's hw/arm/mps2-tz.c puts the FPGA peripherals behind peripheral protection
 * controllers (apb_ppcexp1 port 5: uart0 at 0x4020_0000; apb_ppcexp2 port 2: fpgaio at
 * 0x4030_2000); the Secure code reaches them at their Secure aliases (+ 0x1000_0000). */
#ifndef BOARD_H
#define BOARD_H
#define BOARD_NAME "qemu_m33"
#define BOARD_UART0_BASE 0x50200000u
#define BOARD_FPGAIO_BASE 0x50302000u
#define BOARD_CPU_HZ 20000000u       /* QEMU's AN505 SYSCLK = the IoT Kit's MAINCLK = the core's cpuclk */
#define BOARD_SYSTICK_HZ 20000000u   /* SysTick on the core clock (CLKSOURCE=1; QEMU gives it no refclk) */
#endif
