#include "textflag.h"

// func rawVfork(flags, parentTID uintptr) (pid, errno uintptr)
//
// clone(flags, 0, parentTID, 0, 0) for a child that shares this memory and stack
// (CLONE_VM|CLONE_VFORK in flags): it returns twice, first in the child,
// then in the parent once the child has exec'd or exited. The child may
// reuse the stack below the caller's frame meanwhile, so the return
// address is kept in a register across the call, not on the stack.
TEXT ·rawVfork(SB),NOSPLIT|NOFRAME,$0-32
	MOVQ	flags+0(FP), DI
	MOVQ	$0, SI
	MOVQ	parentTID+8(FP), DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX // SYS_clone
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$0, pid+16(FP)
	NEGQ	AX
	MOVQ	AX, errno+24(FP)
	RET
ok:
	MOVQ	AX, pid+16(FP)
	MOVQ	$0, errno+24(FP)
	RET
