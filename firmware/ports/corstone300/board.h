/* Arm Corstone-300 FVP (FVP_Corstone_SSE-300_Ethos-U55): the SSE-300 map QEMU's mps3-an547 also
 * models (Secure aliases), plus the Ethos-U55 (register base and IRQ as in Arm's Corstone-300
 * platform: 0x4810_2000, IRQ 56). Clocks are the board YAML's (-DUNPU_CPU_HZ); the FVP is not
 * cycle-accurate, so they only scale what the firmware reports. */
#ifndef BOARD_H
#define BOARD_H
#define BOARD_NAME "corstone300"
#define BOARD_UART0_BASE 0x59303000u
#define BOARD_FPGAIO_BASE 0x59302000u
#ifndef UNPU_CPU_HZ
#define UNPU_CPU_HZ 32000000u
#endif
#define BOARD_CPU_HZ UNPU_CPU_HZ
#define BOARD_SYSTICK_HZ UNPU_CPU_HZ
#define BOARD_NPU_IRQ 56u
#endif
