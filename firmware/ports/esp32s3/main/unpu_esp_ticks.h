/*
 * The ESP32-S3 port's timekeeping arithmetic, free of ESP-IDF headers so that it compiles (and is
 * tested) anywhere: the Xtensa core's 32-bit cycle counter (CCOUNT) is extended to 64 bits by
 * common/ticks64.h, and an idle wait is split into RTOS ticks and a busy-waited remainder.
 */
#ifndef UNPU_ESP_TICKS_H
#define UNPU_ESP_TICKS_H

#include <stdint.h>

#include "ticks64.h"

/* The longest piece port_idle_us() waits in one go before it refreshes the extension. */
#define UNPU_IDLE_CHUNK_US 1000000u

/* `us` as whole RTOS ticks of `tick_us` each (for vTaskDelay) plus the remaining microseconds. */
void unpu_idle_split(uint32_t us, uint32_t tick_us, uint32_t *ticks, uint32_t *rest_us);

#endif /* UNPU_ESP_TICKS_H */
