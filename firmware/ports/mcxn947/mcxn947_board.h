/*
 * What board_sdk.c (the only file that needs the MCUXpresso SDK) gives port.c: clocks, pin mux,
 * the debug UART's LP_FLEXCOMM in UART mode, and the peripheral addresses from the SDK's header.
 */
#ifndef MCXN947_BOARD_H
#define MCXN947_BOARD_H

#include <stdint.h>

typedef struct {
    uintptr_t uart_base;        /* LPUART of the debug LP_FLEXCOMM (FRDM-MCXN947: FLEXCOMM4, MCU-Link VCOM) */
    uint32_t uart_clock_hz;     /* its functional clock */
    uintptr_t ts_gpio_base;     /* RGPIO instance and pin of the timestamp pin */
    uint32_t ts_pin;
    uintptr_t stage_gpio_base;  /* ... and of the stage pin */
    uint32_t stage_pin;
} mcx_board_t;

/* Core at 150 MHz (the SDK's BOARD_BootClockPLL150M), UART and pins muxed and clocked. */
void mcx_board_init(mcx_board_t *out);

#endif /* MCXN947_BOARD_H */
