/*
 * unpu_port.h for GAP8 (GAPuino / AI-deck) on the fabric controller, over PMSIS (GAP SDK, FreeRTOS).
 *
 * Clock: the FC runs at UNPU_GAP_FREQ_FC_MHZ (pi_freq_set); the UART is opened after the change,
 * as its divider follows the SoC clock. UART: uart0 at UNPU_GAP_UART_BAUD, 8N1 (the GAPuino's FTDI
 * second channel). Reception keeps two 1-byte uDMA reads queued, so a byte that arrives while the
 * harness handles the previous one lands in the second transfer. uDMA buffers live in L2 (PI_L2).
 * Timer: PMSIS's PI_PERF_CYCLES on the FC, which counts FC clock cycles including those the FC
 * sleeps while the cluster works (a 32-bit timer, extended to 64 bits by common/ticks64.h); its
 * rate is pi_freq_get(PI_FREQ_DOMAIN_FC), reported by info% with the name "fc_cycles"; the delay is
 * common/port_defaults.c's busy-wait on it.
 * Pins (docs/protocol.md): timestamp and stage on GPIOs UNPU_GAP_PIN_TIMESTAMP / _STAGE, their pads
 * switched to the GPIO function. idle: pi_time_wait_us in <= 1 s steps (the FC sleeps until the
 * timer event), reading the cycle counter between steps so that its 32 bits never wrap unseen.
 */
#include <string.h>

#include "pmsis.h"

#include "ticks64.h"
#include "unpu_harness.h"
#include "unpu_port.h"

#ifndef UNPU_GAP_UART_BAUD
#define UNPU_GAP_UART_BAUD 115200
#endif
#ifndef UNPU_GAP_PIN_TIMESTAMP
#define UNPU_GAP_PIN_TIMESTAMP PI_GPIO_A0_PAD_12_A3
#define UNPU_GAP_PAD_TIMESTAMP PI_PAD_12_A3_RF_PACTRL0
#endif
#ifndef UNPU_GAP_PIN_STAGE
#define UNPU_GAP_PIN_STAGE PI_GPIO_A1_PAD_13_B2
#define UNPU_GAP_PAD_STAGE PI_PAD_13_B2_RF_PACTRL1
#endif
#define TX_CHUNK 128
#define IDLE_STEP_US 1000000u

static struct pi_device uart;
static struct pi_device gpio;
static PI_L2 uint8_t rx_byte[2];
static PI_L2 uint8_t tx_buf[TX_CHUNK];
static pi_task_t rx_task[2];
static int rx_next;
static uint32_t fc_hz;
static unpu_ticks_t cycles;

static void rx_arm(int slot)
{
    pi_task_block(&rx_task[slot]);
    pi_uart_read_async(&uart, &rx_byte[slot], 1, &rx_task[slot]);
}

static void pin_init(pi_gpio_e gpio_pin, pi_pad_e pad, int level)
{
    pi_pad_set_function(pad, PI_PAD_FUNC1);
    pi_gpio_pin_configure(&gpio, gpio_pin, PI_GPIO_OUTPUT);
    pi_gpio_pin_write(&gpio, gpio_pin, level);
}

void port_init(void)
{
    struct pi_uart_conf conf;

    pi_freq_set(PI_FREQ_DOMAIN_FC, UNPU_GAP_FREQ_FC_MHZ * 1000 * 1000);
    fc_hz = pi_freq_get(PI_FREQ_DOMAIN_FC);

    pi_uart_conf_init(&conf);
    conf.baudrate_bps = UNPU_GAP_UART_BAUD;
    conf.enable_tx = 1;
    conf.enable_rx = 1;
    pi_open_from_conf(&uart, &conf);
    if (pi_uart_open(&uart))
        pmsis_exit(-1);
    rx_arm(0);
    rx_arm(1);

    pin_init(UNPU_GAP_PIN_TIMESTAMP, UNPU_GAP_PAD_TIMESTAMP, 1);
    pin_init(UNPU_GAP_PIN_STAGE, UNPU_GAP_PAD_STAGE, 0);

    pi_perf_conf(1 << PI_PERF_CYCLES);
    pi_perf_reset();
    pi_perf_start();
}

int port_uart_getc(void)
{
    const int slot = rx_next;
    int c;
    pi_task_wait_on(&rx_task[slot]);
    c = rx_byte[slot];
    rx_arm(slot);
    rx_next ^= 1;
    return c;
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    while (len) {
        const uint32_t n = len < TX_CHUNK ? len : TX_CHUNK;
        memcpy(tx_buf, data, n);
        pi_uart_write(&uart, tx_buf, n);
        data += n;
        len -= n;
    }
}

uint64_t port_timer_ticks(void) { return unpu_ticks_extend(&cycles, (uint32_t)pi_perf_read(PI_PERF_CYCLES)); }

uint32_t port_timer_hz(void) { return fc_hz; }
const char *port_timer_name(void) { return "fc_cycles"; }

void port_idle_us(uint32_t us)
{
    while (us) {
        const uint32_t step = us < IDLE_STEP_US ? us : IDLE_STEP_US;
        pi_time_wait_us((int)step);
        (void)port_timer_ticks();
        us -= step;
    }
}

void port_pin_timestamp(int level) { pi_gpio_pin_write(&gpio, UNPU_GAP_PIN_TIMESTAMP, level ? 1 : 0); }
void port_pin_stage(int level) { pi_gpio_pin_write(&gpio, UNPU_GAP_PIN_STAGE, level ? 1 : 0); }

void port_exit(int code) { pmsis_exit(code); }

static void unpu_main(void)
{
    port_init();
    pmsis_exit(unpu_harness_main());
}

int main(void) { return pmsis_kickoff((void *)unpu_main); }
