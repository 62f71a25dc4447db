/* See unpu_esp_ticks.h. */
#include "unpu_esp_ticks.h"

void unpu_idle_split(uint32_t us, uint32_t tick_us, uint32_t *ticks, uint32_t *rest_us)
{
    if (tick_us == 0) {
        *ticks = 0;
        *rest_us = us;
        return;
    }
    *ticks = us / tick_us;
    *rest_us = us % tick_us;
}
