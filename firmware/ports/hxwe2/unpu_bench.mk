# The unpu benchmark firmware as a WE2 SDK scenario app (read by EPII_CM55M_APP_S's make through
# app/scenario_app/scenario_app.mk; firmware/ports/hxwe2/Makefile passes UNPU_FW_ROOT and UNPU_CFLAGS).
override SCENARIO_APP_SUPPORT_LIST := $(APP_TYPE)
SCENARIO_APP_INCDIR += $(UNPU_FW_ROOT)/harness $(UNPU_FW_ROOT)/kernels $(UNPU_FW_ROOT)/kernels/ref $(UNPU_FW_ROOT)/ports/common
APPL_DEFINES += -DUNPU_BENCH -DUNPU_ETHOSU -DUNPU_PMU -DUNPU_ETHOSU_BASE=0x53020000 -DUNPU_ETHOSU_SECURE=1 \
                -DUNPU_ETHOSU_PRIVILEGED=1 '-DUNPU_ARENA_ATTR=__attribute__((section(".bss.NoInit.unpu_arena")))' \
                $(UNPU_CFLAGS)

# TFLM + Ethos-U driver (the SDK's prebuilt tflmtag2412_u55tag2411), QSPI flash (XIP), power management
LIB_SEL = pwrmgmt tflmtag2412_u55tag2411 spi_ptl spi_eeprom
MID_SEL =

override OS_SEL :=
override TRUSTZONE := y
override TRUSTZONE_TYPE := security
override TRUSTZONE_FW_TYPE := 1
override CIS_SEL :=
override EPII_USECASE_SEL := drv_onecore_cm55m_s_only

# The SDK's own secure-only TFLM memory layout (code in ITCM, .bss.NoInit* in the 2 MiB system SRAM
# the NPU can reach), taken from the SDK checkout at build time.
override LINKER_SCRIPT_FILE := $(EPII_ROOT)/app/scenario_app/tflm_mb_cls/TFLM_mb_cls_S_only.ld
