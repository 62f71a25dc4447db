"""ESP-IDF + esp-tflite-micro for the ESP32-S3: a plain quantized .tflite, TFLite Micro with ESP-NN kernels.

There is no model compiler: the .tflite becomes C data in an ESP-IDF project (firmware/ports/esp32s3)
whose runner (firmware/harness/runner_tflm.cc) registers a fixed set of operators; the Espressif
component `espressif/esp-tflite-micro` replaces seven of TFLM's kernels with ESP-NN ones. What this
module knows, and where it comes from:

- The operators the runner registers (unpu.boards.tflm_firmware.runner_ops, read from
  runner_tflm.cc itself); a model with any other operator cannot run.
- The operators with ESP-NN kernels (`ESP_NN_OPS`): the files in esp-tflite-micro's
  tensorflow/lite/micro/kernels/esp_nn/ (github.com/espressif/esp-tflite-micro, commit 99f49e1,
  component 1.4.0); the others run TFLM's reference kernels (tag `esp.reference_ops`).
- The largest scratch buffer the ESP-NN kernels request in the arena beyond what the reference
  kernels need (`esp_nn_scratch_bound`: esp-nn's CONV_2D formula; an upper bound for the
  depthwise and softmax kernels), from esp-nn's esp32s3 scratch-size functions
  (github.com/espressif/esp-nn, commit d45b843, src/convolution/esp_nn_conv_esp32s3.c,
  esp_nn_depthwise_conv_s8_esp32s3.c, src/softmax/esp_nn_softmax_s8_esp32s3.c).
- ESP-IDF's own commands (`idf.py`, esptool), each built here as an argument list, and what the
  build prints about the app's size (check_sizes.py in ESP-IDF, `parse_app_size`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TARGET = "esp32s3"
MIN_IDF = (5, 1)           # esp-tflite-micro 1.4.0's idf_component.yml: idf >= 5.1
APP_OFFSET = 0x10000       # the first app partition (ESP-IDF's default partition tables put it there)
PARTITION_TABLE_OFFSET = 0x8000

# esp-tflite-micro kernels/esp_nn/{add,conv,depthwise_conv,fully_connected,mul,pooling,softmax}.cc
ESP_NN_OPS = frozenset({"ADD", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MUL", "AVERAGE_POOL_2D",
                        "MAX_POOL_2D", "SOFTMAX"})


class EspError(RuntimeError):
    """The model or the ESP-IDF build cannot go on; one line saying why."""


# -- operator support ------------------------------------------------------------------------------
def unsupported_layers(ops, supported: frozenset[str]) -> list[str]:
    """`#<index> <OP>` for every operator of the graph the runner does not register."""
    return [f"#{op.index} {op.op}" for op in ops if op.op not in supported]


def kernel_split(ops) -> tuple[list[str], list[str]]:
    """(operators with ESP-NN kernels, operators on TFLM reference kernels), each sorted, unique."""
    names = {op.op for op in ops}
    return sorted(names & ESP_NN_OPS), sorted(names - ESP_NN_OPS)


# -- ESP-NN scratch --------------------------------------------------------------------------------
def esp_nn_scratch_bound(tflite: bytes) -> int:
    """The largest scratch buffer an ESP-NN kernel requests for one operator of this model on the
    ESP32-S3 (exact for CONV_2D, an upper bound for DEPTHWISE_CONV_2D, SOFTMAX). Scratch buffers
    live only while their operator runs, so the largest one is what the arena needs beyond the
    reference kernels' plan."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    graph = model.subgraphs[0]
    names = [_builtin_name(code, schema) for code in model.operatorCodes or []]
    shapes = [tuple(int(d) for d in (t.shape if t.shape is not None else [])) for t in graph.tensors or []]

    def shape(index: int) -> tuple[int, ...]:
        return shapes[index] if index >= 0 else ()

    return max((_scratch(names[op.opcodeIndex], [shape(i) for i in op.inputs], [shape(i) for i in op.outputs],
                         op.builtinOptions) for op in graph.operators or []), default=0)


def _builtin_name(code, schema) -> str:
    value = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(value, str(value))


def _round_up(value: int, step: int) -> int:
    return (value + step - 1) // step * step


def _geometry(options, ih: int, iw: int, oh: int, ow: int, kh: int, kw: int) -> tuple[int, int, int, int]:
    """(stride_h, stride_w, pad_h, pad_w) as TFLM computes them (SAME: half the total, rounded down)."""
    sh, sw = int(getattr(options, "strideH", 1) or 1), int(getattr(options, "strideW", 1) or 1)
    if int(getattr(options, "padding", 1)) != 0:   # Padding.VALID
        return sh, sw, 0, 0
    dh, dw = int(getattr(options, "dilationHFactor", 1) or 1), int(getattr(options, "dilationWFactor", 1) or 1)
    pad_h = max((oh - 1) * sh + (kh - 1) * dh + 1 - ih, 0) // 2
    pad_w = max((ow - 1) * sw + (kw - 1) * dw + 1 - iw, 0) // 2
    return sh, sw, pad_h, pad_w


def _scratch(op: str, ins: list[tuple[int, ...]], outs: list[tuple[int, ...]], options) -> int:
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) >= 2 and len(ins[0]) == 4 and len(ins[1]) == 4 \
            and outs and len(outs[0]) == 4:
        _, ih, iw, c = ins[0]
        _, oh, ow, oc = outs[0]
        kh, kw = ins[1][1], ins[1][2]
        sh, sw, ph, pw = _geometry(options, ih, iw, oh, ow, kh, kw)
        if op == "CONV_2D":
            return _conv_scratch(ih, iw, c, kh, kw, oh, ow, oc, sh, sw, ph, pw)
        return _depthwise_scratch_bound(ih, iw, c, kh, kw, oh, ow, oc, ph, pw)
    if op == "SOFTMAX" and ins and ins[0]:
        return 4 * ins[0][-1]   # esp_nn_get_softmax_scratch_size_esp32s3: width * 4
    return 0


def _conv_scratch(ih, iw, c, kh, kw, oh, ow, oc, sh, sw, ph, pw) -> int:
    """esp_nn_get_conv_scratch_size_esp32s3 (esp-nn d45b843), branch for branch."""
    align = 64
    if kh == kw == 1 and ph == pw == 0 and sh == sw == 1:
        ch8 = _round_up(c, 8)
        transpose = 0 if iw * ih < 8 else 2 * 8 * ch8
        return (iw * ih * ch8 if c % 8 else 0) + ch8 * oc + transpose + align
    row, window = kw * c, kw * kh * c
    if row < 16 <= window:
        aligned = _round_up(window, 16)
        return oc * 4 + 16 + oc * aligned + 16 + aligned + align
    padded_input = 0 if ph == pw == 0 else (iw + 2 * pw) * (ih + 2 * ph) * c
    filter_copy = kw * kh * _round_up(c, 16) * oc
    filter_alignment = _round_up(row, 16) * kh * oc
    pad_right, pad_bottom = max(0, ow * sw + kw - 1 - iw), max(0, oh * sh + kh - 1 - ih)
    boundary = (iw + pad_right) * (ih + pad_bottom) * c if pad_right or pad_bottom else 0
    return padded_input + filter_copy + filter_alignment + boundary + align + oc * 4


def _depthwise_scratch_bound(ih, iw, c, kh, kw, oh, ow, oc, ph, pw) -> int:
    """Not less than any branch of esp_nn_get_depthwise_conv_scratch_size_esp32s3 (esp-nn d45b843):
    an int16 copy of the filter and of the padded input, plus a channel-padded output buffer."""
    ch = _round_up(oc, 16)
    padded_input = (iw + 2 * pw + kw) * (ih + 2 * ph + kh) * ch
    return 2 * (kh * kw * ch + padded_input) + ow * oh * ch + 64


# -- ESP-IDF commands ------------------------------------------------------------------------------
def idf_version_command(idf_py: str) -> list[str]:
    return [idf_py, "--version"]


def parse_idf_version(text: str) -> tuple[int, int]:
    """`idf.py --version` prints e.g. `ESP-IDF v5.3.1` (or `v5.4-dev-123-gabc` from a git checkout)."""
    match = re.search(r"v(\d+)\.(\d+)", text)
    if not match:
        raise EspError(f"idf.py --version printed no ESP-IDF version: {text.strip()[:80]!r}")
    return int(match.group(1)), int(match.group(2))


def idf_command(idf_py: str, project: Path, build: Path, defines: dict[str, str], *action: str) -> list[str]:
    """`idf.py -C <project> -B <build> -D K=V ... <action...>` (idf.py's global options, docs:
    https://docs.espressif.com/projects/esp-idf/en/stable/esp32s3/api-guides/tools/idf-py.html)."""
    cmd = [idf_py, "-C", str(project), "-B", str(build)]
    for key, value in defines.items():
        cmd += ["-D", f"{key}={value}"]
    return cmd + list(action)


def esptool_flash_command(esptool: str, port: str, baud: int) -> list[str]:
    """Run in the build directory: the `@flash_args` form ESP-IDF prints after a build (the file lists
    flash mode/frequency/size and every image with its offset)."""
    return [esptool, "--chip", TARGET, "-p", port, "-b", str(int(baud)), "--before", "default_reset",
            "--after", "hard_reset", "write_flash", "@flash_args"]


def idf_flash_command(idf_py: str, project: Path, build: Path, defines: dict[str, str], port: str,
                      baud: int) -> list[str]:
    return idf_command(idf_py, project, build, defines, "-p", port, "-b", str(int(baud)), "flash")


# -- what the build prints -------------------------------------------------------------------------
# ESP-IDF components/partition_table/check_sizes.py, check_partition():
#   '{} binary size {:#x} bytes. Smallest {} partition is {:#x} bytes. {:#x} bytes ({}%) free.'
#   '{} partition is too small for binary {} size {:#x}:' then '\n  - {} (overflow {:#x})' per partition
_APP_SIZE = re.compile(r"(\S+\.bin) binary size (0x[0-9a-fA-F]+) bytes\. Smallest (\w+(?: \(\w+\))?) partition is "
                       r"(0x[0-9a-fA-F]+) bytes\. (0x[0-9a-fA-F]+) bytes \((\d+)%\) free\.")
_TOO_SMALL = re.compile(r"partitions? (?:is|are) too small for binary (\S+) size (0x[0-9a-fA-F]+):"
                        r"(?:\s*- .*?\(overflow (0x[0-9a-fA-F]+)\))?")


@dataclass(frozen=True)
class AppSize:
    binary: str
    image_bytes: int
    partition_bytes: int
    free_bytes: int

    def metrics(self) -> dict[str, float]:
        return {"memory/app_image": float(self.image_bytes), "memory/app_partition": float(self.partition_bytes),
                "memory/app_partition_free": float(self.free_bytes)}


def parse_app_size(log: str) -> AppSize | None:
    """The app's size line from an `idf.py build` log (None if the log has none); EspError when
    check_sizes.py reported the app too large for its partition."""
    too_small = _TOO_SMALL.search(log)
    if too_small:
        over = f", overflow {int(too_small.group(3), 16):,} B" if too_small.group(3) else ""
        raise EspError(f"the firmware does not fit its app partition: {too_small.group(1)} is "
                       f"{int(too_small.group(2), 16):,} B{over}")
    found = [m for m in _APP_SIZE.finditer(log) if m.group(3).startswith("app")]
    if not found:
        return None
    m = found[-1]
    return AppSize(m.group(1), int(m.group(2), 16), int(m.group(4), 16), int(m.group(5), 16))


# -- files unpu writes into the staged project -----------------------------------------------------
_FLASH_SIZES = {2: "2MB", 4: "4MB", 8: "8MB", 16: "16MB", 32: "32MB"}


def flash_size_option(flash_bytes: int) -> str:
    mib = int(flash_bytes) // (1024 * 1024)
    if mib not in _FLASH_SIZES or mib * 1024 * 1024 != int(flash_bytes):
        raise EspError(f"board.memory.flash_bytes={flash_bytes} is not an ESP flash size (2, 4, 8, 16 or 32 MiB)")
    return _FLASH_SIZES[mib]


def app_partition_bytes(flash_bytes: int) -> int:
    """The factory app partition unpu's partitions.csv gives: the flash after APP_OFFSET, in 64 KiB units."""
    return (int(flash_bytes) - APP_OFFSET) // 0x10000 * 0x10000


def partitions_csv(flash_bytes: int) -> str:
    return ("# written by unpu: NVS, then one factory app partition filling the flash\n"
            "# Name, Type, SubType, Offset, Size, Flags\n"
            "nvs, data, nvs, 0x9000, 0x6000,\n"
            f"factory, app, factory, 0x{APP_OFFSET:x}, 0x{app_partition_bytes(flash_bytes):x},\n")


def sdkconfig_unpu(cpu_hz: float, flash_bytes: int, baudrate: int, link: str, psram: str | None) -> str:
    """Kconfig settings from the board YAML (the other half of SDKCONFIG_DEFAULTS)."""
    mhz = int(round(float(cpu_hz) / 1e6))
    if mhz not in (80, 160, 240):
        raise EspError(f"board.cpu.clock_hz={cpu_hz:g}: the ESP32-S3 runs at 80, 160 or 240 MHz")
    lines = ["# written by unpu from the board YAML", f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{mhz}=y",
             f"CONFIG_ESPTOOLPY_FLASHSIZE_{flash_size_option(flash_bytes)}=y",
             "CONFIG_ESP_CONSOLE_UART_DEFAULT=y", f"CONFIG_ESP_CONSOLE_UART_BAUDRATE={int(baudrate)}"]
    if link not in ("uart", "usb_serial_jtag"):
        raise EspError(f"board.serial.link must be uart or usb_serial_jtag, got {link!r}")
    if psram:
        if psram not in ("quad", "octal"):
            raise EspError(f"board.esp.psram must be null, quad or octal, got {psram!r}")
        lines += ["CONFIG_SPIRAM=y", f"CONFIG_SPIRAM_MODE_{'OCT' if psram == 'octal' else 'QUAD'}=y",
                  "CONFIG_SPIRAM_ALLOW_BSS_SEG_EXTERNAL_MEMORY=y"]
    return "\n".join(lines) + "\n"
