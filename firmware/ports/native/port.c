/*
 * Native port: the harness as a Linux process (../family/posix). Its "UART" is a pty it creates:
 * the slave path is announced on stdout as `pty /dev/pts/N`, then the protocol is served on the
 * master side, exactly as unpu/boards/host_device.py does. No pins (common/port_defaults.c).
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
#include <unistd.h>

#include "posix_port.h"
#include "unpu_harness.h"
#include "unpu_port.h"

static pid_t parent_pid;

static void fail(const char *what) {
    perror(what);
    exit(2);
}

/* Readable within a second, or ask again; the link is gone when the host is. */
static int wait_readable(int fd) {
    struct pollfd pfd = {fd, POLLIN, 0};
    const int ready = poll(&pfd, 1, 1000);
    if (getppid() != parent_pid) return -1;  /* the host went away: do not linger */
    if (ready < 0) return errno == EINTR ? 0 : -1;
    return ready;
}

void port_init(void) {
    struct termios tio;
    const char *name;
    int master_fd, slave_fd;
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
    posix_link_open(master_fd, master_fd, wait_readable);
    printf("pty %s\n", name);
    fflush(stdout);
}

void port_delay_us(uint32_t us) { (void)us; }  /* no pin to hold */

int main(void) {
    int rc;
    port_init();
    rc = unpu_harness_main();
    port_exit(rc);
    return rc;
}
