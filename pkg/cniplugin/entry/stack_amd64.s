#include "textflag.h"

// func growStack()
// A frame of stackFrame (120 KiB) bytes and no body: the prologue the
// assembler inserts grows the stack to fit it; nothing in the frame is
// touched.
TEXT ·growStack(SB), 0, $122880-0
	RET
