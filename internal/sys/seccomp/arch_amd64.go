package seccomp

// nativeArch is AUDIT_ARCH_X86_64, the architecture a filter accepts.
const nativeArch = 0xc000003e

// x32Bit marks syscalls of the x32 ABI, which share AUDIT_ARCH_X86_64.
const x32Bit = 0x40000000
