/*
 * Cortex-M startup for the Arm MPS2/MPS3 ports (Armv7-M and Armv8-M Mainline cores): vector table,
 * Reset (copy .data, zero .bss, enable the FPU/MVE coprocessors, call main) and fault handlers that
 * report and exit. With the Security Extension the core runs all of this Secure, from the vector
 * table at its Secure VTOR (the port's linker script puts CODE there). Symbols come from the port's
 * linker script (see qemu_m55/qemu_m55.ld).
 */
#include <stdint.h>
#include <string.h>

#include "cmsdk_port.h"

extern uint32_t __etext_data, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top__;
extern uint32_t __arena_start__, __arena_end__;
extern int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);

static void fault(const char *what, int code)
{
    cmsdk_uart_puts("e-[");
    cmsdk_uart_puts(what);
    cmsdk_uart_puts("]\r\n");
    port_exit(code);
}

void NMI_Handler(void) { fault("nmi", 70); }
void HardFault_Handler(void) { fault("hardfault", 71); }
void MemManage_Handler(void) { fault("memmanage", 72); }
void BusFault_Handler(void) { fault("busfault", 73); }
void UsageFault_Handler(void) { fault("usagefault", 74); }
void SecureFault_Handler(void) { fault("securefault", 75); }
void Default_Handler(void) { fault("unexpected interrupt", 76); }

typedef void (*vector_t)(void);

__attribute__((section(".vectors"), used)) const vector_t unpu_vectors[16] = {
    (vector_t)&__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler,   /* Armv8-M with the Security Extension; reserved on Armv7-M */
    0, 0, 0,
    Default_Handler,   /* SVCall */
    Default_Handler,   /* DebugMonitor */
    0,
    Default_Handler,   /* PendSV */
    SysTick_Handler,
};

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_ID_PFR1 (*(volatile uint32_t *)0xE000ED44u)

void __attribute__((noreturn, used)) Reset_Handler(void)
{
    uint32_t *src = &__etext_data, *dst = &__data_start__;
    while (dst < &__data_end__)
        *dst++ = *src++;
    for (dst = &__bss_start__; dst < &__bss_end__;)
        *dst++ = 0;
    for (dst = &__arena_start__; dst < &__arena_end__;)   /* static storage is zero in C */
        *dst++ = 0;
    /* CP10/CP11 full access: the FPU (M4F, M7, M33) and FPU + MVE/Helium (M55). */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n isb" ::: "memory");
    /* Separate MemManage/BusFault/UsageFault handlers, so a fault names itself. */
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    if (SCB_ID_PFR1 & 0xF0u)   /* Security Extension: SecureFault too (else it escalates to HardFault) */
        SCB_SHCSR |= 1u << 19;
#endif
    port_exit(main());
    for (;;) {
    }
}
