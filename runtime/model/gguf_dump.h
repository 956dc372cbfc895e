// Human-readable dump of a GGUF file for `yuan inspect`: header, every
// metadata key (long arrays abbreviated), and the tensor table.
#pragma once

#include <ostream>

#include "runtime/model/gguf.h"

namespace yuan {

void DumpGguf(const GgufFile& file, std::ostream& out);

}  // namespace yuan
