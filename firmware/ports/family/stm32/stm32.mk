# What the STM32 boards' Makefiles share: harness + this family's SDK-free port (port.c) and st-ai
# runner (runner_stai.c) + common/ + the board's sources on its STM32Cube package + the C files
# stedgeai generated (GEN_DIR), linked with ST Edge AI's network runtime (AI_LIB) into app.elf and
# app.bin. The board's Makefile sets PORT_DIR, CPU_FLAGS, BOARD_CFLAGS (defines, SDK include paths),
# BOARD_SRCS, ASM_SRCS (the SDK's startup file), LD_SCRIPT and AI_LIB, includes this file, then
# gives the recipe of `check-board` (its SDK checks).
include $(PORT_DIR)/../common/arm_gcc.mk
FAMILY := $(FW_ROOT)/ports/family/stm32

CFLAGS := $(CPU_FLAGS) $(OPT) -g -std=gnu11 -Wall -ffunction-sections -fdata-sections $(BOARD_DEFINES) \
          -DUSE_HAL_DRIVER -include $(abspath $(BUILD_H)) \
          -I$(FW_ROOT)/harness -I$(FW_ROOT)/kernels -I$(FW_ROOT)/kernels/ref -I$(PORT_DIR) -I$(FAMILY) -I$(COMMON) \
          -I$(GEN_DIR) $(BOARD_INCLUDES)
LDFLAGS := $(CPU_FLAGS) --specs=nano.specs --specs=nosys.specs -T$(LD_SCRIPT) -Wl,--gc-sections \
           -Wl,-Map=$(BUILD_DIR)/app.map -Wl,--no-warn-rwx-segments

C_SRCS := $(FW_ROOT)/harness/unpu_harness.c $(FW_ROOT)/harness/runner_io.c $(FAMILY)/port.c $(FAMILY)/stm32_hal.c \
          $(FAMILY)/runner_stai.c $(COMMON)/cortex_m.c $(COMMON)/port_dwt.c $(COMMON)/port_defaults.c \
          $(sort $(wildcard $(FW_ROOT)/kernels/ref/*.c)) $(BOARD_SRCS)

.PHONY: all check check-board
all: check $(BUILD_DIR)/app.bin

check: check-board
	@test -f "$(AI_LIB)" || { echo "no ST Edge AI network runtime for $(firstword $(CPU_FLAGS)) under $(AI)/Lib/GCC"; exit 2; }
	@test -f "$(GEN_DIR)/network.c" || { echo "no stedgeai output (network.c) in GEN_DIR=$(GEN_DIR)"; exit 2; }
	@test -f "$(BUILD_H)" || { echo "BUILD_H must be set"; exit 2; }

include $(COMMON)/rules.mk

$(BUILD_DIR)/app.elf: $(OBJS) $(LD_SCRIPT)
	$(CC) $(LDFLAGS) $(OBJS) -Wl,--start-group $(AI_LIB) -lc -lm -Wl,--end-group -o $@

$(BUILD_DIR)/app.bin: $(BUILD_DIR)/app.elf
	$(OBJCOPY) -O binary $< $@
