/*
 * Native port: the harness as a Linux process. Its "UART" is a pty it creates: the slave path is
 * announced on stdout as `pty /dev/pts/N`, then the protocol is served on the master side, exactly
 * as unpu/boards/host_device.py does. Timer: CLOCK_MONOTONIC_RAW in ns (1 GHz, "os"). No pins; `idle` sleeps.
 * The process exits when its parent dies (PR_SET_PDEATHSIG plus a getppid() check) or the link
 * closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "unpu_harness.h"
#include "unpu_port.h"

static int master_fd = -1, slave_fd = -1;
static pid_t parent_pid;
static uint8_t rx_buf[4096];
static ssize_t rx_len, rx_pos;

static void fail(const char *what) {
    perror(what);
    exit(2);
}

void port_init(void) {
    struct termios tio;
    const char *name;
    parent_pid = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) fail("prctl");
    if (getppid() != parent_pid) exit(0);  /* the parent died before prctl */
    master_fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_fd < 0 || grantpt(master_fd) != 0 || unlockpt(master_fd) != 0) fail("posix_openpt");
    name = ptsname(master_fd);
    if (!name) fail("ptsname");
    slave_fd = open(name, O_RDWR | O_NOCTTY);  /* kept open: the host may open and close it */
    if (slave_fd < 0 || tcgetattr(slave_fd, &tio) != 0) fail("open pty slave");
    cfmakeraw(&tio);
    if (tcsetattr(slave_fd, TCSANOW, &tio) != 0) fail("tcsetattr");
    printf("pty %s\n", name);
    fflush(stdout);
}

int port_uart_getc(void) {
    while (rx_pos >= rx_len) {
        struct pollfd pfd = {master_fd, POLLIN, 0};
        const int ready = poll(&pfd, 1, 1000);
        if (getppid() != parent_pid) return -1;  /* the host went away: do not linger */
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return -1;
        if (ready == 0) continue;
        rx_len = read(master_fd, rx_buf, sizeof rx_buf);
        rx_pos = 0;
        if (rx_len < 0 && (errno == EINTR || errno == EAGAIN)) {
            rx_len = 0;
            continue;
        }
        if (rx_len <= 0) return -1;
    }
    return rx_buf[rx_pos++];
}

void port_uart_write(const uint8_t *data, uint32_t len) {
    while (len) {
        const ssize_t n = write(master_fd, data, len);
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

void port_pin_timestamp(int level) { (void)level; }

void port_pin_stage(int level) { (void)level; }

void port_delay_us(uint32_t us) { (void)us; }  /* no pin to hold */

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

int main(void) {
    int rc;
    port_init();
    rc = unpu_harness_main();
    port_exit(rc);
    return rc;
}
