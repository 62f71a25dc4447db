/*
 * The unpu_port.h functions a Linux user-space port shares (native, cv1800b): the link is a pair of
 * file descriptors, the timer CLOCK_MONOTONIC_RAW in ns (1 GHz, "os"), `idle` sleeps, exit() exits.
 * The board's port.c opens the link, sets its pins (or leaves the no-op defaults of
 * common/port_defaults.c) and has main().
 */
#ifndef UNPU_POSIX_PORT_H
#define UNPU_POSIX_PORT_H

/* Serve the link on in_fd / out_fd. `wait_readable`, if not NULL, runs before every read and
 * returns > 0 to read, 0 to ask again, < 0 when the link is gone. */
void posix_link_open(int in_fd, int out_fd, int (*wait_readable)(int fd));

#endif /* UNPU_POSIX_PORT_H */
