# unpu's part of an ai8x-synthesis project for the MAX78000 / MAX78002 (MSDK make system).
# unpu/boards/maxim.py appends `include <this file>` to the project.mk that ai8xize generated,
# moves the generated main.c (its known-answer test) aside, and runs
#
#   make -C <project> MAXIM_PATH=$MAXIM_PATH TARGET=MAX78000 BOARD=EvKit_V1 UNPU_BUILD_H=<unpu_build.h>
#
# The MSDK's auto-search still compiles the project's own *.c (cnn.c, softmax.c); unpu's sources are
# added by full path (SRCS), its headers on IPATH (MSDK user guide, "Build Configuration Variables").
# UNPU_BUILD_H: the build's defines (model id, build id, input geometry and CNN data addresses,
# CNN clock), force-included in every source.
UNPU_PORT_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
UNPU_FW_ROOT := $(abspath $(UNPU_PORT_DIR)/../..)

ifeq "$(UNPU_BUILD_H)" ""
$(error UNPU_BUILD_H (unpu's build header) is not set)
endif

UNPU_COMMON := $(UNPU_FW_ROOT)/ports/common

SRCS += $(UNPU_FW_ROOT)/harness/unpu_harness.c $(UNPU_FW_ROOT)/harness/runner_io.c $(UNPU_PORT_DIR)/port_msdk.c \
        $(UNPU_PORT_DIR)/runner_ai8x.c $(UNPU_PORT_DIR)/ai8x_layout.c $(UNPU_COMMON)/cortex_m.c \
        $(UNPU_COMMON)/port_dwt.c $(UNPU_COMMON)/port_defaults.c $(UNPU_COMMON)/main.c
IPATH += $(UNPU_FW_ROOT)/harness $(UNPU_PORT_DIR) $(UNPU_COMMON)
PROJ_CFLAGS += -include $(abspath $(UNPU_BUILD_H))
MXC_OPTIMIZE_CFLAGS = -O2
