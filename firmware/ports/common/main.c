/* main() for the bare-metal ports whose start-up needs nothing but port_init() before the harness. */
#include "unpu_harness.h"
#include "unpu_port.h"

int main(void)
{
    port_init();
    return unpu_harness_main();
}
