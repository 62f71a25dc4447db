/*
 * CV1800B (Milk-V Duo) port: the harness as a Linux user-space program on the C906 running Linux
 * (../family/posix: timer, idle, exit, the link's reads and writes).
 * Link: stdin/stdout, carried by `ssh -T` from the host (no pty, so the bytes pass unchanged). The
 * original stdout is kept as the link and fd 1 is pointed at stderr, so a library that printf()s
 * (the TPU runtime logs) cannot corrupt the protocol.
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
#include <unistd.h>

#include "posix_port.h"
#include "unpu_harness.h"
#include "unpu_port.h"

const char *unpu_cvi_model_path = "model.cvimodel";   /* read by runner_cvi.c */

static int pin_fd[2] = {-1, -1};                       /* timestamp, stage */
static int pin_gpio[2] = {-1, -1};

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
    int link_out;
    signal(SIGPIPE, SIG_IGN);                 /* a closed link is an EPIPE from write(), not a signal */
    link_out = dup(STDOUT_FILENO);
    if (link_out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        perror("unpu: dup stdout");
        exit(2);
    }
    posix_link_open(STDIN_FILENO, link_out, NULL);
    pin_fd[0] = gpio_open(pin_gpio[0], 1);    /* timestamp pin rests high */
    pin_fd[1] = gpio_open(pin_gpio[1], 0);
}

void port_pin_timestamp(int level) { gpio_set(pin_fd[0], level); }

void port_pin_stage(int level) { gpio_set(pin_fd[1], level); }

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
