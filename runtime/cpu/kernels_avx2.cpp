// The x86 kernels at the AVX2 + FMA + F16C level (see kernels_x86.h).
#define YUAN_X86_VNNI 0
#include "runtime/cpu/kernels_x86.h"
