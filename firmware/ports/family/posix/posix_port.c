/* See posix_port.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "posix_port.h"
#include "unpu_port.h"

static int link_in = -1, link_out = -1;
static int (*link_wait)(int fd);
static uint8_t rx_buf[4096];
static ssize_t rx_len, rx_pos;

void posix_link_open(int in_fd, int out_fd, int (*wait_readable)(int fd)) {
    link_in = in_fd;
    link_out = out_fd;
    link_wait = wait_readable;
}

/* Refill the receive buffer: 1 with bytes, 0 to try again, -1 when the link is gone (EOF, error). */
static int refill(void) {
    const int ready = link_wait ? link_wait(link_in) : 1;
    if (ready <= 0) return ready;
    rx_len = read(link_in, rx_buf, sizeof rx_buf);
    rx_pos = 0;
    if (rx_len < 0 && (errno == EINTR || errno == EAGAIN)) {
        rx_len = 0;
        return 0;
    }
    return rx_len > 0 ? 1 : -1;
}

int port_uart_getc(void) {
    while (rx_pos >= rx_len) {
        if (refill() < 0) return -1;
    }
    return rx_buf[rx_pos++];
}

void port_uart_write(const uint8_t *data, uint32_t len) {
    while (len) {
        const ssize_t n = write(link_out, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) exit(0);  /* link gone */
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

/* `idle`: the process sleeps (an absolute deadline, so EINTR only resumes the wait). */
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
