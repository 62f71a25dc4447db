/*
 * unpu_port.h for the Espressif ESP32-S3 (ESP32-S3-DevKitC-1) over ESP-IDF >= 5.1, and app_main.
 *
 * The harness runs in one FreeRTOS task pinned to core UNPU_ESP_CORE: the timer is that core's own
 * cycle counter, so the task must never migrate.
 *
 * Link (UNPU_ESP_LINK): 0 = UART driver on UNPU_ESP_UART (UART0 = the DevKitC's USB-UART bridge,
 *   "UART" connector) at UNPU_ESP_BAUDRATE 8N1; 1 = the USB-Serial-JTAG driver ("USB" connector).
 *   Every line is sent completely before port_uart_write returns, so no UART interrupt fires
 *   inside a timed window after an answer.
 * Timer: CCOUNT, the Xtensa LX7 cycle counter at the CPU clock, extended to 64 bits; the clock is
 *   read from ESP-IDF's clock tree at start-up (never a constant). info% names it "ccount".
 * Pins (docs/protocol.md "Pins"): UNPU_ESP_PIN_TIMESTAMP and UNPU_ESP_PIN_STAGE are GPIO numbers
 *   (-1 = not wired: a no-op).
 * Idle: vTaskDelay (the core waits in WAITI in the idle task) plus a busy-waited remainder, or,
 *   with UNPU_ESP_IDLE_LIGHT_SLEEP=1 (UART link only), light sleep woken by the RTC timer.
 * The build's defines come from unpu_build.h, force-included by main/CMakeLists.txt.
 */
#include <stddef.h>
#include <stdint.h>

#include "driver/gpio.h"
#include "esp_clk_tree.h"
#include "esp_cpu.h"
#include "esp_rom_sys.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "unpu_esp_ticks.h"
#include "unpu_harness.h"
#include "unpu_port.h"

#ifndef UNPU_ESP_LINK
#define UNPU_ESP_LINK 0
#endif
#ifndef UNPU_ESP_UART
#define UNPU_ESP_UART 0
#endif
#ifndef UNPU_ESP_BAUDRATE
#define UNPU_ESP_BAUDRATE 115200
#endif
#ifndef UNPU_ESP_PIN_TIMESTAMP
#define UNPU_ESP_PIN_TIMESTAMP (-1)
#endif
#ifndef UNPU_ESP_PIN_STAGE
#define UNPU_ESP_PIN_STAGE (-1)
#endif
#ifndef UNPU_ESP_CORE
#define UNPU_ESP_CORE 1
#endif
#ifndef UNPU_ESP_STACK_BYTES
#define UNPU_ESP_STACK_BYTES 16384
#endif
#ifndef UNPU_ESP_PRIORITY
#define UNPU_ESP_PRIORITY 5
#endif
#ifndef UNPU_ESP_IDLE_LIGHT_SLEEP
#define UNPU_ESP_IDLE_LIGHT_SLEEP 0
#endif

#if UNPU_ESP_LINK == 1
#include "driver/usb_serial_jtag.h"
#if UNPU_ESP_IDLE_LIGHT_SLEEP
#error "light sleep drops the USB-Serial-JTAG link: use the UART link or idle without light sleep"
#endif
#else
#include "driver/uart.h"
#endif
#if UNPU_ESP_IDLE_LIGHT_SLEEP
#include "esp_sleep.h"
#endif

#define RX_BUFFER_BYTES 8192
#define RX_CHUNK 64

static uint32_t cpu_hz;
static unpu_ticks_t ccount;
static uint8_t rx[RX_CHUNK];
static int rx_len, rx_pos;

/* ---- link ----------------------------------------------------------------------------------- */
#if UNPU_ESP_LINK == 1
static void link_init(void)
{
    usb_serial_jtag_driver_config_t cfg = USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT();
    cfg.rx_buffer_size = RX_BUFFER_BYTES;
    ESP_ERROR_CHECK(usb_serial_jtag_driver_install(&cfg));
}

static int link_read(uint8_t *buf, uint32_t cap)
{
    int n;
    while ((n = usb_serial_jtag_read_bytes(buf, cap, portMAX_DELAY)) == 0) {
    }
    return n;
}

static void link_write(const uint8_t *data, uint32_t len)
{
    while (len > 0) {
        int sent = usb_serial_jtag_write_bytes(data, len, portMAX_DELAY);
        if (sent <= 0)
            return;
        data += sent;
        len -= (uint32_t)sent;
    }
}

static void link_flush(void) {}
#else
static void link_init(void)
{
    const uart_config_t cfg = {
        .baud_rate = UNPU_ESP_BAUDRATE,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    ESP_ERROR_CHECK(uart_driver_install(UNPU_ESP_UART, RX_BUFFER_BYTES, 0, 0, NULL, 0));
    ESP_ERROR_CHECK(uart_param_config(UNPU_ESP_UART, &cfg));
}

/* Blocks for one byte, then takes whatever else is already buffered (up to cap). */
static int link_read(uint8_t *buf, uint32_t cap)
{
    int n;
    size_t more = 0;
    while ((n = uart_read_bytes(UNPU_ESP_UART, buf, 1, portMAX_DELAY)) == 0) {
    }
    if (n < 0)
        return n;
    uart_get_buffered_data_len(UNPU_ESP_UART, &more);
    if (more > cap - 1)
        more = cap - 1;
    if (more > 0) {
        int got = uart_read_bytes(UNPU_ESP_UART, buf + 1, more, 0);
        if (got > 0)
            n += got;
    }
    return n;
}

static void link_write(const uint8_t *data, uint32_t len)
{
    uart_write_bytes(UNPU_ESP_UART, data, len);
}

static void link_flush(void)
{
    uart_wait_tx_done(UNPU_ESP_UART, portMAX_DELAY);
}
#endif

int port_uart_getc(void)
{
    if (rx_pos < rx_len)
        return rx[rx_pos++];
    rx_len = link_read(rx, sizeof rx);
    if (rx_len <= 0) {
        rx_len = rx_pos = 0;
        return -1;
    }
    rx_pos = 1;
    return rx[0];
}

void port_uart_write(const uint8_t *data, uint32_t len)
{
    link_write(data, len);
    link_flush();
}

/* ---- timer ---------------------------------------------------------------------------------- */
uint64_t port_timer_ticks(void) { return unpu_ticks_extend(&ccount, (uint32_t)esp_cpu_get_cycle_count()); }
uint32_t port_timer_hz(void) { return cpu_hz; }
const char *port_timer_name(void) { return "ccount"; }

void port_delay_us(uint32_t us) { esp_rom_delay_us(us); }

static void idle_chunk(uint32_t us)
{
#if UNPU_ESP_IDLE_LIGHT_SLEEP
    link_flush();
    esp_sleep_enable_timer_wakeup(us);
    esp_light_sleep_start();
#else
    uint32_t ticks, rest;
    unpu_idle_split(us, 1000u * portTICK_PERIOD_MS, &ticks, &rest);
    if (ticks > 0)
        vTaskDelay((TickType_t)ticks);
    esp_rom_delay_us(rest);
#endif
}

void port_idle_us(uint32_t us)
{
    while (us > 0) {
        uint32_t chunk = us > UNPU_IDLE_CHUNK_US ? UNPU_IDLE_CHUNK_US : us;
        idle_chunk(chunk);
        (void)port_timer_ticks();   /* keeps the 64-bit extension current across a long idle */
        us -= chunk;
    }
}

/* ---- pins ----------------------------------------------------------------------------------- */
static void pins_init(void)
{
    uint64_t mask = 0;
#if UNPU_ESP_PIN_TIMESTAMP >= 0
    mask |= 1ull << UNPU_ESP_PIN_TIMESTAMP;
#endif
#if UNPU_ESP_PIN_STAGE >= 0
    mask |= 1ull << UNPU_ESP_PIN_STAGE;
#endif
    if (mask == 0)
        return;
    const gpio_config_t io = {
        .pin_bit_mask = mask,
        .mode = GPIO_MODE_OUTPUT,
        .pull_up_en = GPIO_PULLUP_DISABLE,
        .pull_down_en = GPIO_PULLDOWN_DISABLE,
        .intr_type = GPIO_INTR_DISABLE,
    };
    ESP_ERROR_CHECK(gpio_config(&io));
}

void port_pin_timestamp(int level)
{
#if UNPU_ESP_PIN_TIMESTAMP >= 0
    gpio_set_level(UNPU_ESP_PIN_TIMESTAMP, level ? 1 : 0);
#else
    (void)level;
#endif
}

void port_pin_stage(int level)
{
#if UNPU_ESP_PIN_STAGE >= 0
    gpio_set_level(UNPU_ESP_PIN_STAGE, level ? 1 : 0);
#else
    (void)level;
#endif
}

/* ---- start and stop ------------------------------------------------------------------------- */
void port_init(void)
{
    ESP_ERROR_CHECK(esp_clk_tree_src_get_freq_hz(SOC_MOD_CLK_CPU, ESP_CLK_TREE_SRC_FREQ_PRECISION_CACHED, &cpu_hz));
    link_init();
    pins_init();
    (void)port_timer_ticks();
}

/* The harness returns only when the link reports an error: halt this task (no reset, so no boot
 * messages appear on the link). */
void port_exit(int code)
{
    (void)code;
    for (;;)
        vTaskDelay(portMAX_DELAY);
}

static void harness_task(void *arg)
{
    (void)arg;
    port_init();
    port_exit(unpu_harness_main());
}

void app_main(void)
{
    xTaskCreatePinnedToCore(harness_task, "unpu", UNPU_ESP_STACK_BYTES, NULL, UNPU_ESP_PRIORITY, NULL,
                            UNPU_ESP_CORE);
}
