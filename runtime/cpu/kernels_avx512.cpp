// The x86 kernels at the AVX-512 F/BW/VL/VNNI level (see kernels_x86.h).
#define YUAN_X86_VNNI 1
#include "runtime/cpu/kernels_x86.h"
