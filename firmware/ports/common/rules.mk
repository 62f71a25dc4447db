# Object rules for the ports built with plain make: every source compiles to BUILD_DIR/obj/<name>.o
# (names are unique across a firmware). The including Makefile sets C_SRCS and CFLAGS, and as it
# needs CXX_SRCS, CXX and CXXFLAGS (C++), ASM_SRCS (.s, assembled with CPU_FLAGS); OBJS is the
# objects in source order.
OBJS := $(addprefix $(BUILD_DIR)/obj/,$(notdir $(C_SRCS:.c=.o) $(CXX_SRCS:.cc=.o) $(ASM_SRCS:.s=.o)))
vpath %.c $(sort $(dir $(C_SRCS)))
vpath %.cc $(sort $(dir $(CXX_SRCS)))
vpath %.s $(sort $(dir $(ASM_SRCS)))

$(BUILD_DIR)/obj/%.o: %.c | $(BUILD_DIR)/obj
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD_DIR)/obj/%.o: %.cc | $(BUILD_DIR)/obj
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD_DIR)/obj/%.o: %.s | $(BUILD_DIR)/obj
	$(CC) $(CPU_FLAGS) -c $< -o $@

$(BUILD_DIR)/obj:
	mkdir -p $@

.PHONY: clean
clean:
	rm -rf $(BUILD_DIR)
