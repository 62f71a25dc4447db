/*
 * The DUT protocol (docs/protocol.md), mirroring unpu/boards/host_device.py's DutEngine.
 * C99, no heap, no stdio: answers are assembled in a small line buffer and written through
 * port_uart_write; numbers are formatted here (newlib-nano's printf has no floats).
 *
 * Pins (docs/protocol.md, "Pins"): the timestamp pin falls for >= 1 us at each lap() (the two
 * m-lap-us points of `infer`, and before and after the wait of `idle`); the stage pin toggles at
 * the start and at the end of init and at the start of every stage of every inference, warm-ups
 * included, so an `infer N W` window toggles it 2 + 4 (W + N) times, 4 N of them between the laps.
 *
 * `timestamp%` is one lap point on its own (a timestamp-pin pulse and its m-lap-us line) and
 * `help%` lists the commands, both as the MLPerf Tiny reference firmware frames them.
 *
 * -DUNPU_PMU adds the `pmu%` command (docs/protocol.md): NPU performance counters of the last
 * `infer`, per timed inference. The runner provides them (runner_tflm.cc with -DUNPU_ETHOSU reads
 * the Ethos-U PMU); builds without UNPU_PMU answer `pmu%` as any unknown command, as before.
 */
#include "unpu_harness.h"

#include <string.h>

#include "unpu_port.h"
#include "unpu_runner.h"

#ifndef UNPU_BUILD_ID
#define UNPU_BUILD_ID "dev"
#endif
#ifndef UNPU_MAX_ITERATIONS
#define UNPU_MAX_ITERATIONS 0
#endif

#ifdef UNPU_PMU
/* The runner's NPU counters (declared here so unpu_runner.h stays the same for every runner):
 * unpu_pmu_reset() zeroes them; they then accumulate over every NPU job until read. */
void unpu_pmu_reset(void);
uint32_t unpu_pmu_count(void);              /* how many counters */
const char *unpu_pmu_name(uint32_t index);  /* [a-z0-9_]+ */
uint64_t unpu_pmu_value(uint32_t index);
#define UNPU_PMU_MAX 8
#endif

#define IDLE_MAX_MS 60000
#define MAX_WORDS 4           /* every command takes at most 4 words; more are counted, not kept */
#define INT_LIMIT ((int64_t)1 << 62)

enum { ST_INIT, ST_INPUT, ST_INFERENCE, ST_OUTPUT, ST_POST, ST_COUNT };

/* `help%`: the firmware's name, an empty line, one line per command (as MLPerf Tiny's help). The
 * same lines as unpu/boards/host_device.py's HELP_LINES, plus pmu in PMU builds. */
static const char *const help_lines[] = {
    "unpu",
    "",
    "help         : this list",
    "name         : the device name, m-name-dut-[unpu]",
    "profile      : the firmware and the model id, m-model-[<id>]",
    "timestamp    : a lap point: timestamp-pin pulse and m-lap-us-<t>",
    "db load N    : expect N input bytes as db <hex> lines",
    "db HH[HH]*   : 1 to 31 input bytes in hex",
    "db bin N CRC : N raw input bytes follow, CRC-32 in hex",
    "infer N [W=0]: init, W warm-ups, N timed inferences",
    "results      : the last inference's final output",
    "stages       : the timed stages of the last infer",
    "info         : timer clock, arena, timer name, build id",
    "out          : the last raw output tensor in hex",
    "idle MS      : rest MS ms between two timestamp-pin pulses",
#ifdef UNPU_PMU
    "pmu          : NPU counters of the last infer",
#endif
};
static const char *const stage_names[ST_COUNT] = {"init", "input", "inference", "output", "post"};

typedef struct {
    const char *p;
    uint32_t n;
} word_t;

/* ---- state ---------------------------------------------------------------------------------- */
static uint8_t line[UNPU_MAX_COMMAND];
static uint32_t line_len;
static int line_overflow;
static uint32_t loaded;          /* bytes of input in runner_input_buffer() */
static uint32_t expected;        /* announced by db load / db bin; 0 = no upload in progress */
static uint32_t binary_left;     /* raw bytes still to come after `db bin N CRC%` */
static uint64_t binary_crc;      /* as announced (may exceed 32 bits: then it cannot match) */
static uint32_t crc_running;
static uint64_t stage_ticks[ST_COUNT];
static int have_stages, have_output, have_final;
static int stage_pin_level;
#ifdef UNPU_PMU
static uint64_t pmu_values[UNPU_PMU_MAX];
static uint32_t pmu_count;
static void pmu_snapshot(uint64_t iterations);
#endif

void unpu_harness_reset(void) {
    line_len = 0;
    line_overflow = 0;
    loaded = expected = binary_left = 0;
    binary_crc = 0;
    crc_running = 0;
    memset(stage_ticks, 0, sizeof stage_ticks);
    have_stages = have_output = have_final = 0;
    stage_pin_level = 0;
#ifdef UNPU_PMU
    memset(pmu_values, 0, sizeof pmu_values);
    pmu_count = 0;
#endif
}

/* ---- CRC-32 (IEEE, reflected 0xEDB88320, as zlib), bitwise: no table in flash --------------- */
uint32_t unpu_crc32_update(uint32_t crc, const uint8_t *data, size_t len) {
    crc = ~crc;
    while (len--) {
        int k;
        crc ^= *data++;
        for (k = 0; k < 8; ++k) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

/* ---- output --------------------------------------------------------------------------------- */
static char out_buf[144];
static uint32_t out_len;

static void out_flush(void) {
    if (out_len) {
        port_uart_write((const uint8_t *)out_buf, out_len);
        out_len = 0;
    }
}

static void out_char(char c) {
    if (out_len == sizeof out_buf) {
        out_flush();
    }
    out_buf[out_len++] = c;
}

static void out_str(const char *s) {
    while (*s) {
        out_char(*s++);
    }
}

static void out_u64(uint64_t v) {
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    while (n) {
        out_char(digits[--n]);
    }
}

static void out_i64(int64_t v) {
    if (v < 0) {
        out_char('-');
        out_u64(0u - (uint64_t)v);
    } else {
        out_u64((uint64_t)v);
    }
}

/* Echo (part of) what the host sent, printable ASCII only. */
static void out_word(word_t w, uint32_t max) {
    uint32_t i;
    for (i = 0; i < w.n && i < max; ++i) {
        const char c = w.p[i];
        out_char(c >= 0x20 && c < 0x7f ? c : '?');
    }
}

static void out_hex_byte(uint8_t b) {
    static const char hex[] = "0123456789abcdef";
    out_char(hex[b >> 4]);
    out_char(hex[b & 15u]);
}

/* |v| with 4 decimals, like Python's f"{v:.4f}" for the small values a model outputs. */
static void out_fixed4(float value) {
    double v = value;
    uint64_t scaled;
    if (v != v) {
        out_str("nan");
        return;
    }
    if (v < 0) {
        out_char('-');
        v = -v;
    }
    if (v > 1e14) {
        out_str("inf");
        return;
    }
    scaled = (uint64_t)(v * 10000.0 + 0.5);
    out_u64(scaled / 10000u);
    out_char('.');
    out_char((char)('0' + (int)(scaled / 1000u % 10u)));
    out_char((char)('0' + (int)(scaled / 100u % 10u)));
    out_char((char)('0' + (int)(scaled / 10u % 10u)));
    out_char((char)('0' + (int)(scaled % 10u)));
}

static void out_end(void) {
    out_str("\r\n");
    out_flush();
}

static void answer(const char *text) {
    out_str(text);
    out_end();
}

static void error_text(const char *text) {
    out_str("e-[");
    out_str(text);
    out_str("]");
    out_end();
}

static void ready(void) {
    answer("m-ready");
}

/* ---- parsing -------------------------------------------------------------------------------- */
static int word_is(word_t w, const char *s) {
    return strlen(s) == w.n && memcmp(w.p, s, w.n) == 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Python's int(text, base) for sign + digits (+ "0x" for base 16); saturates at +-2^62. */
static int parse_int(word_t w, int base, int64_t *out) {
    uint32_t i = 0;
    int negative = 0, any = 0;
    uint64_t v = 0;
    if (i < w.n && (w.p[i] == '+' || w.p[i] == '-')) {
        negative = w.p[i++] == '-';
    }
    if (base == 16 && i + 1 < w.n && w.p[i] == '0' && (w.p[i + 1] == 'x' || w.p[i + 1] == 'X')) {
        i += 2;
    }
    for (; i < w.n; ++i) {
        const int d = hex_value(w.p[i]);
        if (d < 0 || d >= base) {
            return -1;
        }
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > (uint64_t)INT_LIMIT) {
            v = (uint64_t)INT_LIMIT;
        }
        any = 1;
    }
    if (!any) {
        return -1;
    }
    *out = negative ? -(int64_t)v : (int64_t)v;
    return 0;
}

static int parse_or_error(word_t w, int base, const char *what, int64_t *out) {
    if (parse_int(w, base, out) == 0) {
        return 0;
    }
    out_str("e-[bad ");
    out_str(what);
    out_str(": ");
    out_word(w, 16);
    out_str("]");
    out_end();
    return -1;
}

static int is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

static uint32_t split_words(word_t *words) {
    uint32_t i = 0, count = 0;
    while (i < line_len) {
        uint32_t start;
        while (i < line_len && is_space(line[i])) ++i;
        if (i == line_len) break;
        start = i;
        while (i < line_len && !is_space(line[i])) ++i;
        if (count < MAX_WORDS) {
            words[count].p = (const char *)line + start;
            words[count].n = i - start;
        }
        ++count;
    }
    return count;
}

/* ---- commands ------------------------------------------------------------------------------- */
static void cmd_info(void) {
    out_str("m-clock-hz-");
    out_u64(port_timer_hz());
    out_end();
    out_str("m-arena-");
    out_u64(runner_arena_size());
    out_end();
    out_str("m-timer-");
    out_str(port_timer_name());
    out_end();
    answer("m-build-" UNPU_BUILD_ID);
}

static void error_input_size(const char *what, int64_t size) {
    out_str("e-[");
    out_str(what);
    out_char(' ');
    out_i64(size);
    out_str(": input buffer holds ");
    out_u64(runner_input_size());
    out_str(" bytes]");
    out_end();
}

static int size_ok(const char *what, int64_t size) {
    if (size > 0 && size <= (int64_t)runner_input_size()) {
        return 1;
    }
    error_input_size(what, size);
    return 0;
}

static void cmd_db_hex(word_t w) {
    uint8_t chunk[31];
    uint32_t i, n = w.n / 2;
    if (!expected) {
        error_text("db: no 'db load N' in progress");
        return;
    }
    if (w.n % 2 || w.n > 62) {
        error_text("db: hex payload must be 1..31 whole bytes");
        return;
    }
    for (i = 0; i < n; ++i) {
        const int hi = hex_value(w.p[2 * i]), lo = hex_value(w.p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            error_text("db: bad hex");
            return;
        }
        chunk[i] = (uint8_t)(hi << 4 | lo);
    }
    if (loaded + n > expected) {
        expected = 0;
        error_text("db: more bytes than announced");
        return;
    }
    memcpy(runner_input_buffer() + loaded, chunk, n);
    loaded += n;
    if (loaded == expected) {
        answer("m-load-done");
    }
}

static void cmd_db(const word_t *args, uint32_t n) {
    int64_t size, crc;
    if (n == 2 && word_is(args[0], "load")) {
        if (parse_or_error(args[1], 10, "db load size", &size) || !size_ok("db load", size)) return;
        loaded = 0;
        expected = (uint32_t)size;
        out_str("m-[Expecting ");
        out_u64((uint64_t)size);
        answer(" bytes]");
    } else if (n == 3 && word_is(args[0], "bin")) {
        if (parse_or_error(args[1], 10, "db bin size", &size) || parse_or_error(args[2], 16, "crc32", &crc)) return;
        if (!size_ok("db bin", size)) return;
        loaded = 0;
        expected = binary_left = (uint32_t)size;
        binary_crc = (uint64_t)crc;
        crc_running = 0;
    } else if (n == 1) {
        cmd_db_hex(args[0]);
    } else {
        error_text("db: expected 'db load N', 'db bin N CRC32' or 'db <hex>'");
    }
}

static void finish_binary(void) {
    if ((uint64_t)crc_running != binary_crc) {
        loaded = expected = 0;
        error_text("crc");
    } else {
        answer("m-load-done");
    }
    ready();
}

static void stage_boundary(void) {
    stage_pin_level ^= 1;
    port_pin_stage(stage_pin_level);
}

static void error_runner(const char *stage, int rc) {
    out_str("e-[runner: ");
    out_str(stage);
    out_str(" failed (");
    out_i64(rc);
    out_str(")]");
    out_end();
}

static int run_step(int stage) {
    switch (stage) {
    case ST_INPUT: return runner_load_input(runner_input_buffer(), loaded);
    case ST_INFERENCE: return runner_run();
    case ST_OUTPUT: return runner_read_output();
    default: return runner_post();
    }
}

/* One inference; adds each stage's ticks to acc (if not NULL). Returns 0 or reports the error. */
static int one_inference(uint64_t *acc) {
    int stage;
    for (stage = ST_INPUT; stage < ST_COUNT; ++stage) {
        uint64_t t0;
        int rc;
        stage_boundary();
        t0 = port_timer_ticks();
        rc = run_step(stage);
        if (acc) acc[stage] += port_timer_ticks() - t0;
        if (rc) {
            error_runner(stage_names[stage], rc);
            return -1;
        }
        if (stage == ST_OUTPUT) have_output = 1;
    }
    have_final = 1;
    return 0;
}

static uint64_t ticks_to_us(uint64_t ticks) {
    const uint64_t hz = port_timer_hz() ? port_timer_hz() : 1u;
    return ticks / hz * 1000000u + ticks % hz * 1000000u / hz;
}

/* round(sum / n) with Python's round-half-to-even. */
static uint64_t mean_ticks(uint64_t sum, uint64_t n) {
    uint64_t q = sum / n, r = sum % n;
    if (2 * r > n || (2 * r == n && (q & 1u))) ++q;
    return q;
}

static uint64_t lap(void) {
    uint64_t t;
    port_pin_timestamp(0);
    t = port_timer_ticks();
    port_delay_us(1);
    port_pin_timestamp(1);
    return t;
}

static void out_lap(uint64_t ticks) {
    out_str("m-lap-us-");
    out_u64(ticks_to_us(ticks));
    out_end();
}

/* `timestamp%`: a lap point on its own: the pin pulse and the time (MLPerf Tiny's th_timestamp
 * prints in performance mode and pulses the pin in energy mode; unpu has one build, so both). */
static void cmd_timestamp(void) {
    out_lap(lap());
}

static void cmd_help(void) {
    uint32_t i;
    for (i = 0; i < sizeof help_lines / sizeof help_lines[0]; ++i) {
        answer(help_lines[i]);
    }
}

static void results_line(void) {
    const uint32_t count = runner_result_count();
    uint32_t i;
    out_str("m-results-[");
    for (i = 0; i < count && i < UNPU_RESULTS_SHOWN; ++i) {
        if (i) out_char(',');
        out_fixed4(runner_result(i));
    }
    if (count > UNPU_RESULTS_SHOWN) out_str(",...");
    out_str("]");
    out_end();
}

static int infer_args(const word_t *args, uint32_t n, int64_t *iterations, int64_t *warmup) {
    *warmup = 0;
    if (n != 1 && n != 2) {
        error_text("infer: expected 'infer N [W]'");
        return -1;
    }
    if (parse_or_error(args[0], 10, "iterations", iterations)) return -1;
    if (n == 2 && parse_or_error(args[1], 10, "warmup", warmup)) return -1;
    if (*iterations < 1) {
        error_text("infer: N must be >= 1");
        return -1;
    }
    if (UNPU_MAX_ITERATIONS > 0 && (*iterations > UNPU_MAX_ITERATIONS || *warmup > UNPU_MAX_ITERATIONS)) {
        error_text("infer: N or W above this build's UNPU_MAX_ITERATIONS");
        return -1;
    }
    if (loaded != runner_input_size()) {
        out_str("e-[infer: input not loaded (");
        out_u64(loaded);
        out_char('/');
        out_u64(runner_input_size());
        out_str(" bytes)]");
        out_end();
        return -1;
    }
    return 0;
}

static void cmd_infer(const word_t *args, uint32_t n) {
    int64_t iterations, warmup, i;
    uint64_t ticks[ST_COUNT] = {0}, t0, t_start, t_end;
    int rc, stage;
    if (infer_args(args, n, &iterations, &warmup)) return;
#ifdef UNPU_TEST_HANG
    for (;;) {
        volatile int spin = 0;
        (void)spin;
    }
#endif
    stage_boundary();
    t0 = port_timer_ticks();
    rc = runner_init();
    ticks[ST_INIT] = port_timer_ticks() - t0;
    if (rc) {
        error_runner("init", rc);
        return;
    }
    stage_boundary();   /* end of init: the power trace can tell init from the warm-ups */
    out_str("m-warmup-start-");
    out_i64(warmup);
    out_end();
    for (i = 0; i < warmup; ++i) {
        if (one_inference(NULL)) return;
    }
    answer("m-warmup-done");
    out_str("m-infer-start-");
    out_i64(iterations);
    out_end();
#ifdef UNPU_PMU
    unpu_pmu_reset();   /* warm-ups and init are not counted */
#endif
    t_start = lap();
    for (i = 0; i < iterations; ++i) {
        if (one_inference(ticks)) return;
    }
    t_end = lap();
#ifdef UNPU_PMU
    pmu_snapshot((uint64_t)iterations);
#endif
    out_lap(t_start);
    out_lap(t_end);
    for (stage = ST_INPUT; stage < ST_COUNT; ++stage) {
        ticks[stage] = mean_ticks(ticks[stage], (uint64_t)iterations);
    }
    memcpy(stage_ticks, ticks, sizeof ticks);
    have_stages = 1;
    answer("m-infer-done");
    results_line();
}

/* `idle MS`: the board at rest for MS ms between two timestamp pulses, for the power meter's
 * idle baseline. */
static void cmd_idle(const word_t *args, uint32_t n) {
    int64_t ms;
    if (n != 1) {
        error_text("idle: expected 'idle MS'");
        return;
    }
    if (parse_or_error(args[0], 10, "idle ms", &ms)) return;
    if (ms < 1 || ms > IDLE_MAX_MS) {
        error_text("idle: MS must be 1..60000");
        return;
    }
    (void)lap();
    port_idle_us((uint32_t)ms * 1000u);
    (void)lap();
    answer("m-idle-done");
}

#ifdef UNPU_PMU
/* Per-inference means of the runner's counters over the timed loop, like the stage ticks. */
static void pmu_snapshot(uint64_t iterations) {
    uint32_t i;
    pmu_count = unpu_pmu_count() < UNPU_PMU_MAX ? unpu_pmu_count() : UNPU_PMU_MAX;
    for (i = 0; i < pmu_count; ++i) {
        pmu_values[i] = mean_ticks(unpu_pmu_value(i), iterations);
    }
}

static void cmd_pmu(void) {
    uint32_t i;
    if (!have_stages) {
        error_text("pmu: no inference yet");
        return;
    }
    for (i = 0; i < pmu_count; ++i) {
        out_str("m-pmu-");
        out_str(unpu_pmu_name(i));
        out_char('-');
        out_u64(pmu_values[i]);
        out_end();
    }
}
#endif

static void cmd_stages(void) {
    int stage;
    if (!have_stages) {
        error_text("stages: no inference yet");
        return;
    }
    for (stage = 0; stage < ST_COUNT; ++stage) {
        const uint64_t c = stage_ticks[stage], hz = port_timer_hz() ? port_timer_hz() : 1u;
        const uint64_t mus = c / hz * 1000000000u + (c % hz * 1000000000u + hz / 2) / hz;  /* 1e-3 us */
        out_str("m-stage-");
        out_str(stage_names[stage]);
        out_str("-cycles-");
        out_u64(c);
        out_str("-us-");
        out_u64(mus / 1000u);
        out_char('.');
        out_char((char)('0' + (int)(mus / 100u % 10u)));
        out_char((char)('0' + (int)(mus / 10u % 10u)));
        out_char((char)('0' + (int)(mus % 10u)));
        out_end();
    }
}

static void cmd_out(void) {
    uint32_t size = 0, i;
    const uint8_t *raw;
    if (!have_output) {
        error_text("out: no inference yet");
        return;
    }
    raw = runner_raw_output(&size);
    out_str("m-out-bytes-");
    out_u64(size);
    out_end();
    for (i = 0; i < size; i += UNPU_OUT_HEX_BYTES_PER_LINE) {
        uint32_t j;
        out_str("m-out-");
        for (j = i; j < size && j < i + UNPU_OUT_HEX_BYTES_PER_LINE; ++j) {
            out_hex_byte(raw[j]);
        }
        out_end();
    }
}

static void execute(const word_t *words, uint32_t n) {
    const word_t *args = words + 1;
    const uint32_t nargs = n ? n - 1 : 0;
    if (!n) {
        error_text("empty command");
    } else if (word_is(words[0], "name")) {
        answer("m-name-dut-[unpu]");
    } else if (word_is(words[0], "profile")) {
        answer("m-profile-[unpu]");
        out_str("m-model-[");
        out_str(runner_model_id());
        answer("]");
    } else if (word_is(words[0], "timestamp")) {
        cmd_timestamp();
    } else if (word_is(words[0], "help")) {
        cmd_help();
    } else if (word_is(words[0], "db")) {
        cmd_db(args, nargs);
    } else if (word_is(words[0], "infer")) {
        cmd_infer(args, nargs);
    } else if (word_is(words[0], "idle")) {
        cmd_idle(args, nargs);
    } else if (word_is(words[0], "results")) {
        if (have_final) results_line(); else error_text("results: no inference yet");
    } else if (word_is(words[0], "stages")) {
        cmd_stages();
    } else if (word_is(words[0], "info")) {
        cmd_info();
    } else if (word_is(words[0], "out")) {
        cmd_out();
#ifdef UNPU_PMU
    } else if (word_is(words[0], "pmu")) {
        cmd_pmu();
#endif
    } else {
        out_str("e-[unknown command ");
        out_word(words[0], 32);
        out_str("]");
        out_end();
    }
}

static void dispatch(void) {
    word_t words[MAX_WORDS];
    const int overflow = line_overflow;
    uint32_t n = 0;
    if (!overflow) n = split_words(words);
    if (overflow) {
        error_text("command too long");
    } else {
        execute(words, n);
    }
    line_len = 0;
    line_overflow = 0;
    if (!binary_left) ready();  /* after `db bin`, the answer waits for the raw bytes */
}

/* ---- byte stream ------------------------------------------------------------------------------ */
void unpu_harness_feed(const uint8_t *data, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (binary_left) {
            const uint32_t take = (uint32_t)(len - i < binary_left ? len - i : binary_left);
            memcpy(runner_input_buffer() + loaded, data + i, take);
            crc_running = unpu_crc32_update(crc_running, data + i, take);
            loaded += take;
            binary_left -= take;
            i += take;
            if (!binary_left) finish_binary();
            continue;
        }
        if (data[i] == '%') {
            dispatch();
        } else if (data[i] == '\r' || data[i] == '\n') {
            /* ignored between and inside commands */
        } else if (line_len >= UNPU_MAX_COMMAND) {
            line_overflow = 1;
        } else {
            line[line_len++] = data[i];
        }
        ++i;
    }
}

int unpu_harness_main(void) {
    unpu_harness_reset();
    port_pin_timestamp(1);
    port_pin_stage(0);
    for (;;) {
        uint8_t byte;
        const int c = port_uart_getc();
        if (c < 0) return 0;
        byte = (uint8_t)c;
        unpu_harness_feed(&byte, 1);
    }
}
