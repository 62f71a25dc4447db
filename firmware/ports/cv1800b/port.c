/*
 * CV1800B (Milk-V Duo) port: the harness as a Linux user-space program on the C906 running Linux.
 * Link: stdin/stdout, carried by `ssh -T` from the host (no pty, so the bytes pass unchanged). The
 * original stdout is kept as the link and fd 1 is pointed at stderr, so a library that printf()s
 * (the TPU runtime logs) cannot corrupt the protocol.
 * Timer: clock_gettime(CLOCK_MONOTONIC_RAW) in ns (1 GHz, "os").
 * Pins: sysfs GPIOs (/sys/class/gpio, Linux's documented GPIO sysfs ABI), numbers given on the
 * command line; -1 = no pin (the contract then holds with no-op pins, as on the native port).
 * Usage: unpu_cvi MODEL.cvimodel [TIMESTAMP_GPIO [STAGE_GPIO]]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unpu_harness.h"
#include "unpu_port.h"

const char *unpu_cvi_model_path = "model.cvimodel";   /* read by runner_cvi.c */

static int link_in = 0, link_out = -1;
static int pin_fd[2] = {-1, -1};                       /* timestamp, stage */
static int pin_gpio[2] = {-1, -1};
static uint8_t rx_buf[4096];
static ssize_t rx_len, rx_pos;

static void write_file(const char *path, const char *text) {
    const int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (write(fd, text, strlen(text)) < 0) { /* already exported: EBUSY */ }
    close(fd);
}

/* Export the GPIO, make it an output at `level` ("high"/"low" set direction and level at once). */
static int gpio_open(int gpio, int level) {
    char path[64], num[16];
    if (gpio < 0) return -1;
    snprintf(num, sizeof num, "%d", gpio);
    write_file("/sys/class/gpio/export", num);
    snprintf(path, sizeof path, "/sys/class/gpio/gpio%d/direction", gpio);
    write_file(path, level ? "high" : "low");
    snprintf(path, sizeof path, "/sys/class/gpio/gpio%d/value", gpio);
    const int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fprintf(stderr, "unpu: gpio %d: %s (pin disabled)\n", gpio, strerror(errno));
    return fd;
}

static void gpio_set(int fd, int level) {
    if (fd >= 0 && pwrite(fd, level ? "1" : "0", 1, 0) < 0) { /* keep measuring without the pin */ }
}

void port_init(void) {
    signal(SIGPIPE, SIG_IGN);                 /* a closed link is an EPIPE from write(), not a signal */
    link_out = dup(STDOUT_FILENO);
    if (link_out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        perror("unpu: dup stdout");
        exit(2);
    }
    pin_fd[0] = gpio_open(pin_gpio[0], 1);    /* timestamp pin rests high */
    pin_fd[1] = gpio_open(pin_gpio[1], 0);
}

int port_uart_getc(void) {
    while (rx_pos >= rx_len) {
        rx_len = read(link_in, rx_buf, sizeof rx_buf);
        rx_pos = 0;
        if (rx_len < 0 && errno == EINTR) {
            rx_len = 0;
            continue;
        }
        if (rx_len <= 0) return -1;           /* EOF: the host closed ssh */
    }
    return rx_buf[rx_pos++];
}

void port_uart_write(const uint8_t *data, uint32_t len) {
    while (len) {
        const ssize_t n = write(link_out, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) exit(0);                  /* link gone */
        data += n;
        len -= (uint32_t)n;
    }
}

uint64_t port_timer_ticks(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t port_timer_hz(void) { return 1000000000u; }

const char *port_timer_name(void) { return "os"; }

void port_pin_timestamp(int level) { gpio_set(pin_fd[0], level); }

void port_pin_stage(int level) { gpio_set(pin_fd[1], level); }

/* Busy-wait: holds a pin low for >= us (a sleep could be far longer than asked). */
void port_delay_us(uint32_t us) {
    const uint64_t end = port_timer_ticks() + (uint64_t)us * 1000u;
    while (port_timer_ticks() < end) {
    }
}

/* `idle`: the process sleeps (absolute deadline, so EINTR only resumes the wait); the C906 idles. */
void port_idle_us(uint32_t us) {
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)(us / 1000000u);
    end.tv_nsec += (long)(us % 1000000u) * 1000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec += 1;
        end.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR) {
    }
}

void port_exit(int code) { exit(code); }

int main(int argc, char **argv) {
    int rc;
    if (argc > 1) unpu_cvi_model_path = argv[1];
    if (argc > 2) pin_gpio[0] = atoi(argv[2]);
    if (argc > 3) pin_gpio[1] = atoi(argv[3]);
    port_init();
    rc = unpu_harness_main();
    port_exit(rc);
    return rc;
}
