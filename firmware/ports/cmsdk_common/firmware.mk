# Firmware image for a QEMU MPS2/MPS3 port: harness + codegen runner + port + kernels + model.
#
#   make -C firmware/ports/qemu_m55 MODEL_DIR=/path/with/model.c BUILD_DIR=/tmp/out [BUILD_ID=abc]
#   make -C firmware/ports/qemu_m55 MODEL_DIR=... BUILD_DIR=... run     # QEMU on the terminal
#
# MODEL_DIR holds model.c/model.h from `python -m unpu.codegen MODEL.tflite DIR`.
# APP_SRCS replaces the harness + runner (e.g. a port self-test); EXTRA_CFLAGS adds flags.
FW_ROOT := $(abspath $(PORT_DIR)/../..)
COMMON := $(FW_ROOT)/ports/cmsdk_common
CC := arm-none-eabi-gcc
SIZE := arm-none-eabi-size
BUILD_DIR ?= build
BUILD_ID ?= dev
OPT ?= -O2

APP_SRCS ?= $(FW_ROOT)/harness/unpu_harness.c $(FW_ROOT)/harness/runner_codegen.c $(MODEL_DIR)/model.c
SRCS := $(APP_SRCS) $(COMMON)/startup.c $(COMMON)/cmsdk_port.c $(COMMON)/syscalls.c \
        $(sort $(wildcard $(FW_ROOT)/kernels/ref/*.c))

CFLAGS := $(CPU_FLAGS) $(OPT) -g -std=gnu99 -Wall -Wextra -Wno-unused-parameter \
          -ffunction-sections -fdata-sections -fno-common \
          -I$(FW_ROOT)/harness -I$(FW_ROOT)/kernels -I$(FW_ROOT)/kernels/ref -I$(COMMON) -I$(PORT_DIR) \
          $(if $(MODEL_DIR),-I$(MODEL_DIR)) \
          '-DUNPU_ARENA_ATTR=__attribute__((section(".unpu_arena"), aligned(16)))' \
          '-DUNPU_BUILD_ID="$(BUILD_ID)"' $(EXTRA_CFLAGS)
LDFLAGS := $(CPU_FLAGS) --specs=nano.specs -nostartfiles -L$(COMMON) -T$(PORT_DIR)/$(PORT).ld \
           -Wl,--gc-sections -Wl,-Map=$(BUILD_DIR)/app.map -Wl,--no-warn-rwx-segments

OBJS := $(addprefix $(BUILD_DIR)/obj/,$(notdir $(SRCS:.c=.o)))
vpath %.c $(sort $(dir $(SRCS)))

.PHONY: all run clean
all: $(BUILD_DIR)/app.elf

$(BUILD_DIR)/obj/%.o: %.c | $(BUILD_DIR)/obj
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD_DIR)/app.elf: $(OBJS) $(PORT_DIR)/$(PORT).ld $(COMMON)/cmsdk_sections.ld
	$(CC) $(LDFLAGS) $(OBJS) -o $@ -lc -lm
	$(SIZE) -A $@ > $(BUILD_DIR)/size.txt

$(BUILD_DIR)/obj:
	mkdir -p $@

run: $(BUILD_DIR)/app.elf
	qemu-system-arm -M $(QEMU_MACHINE) -kernel $< -nographic -icount shift=0 \
	  -semihosting-config enable=on,target=native -monitor none

clean:
	rm -rf $(BUILD_DIR)
