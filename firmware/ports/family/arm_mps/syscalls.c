/* Minimal newlib-nano system calls: stdout/stderr to the UART, a bounded heap, exit via semihosting. */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cmsdk_port.h"

extern char __heap_start__, __heap_end__;

void *_sbrk(intptr_t incr)
{
    static char *brk = &__heap_start__;
    if (brk + incr > &__heap_end__ || brk + incr < &__heap_start__) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *prev = brk;
    brk += incr;
    return prev;
}

int _write(int fd, const char *buf, int len)
{
    (void)fd;
    port_uart_write((const uint8_t *)buf, (uint32_t)len);
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    if (len <= 0)
        return 0;
    int c = port_uart_getc();
    if (c < 0)
        return 0;
    buf[0] = (char)c;
    return 1;
}

int _close(int fd) { (void)fd; return -1; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int code) { port_exit(code); for (;;) {} }
