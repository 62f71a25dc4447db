/*
 * Corstone-300 FVP additions to the Arm MPS2/MPS3 family port (../family/arm_mps): main() that
 * runs static C++ constructors first (instead of common/main.c), and the Ethos-U55 interrupt. The
 * family's vector table has the 16 core exceptions only; the NPU's IRQ 56 needs a longer table, so
 * port_npu_irq_enable() copies it to RAM, adds the NPU entry and moves VTOR.
 */
#include <stdint.h>
#include <string.h>

#include "cmsdk_port.h"
#include "unpu_harness.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define SCB_VTOR REG(0xE000ED08u)
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))

#define CORE_VECTORS 16u
#define TABLE_ENTRIES 128u   /* >= 16 + 57, a power of two: VTOR needs the table aligned to its size */

typedef void (*vector_t)(void);

extern vector_t __init_array_start[], __init_array_end[];
extern void Default_Handler(void);
extern void unpu_ethosu_irq_handler(void);

static vector_t ram_vectors[TABLE_ENTRIES] __attribute__((aligned(TABLE_ENTRIES * 4u)));

void port_npu_irq_enable(void)
{
    const vector_t *boot = (const vector_t *)SCB_VTOR;
    uint32_t i;
    for (i = 0; i < TABLE_ENTRIES; i++)
        ram_vectors[i] = i < CORE_VECTORS ? boot[i] : Default_Handler;
    ram_vectors[CORE_VECTORS + BOARD_NPU_IRQ] = unpu_ethosu_irq_handler;
    __asm volatile("cpsid i" ::: "memory");
    SCB_VTOR = (uint32_t)ram_vectors;
    __asm volatile("dsb\n isb\n cpsie i" ::: "memory");
    NVIC_ISER(BOARD_NPU_IRQ / 32u) = 1u << (BOARD_NPU_IRQ % 32u);
}

int main(void)
{
    vector_t *ctor;
    for (ctor = __init_array_start; ctor < __init_array_end; ctor++)
        (*ctor)();
    port_init();
    return unpu_harness_main();
}
