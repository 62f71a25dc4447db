/*
 * unpu_port.h's stage timer on the DWT cycle counter (cortex_m.c), for Cortex-M boards whose
 * counter counts. The port calls cm_dwt_start() in port_init() and gives the core clock as
 * port_timer_hz().
 */
#include "cortex_m.h"
#include "unpu_port.h"

uint64_t port_timer_ticks(void) { return cm_dwt_ticks(); }
const char *port_timer_name(void) { return "dwt"; }
