/*
 * The Arm Ethos-U core driver's data-cache hooks (weak in the driver) for Cortex-M7/M55 cores with
 * a data cache: the NPU reads the arena's inputs and writes its outputs behind the core's cache.
 * flush = clean, invalidate = clean and invalidate (a dirty line the NPU's output overlaps must not
 * be written back over it later), by address range or, for a NULL pointer, the whole cache.
 * Nothing happens while the cache is off. Cache maintenance registers as the Armv7-M / Armv8-M
 * Architecture Reference Manuals define them, so no vendor CMSIS header is needed.
 */
#include <stddef.h>
#include <stdint.h>

#define REG(addr) (*(volatile uint32_t *)(addr))
#define SCB_CCR REG(0xE000ED14u)
#define CCR_DC (1u << 16)
#define CCSIDR REG(0xE000ED80u)
#define CSSELR REG(0xE000ED84u)
#define DCCMVAC 0xE000EF68u   /* clean by address */
#define DCCSW 0xE000EF6Cu     /* clean by set/way */
#define DCCIMVAC 0xE000EF70u  /* clean and invalidate by address */
#define DCCISW 0xE000EF74u    /* clean and invalidate by set/way */

void ethosu_flush_dcache(uint32_t *p, size_t bytes);
void ethosu_invalidate_dcache(uint32_t *p, size_t bytes);

static inline void barriers(void) { __asm volatile("dsb\n isb" ::: "memory"); }

static uint32_t level1_data_cache(void)
{
    CSSELR = 0u;
    __asm volatile("dsb" ::: "memory");
    return CCSIDR;
}

static void by_address(uint32_t op, uintptr_t start, size_t bytes, uint32_t line)
{
    const uintptr_t end = start + bytes;
    __asm volatile("dsb" ::: "memory");
    for (uintptr_t a = start & ~(uintptr_t)(line - 1u); a < end; a += line)
        REG(op) = (uint32_t)a;
    barriers();
}

/* Every line of every way: way in the top bits, set above the line offset (CCSIDR geometry). */
static void by_set_way(uint32_t op, uint32_t ccsidr, uint32_t line_shift)
{
    const uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    const uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    const uint32_t way_shift = ways > 1u ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (uint32_t set = 0; set < sets; set++)
        for (uint32_t way = 0; way < ways; way++)
            REG(op) = (way << way_shift) | (set << line_shift);
    barriers();
}

static void maintain(uint32_t *p, size_t bytes, uint32_t op_address, uint32_t op_set_way)
{
    if (!(SCB_CCR & CCR_DC))
        return;
    const uint32_t ccsidr = level1_data_cache();
    const uint32_t line_shift = (ccsidr & 7u) + 4u;
    if (p)
        by_address(op_address, (uintptr_t)p, bytes, 1u << line_shift);
    else
        by_set_way(op_set_way, ccsidr, line_shift);
}

void ethosu_flush_dcache(uint32_t *p, size_t bytes) { maintain(p, bytes, DCCMVAC, DCCSW); }
void ethosu_invalidate_dcache(uint32_t *p, size_t bytes) { maintain(p, bytes, DCCIMVAC, DCCISW); }
