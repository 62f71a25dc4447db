// The few C++ runtime symbols TFLM needs on a firmware linked without libstdc++ (no exceptions, no
// RTTI, no heap: nothing is ever deleted; a call here is a bug and stops the firmware).
#include <stddef.h>

extern "C" void port_exit(int code);

void operator delete(void *) noexcept { port_exit(77); }
void operator delete(void *, size_t) noexcept { port_exit(77); }
extern "C" void __cxa_pure_virtual() { port_exit(78); }
extern "C" {
__attribute__((weak)) void *__dso_handle = nullptr;
}
