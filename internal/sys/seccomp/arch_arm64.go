package seccomp

// nativeArch is AUDIT_ARCH_AARCH64, the architecture a filter accepts.
const nativeArch = 0xc00000b7

// x32Bit is zero: arm64 has no second ABI sharing its audit arch.
const x32Bit = 0
