/*
 * The portable benchmark harness: the DUT protocol of docs/protocol.md over the port's UART,
 * driving a model runner (unpu_runner.h) and timing its stages with the port's timer (unpu_port.h).
 * C99, no heap, no printf. Behaviour mirrors unpu/boards/host_device.py (the protocol's Python
 * implementation), answer for answer.
 *
 * Compile-time options:
 *   UNPU_BUILD_ID        string reported by info% as m-build-<id> (default "dev")
 *   UNPU_MAX_ITERATIONS  if > 0, `infer N W` with N or W above it is refused (the fuzzer sets it so
 *                        that a random `infer 999999999%` does not stall a run); default 0 = no limit
 *   UNPU_TEST_HANG       test only: `infer` never returns (checks the host's timeout handling)
 *   UNPU_TEST_CORRUPT_OUTPUT  test only (runner_codegen.c): flips a bit of the output (checks validation)
 */
#ifndef UNPU_HARNESS_H
#define UNPU_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#define UNPU_MAX_COMMAND 256            /* bytes in one command line (docs/protocol.md) */
#define UNPU_OUT_HEX_BYTES_PER_LINE 64  /* out% */
#define UNPU_RESULTS_SHOWN 128          /* m-results-[...] */

#ifdef __cplusplus
extern "C" {
#endif

/* Serve the protocol on the port's UART until the link is gone (port_uart_getc() < 0); returns 0.
 * A port's main() calls port_init() and then this. */
int unpu_harness_main(void);

/* Feed raw received bytes to the protocol state machine; answers go out through port_uart_write.
 * Pure apart from the port/runner calls: the fuzzer and the native tests drive it directly. */
void unpu_harness_feed(const uint8_t *data, size_t len);

/* Forget every state (line buffer, upload, last results), as after a reset. */
void unpu_harness_reset(void);

/* CRC-32 (IEEE 802.3 / zlib): crc = unpu_crc32_update(0, data, len) equals zlib.crc32(data);
 * chunks chain: unpu_crc32_update(unpu_crc32_update(0, a, n), b, m) == crc32(a + b). */
uint32_t unpu_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* UNPU_HARNESS_H */
