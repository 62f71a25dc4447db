# TensorFlow Lite Micro with the Arm Ethos-U55, for the Cortex-M55 ports built with plain make
# (corstone300, alif_e7): harness + TFLM runner + the C++ runtime minimum + the kernels (post
# softmax), compiled with the NPU's defines and linked against a TFLM library built for Ethos-U.
#
# TFLM_DIR: a tflite-micro checkout where this has been built once (it fetches its third-party code):
#   make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic TARGET_ARCH=cortex-m55 \
#        CO_PROCESSOR=ethos_u OPTIMIZED_KERNEL_DIR=cmsis_nn microlite
# TFLM_LIB (the .a it made) and ETHOSU_DRIVER_DIR (the Ethos-U core driver) default to its outputs.
# BUILD_H: the build's defines (UNPU_MODEL_ID, UNPU_BUILD_ID, UNPU_TFLM_ARENA_SIZE,
# UNPU_TFLM_INPUT_CAPACITY, UNPU_CPU_HZ, softmax post-processing), force-included in every source;
# MODEL_C: the Vela-optimised model as `const unsigned char unpu_model_tflite[]`.
#
# The port's Makefile sets PORT_DIR, NPU_BASE (the NPU's register base as the core sees it),
# PORT_CFLAGS (its defines and include paths, C and C++), PORT_C_ONLY_FLAGS (the C dialect...) and
# PORT_SRCS (its C sources), then includes this and gives its link rule and the recipe of `check-port`.
include $(PORT_DIR)/../common/arm_gcc.mk

DOWNLOADS = $(TFLM_DIR)/tensorflow/lite/micro/tools/make/downloads
TFLM_LIB ?= $(firstword $(wildcard $(TFLM_DIR)/gen/cortex_m_generic_cortex-m55*ethos_u*/lib/libtensorflow-microlite.a))
ETHOSU_DRIVER_DIR ?= $(DOWNLOADS)/ethos_u_core_driver

CPU_FLAGS := -mcpu=cortex-m55 -mfloat-abi=hard -mfpu=auto -mthumb
NPU_DEFINES := -DUNPU_ETHOSU -DUNPU_PMU -DUNPU_ETHOSU_BASE=$(NPU_BASE) -DUNPU_ETHOSU_SECURE=1 -DUNPU_ETHOSU_PRIVILEGED=1 \
               -DTF_LITE_STATIC_MEMORY '-DUNPU_ARENA_ATTR=__attribute__((section(".unpu_arena")))' \
               -include $(abspath $(BUILD_H))
COMMON_FLAGS := $(CPU_FLAGS) $(OPT) -g -ffunction-sections -fdata-sections -Wall -Wno-unused-parameter \
                $(NPU_DEFINES) -I$(FW_ROOT)/harness -I$(FW_ROOT)/kernels -I$(FW_ROOT)/kernels/ref -I$(COMMON) \
                $(PORT_CFLAGS) -I$(TFLM_DIR) -I$(DOWNLOADS)/flatbuffers/include -I$(DOWNLOADS)/gemmlowp \
                -I$(ETHOSU_DRIVER_DIR)/include
CFLAGS := $(COMMON_FLAGS) $(PORT_C_ONLY_FLAGS)
CXXFLAGS := $(COMMON_FLAGS) -std=c++17 -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit

C_SRCS := $(FW_ROOT)/harness/unpu_harness.c $(PORT_SRCS) $(sort $(wildcard $(FW_ROOT)/kernels/ref/*.c)) $(MODEL_C)
CXX_SRCS := $(FW_ROOT)/harness/runner_tflm.cc $(COMMON)/cxx_min.cc
TFLM_LINK := -Wl,--start-group $(TFLM_LIB) -lc -lm -Wl,--end-group

.PHONY: check check-port
check: check-port
	@test -n "$(TFLM_DIR)" || { echo "TFLM_DIR is not set (a tflite-micro checkout, see common/tflm_ethosu.mk)"; exit 2; }
	@test -f "$(TFLM_LIB)" || { echo "no TFLM library for cortex-m55 + ethos_u under $(TFLM_DIR)/gen (see common/tflm_ethosu.mk)"; exit 2; }
	@test -f "$(ETHOSU_DRIVER_DIR)/include/ethosu_driver.h" || { echo "no Ethos-U core driver at $(ETHOSU_DRIVER_DIR)"; exit 2; }
	@test -f "$(BUILD_H)" -a -f "$(MODEL_C)" || { echo "BUILD_H and MODEL_C must be set"; exit 2; }

include $(COMMON)/rules.mk
