#include "textflag.h"

// func growStack()
// See stack_amd64.s.
TEXT ·growStack(SB), 0, $122880-0
	RET
