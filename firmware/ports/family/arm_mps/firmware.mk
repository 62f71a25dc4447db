# Firmware image for a QEMU MPS2/MPS3 port: harness + codegen runner + port + kernels + model.
#
#   make -C firmware/ports/qemu_m55 MODEL_DIR=/path/with/model.c BUILD_DIR=/tmp/out [BUILD_ID=abc]
#   make -C firmware/ports/qemu_m55 MODEL_DIR=... BUILD_DIR=... run     # QEMU on the terminal
#
# No path may hold a space (make splits it) or a shell character (a recipe would run it); unpu
# builds in the output directory, with `firmware` there a symlink to firmware/ and every path
# relative: make -f firmware/ports/qemu_m55/Makefile FW_ROOT=firmware BUILD_DIR=build MODEL_DIR=model
#
# The port's Makefile sets PORT_DIR (its own folder, as make was given it: never made absolute),
# PORT (its linker script is $(PORT).ld), CPU_FLAGS and QEMU_MACHINE, then includes this. MODEL_DIR holds model.c/model.h from
# `python -m unpu.codegen MODEL.tflite DIR`. APP_SRCS replaces the harness + runner + main
# (e.g. a port self-test); EXTRA_CFLAGS adds flags.
include $(PORT_DIR)/../common/arm_gcc.mk
FAMILY := $(FW_ROOT)/ports/family/arm_mps
BUILD_ID ?= dev
# KERNELS: a folder of firmware/kernels whose unpu_<op> override the reference kernels' weak ones
KERNELS ?= ref
KERNEL_SRCS := $(sort $(wildcard $(FW_ROOT)/kernels/ref/*.c)) \
               $(if $(filter-out ref,$(KERNELS)),$(sort $(wildcard $(FW_ROOT)/kernels/$(KERNELS)/*.c)))

APP_SRCS ?= $(FW_ROOT)/harness/unpu_harness.c $(FW_ROOT)/harness/runner_codegen.c $(MODEL_DIR)/model.c \
            $(COMMON)/main.c
C_SRCS := $(APP_SRCS) $(FAMILY)/startup.c $(FAMILY)/cmsdk_port.c $(FAMILY)/syscalls.c \
          $(KERNEL_SRCS) $(COMMON)/cortex_m.c $(COMMON)/port_defaults.c

CFLAGS := $(CPU_FLAGS) $(OPT) -g -std=gnu99 -Wall -Wextra -Wno-unused-parameter \
          -ffunction-sections -fdata-sections -fno-common \
          -I$(FW_ROOT)/harness -I$(FW_ROOT)/kernels -I$(FW_ROOT)/kernels/ref -I$(FW_ROOT)/kernels/$(KERNELS) -I$(FAMILY) -I$(COMMON) -I$(PORT_DIR) \
          $(if $(MODEL_DIR),-I$(MODEL_DIR)) \
          '-DUNPU_ARENA_ATTR=__attribute__((section(".unpu_arena"), aligned(16)))' \
          '-DUNPU_BUILD_ID="$(BUILD_ID)"' $(EXTRA_CFLAGS)
LDFLAGS := $(CPU_FLAGS) --specs=nano.specs -nostartfiles -L$(FAMILY) -T$(PORT_DIR)/$(PORT).ld \
           -Wl,--gc-sections -Wl,-Map=$(BUILD_DIR)/app.map -Wl,--no-warn-rwx-segments

.PHONY: all run
all: $(BUILD_DIR)/app.elf

include $(COMMON)/rules.mk

$(BUILD_DIR)/app.elf: $(OBJS) $(PORT_DIR)/$(PORT).ld $(FAMILY)/cmsdk_sections.ld
	$(CC) $(LDFLAGS) $(OBJS) -o $@ -lc -lm
	$(SIZE) -A $@ > $(BUILD_DIR)/size.txt

run: $(BUILD_DIR)/app.elf
	qemu-system-arm -M $(QEMU_MACHINE) -kernel $< -nographic -icount shift=0 \
	  -semihosting-config enable=on,target=native -monitor none
