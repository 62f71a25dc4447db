"""Model compilers, one module per toolchain (vela: Arm Ethos-U)."""
