# The arm-none-eabi toolchain and the paths of the Cortex-M ports built with plain make (included
# first; the port's Makefile has set PORT_DIR). common/rules.mk then turns C_SRCS... into OBJS.
# FW_ROOT (firmware/) may be given, e.g. relative to the working directory: make cannot handle a
# path with a space, and a recipe's shell would interpret a backtick or a `$` in one, so unpu runs
# make in the build directory with relative paths only (unpu/boards/firmware.py, port_make_command).
FW_ROOT ?= $(PORT_DIR)/../..
COMMON := $(FW_ROOT)/ports/common
CC := arm-none-eabi-gcc
CXX := arm-none-eabi-g++
OBJCOPY := arm-none-eabi-objcopy
SIZE := arm-none-eabi-size
BUILD_DIR ?= build
OPT ?= -O2
