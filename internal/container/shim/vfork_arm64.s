#include "textflag.h"

// func rawVfork(flags, parentTID uintptr) (pid, errno uintptr)
//
// clone(flags, 0, parentTID, 0, 0) for a child that shares this memory and stack
// (CLONE_VM|CLONE_VFORK in flags): it returns twice, first in the child,
// then in the parent once the child has exec'd or exited. The return
// address stays in the link register, which each of them has its own
// copy of.
TEXT ·rawVfork(SB),NOSPLIT|NOFRAME,$0-32
	MOVD	flags+0(FP), R0
	MOVD	$0, R1
	MOVD	parentTID+8(FP), R2
	MOVD	$0, R3
	MOVD	$0, R4
	MOVD	$220, R8 // SYS_clone
	SVC
	CMN	$4095, R0
	BCC	ok
	MOVD	ZR, pid+16(FP)
	NEG	R0, R0
	MOVD	R0, errno+24(FP)
	RET
ok:
	MOVD	R0, pid+16(FP)
	MOVD	ZR, errno+24(FP)
	RET
