#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "runtime/core/huge_pages.h"

namespace yuan {
namespace {

// Resident bytes of this process (/proc/self/statm, second field).
size_t ResidentBytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// The VmFlags line of the mapping in /proc/self/smaps that holds `p`.
std::string VmFlagsOf(const void* p) {
  std::ifstream f("/proc/self/smaps");
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(f, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find('-')) {
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

TEST_CASE("HugePageBuffer of 0 bytes is empty", "[core]") {
  const HugePageBuffer b = HugePageBuffer::Allocate(0);
  CHECK(b.data() == nullptr);
  CHECK(b.size() == 0);
}

TEST_CASE("a large HugePageBuffer is zeroed, 2 MiB aligned and advised as huge pages", "[core]") {
  const size_t n = 5 * HugePageBuffer::kHugePage + 3;
  HugePageBuffer b = HugePageBuffer::Allocate(n);
  REQUIRE(b.data() != nullptr);
  CHECK(b.size() == n);
  CHECK(AllZero(b.data(), n));
  b[0] = 1;
  b[n - 1] = 2;
  CHECK((b[0] == 1 && b[n - 1] == 2));
  if (HugePageBuffer::kFromHeap) {
    WARN("skipped the mapping checks: sanitizer builds calloc the buffer");
    return;
  }
  CHECK(reinterpret_cast<uintptr_t>(b.data()) % HugePageBuffer::kHugePage == 0);
  const std::string flags = VmFlagsOf(b.data());
  INFO(flags);
  CHECK(flags.find(" hg") != std::string::npos);  // MADV_HUGEPAGE
}

TEST_CASE("a small HugePageBuffer uses ordinary pages", "[core]") {
  const size_t n = 100000;
  const HugePageBuffer b = HugePageBuffer::Allocate(n);
  REQUIRE(b.data() != nullptr);
  CHECK(AllZero(b.data(), n));
  if (HugePageBuffer::kFromHeap) {
    WARN("skipped the mapping checks: sanitizer builds calloc the buffer");
    return;
  }
  CHECK(reinterpret_cast<uintptr_t>(b.data()) % static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE)) == 0);
  CHECK(VmFlagsOf(b.data()).find(" hg") == std::string::npos);
}

TEST_CASE("a HugePageBuffer's pages become resident only when written", "[core]") {
  const size_t before = ResidentBytes();
  HugePageBuffer b = HugePageBuffer::Allocate(size_t{512} << 20);
  REQUIRE(b.data() != nullptr);
  CHECK(ResidentBytes() < before + (size_t{8} << 20));
  b[size_t{300} << 20] = 7;  // one page: at most one huge page
  CHECK(ResidentBytes() < before + (size_t{8} << 20));
}

TEST_CASE("a moved HugePageBuffer keeps its memory and leaves the source empty", "[core]") {
  HugePageBuffer a = HugePageBuffer::Allocate(3 * HugePageBuffer::kHugePage);
  REQUIRE(a.data() != nullptr);
  a[12345] = 42;
  uint8_t* p = a.data();
  HugePageBuffer b(std::move(a));
  CHECK(a.data() == nullptr);
  CHECK((b.data() == p && b[12345] == 42));
  HugePageBuffer c = HugePageBuffer::Allocate(4096);
  c = std::move(b);
  CHECK((c.data() == p && c[12345] == 42 && c.size() == 3 * HugePageBuffer::kHugePage));
}

}  // namespace
}  // namespace yuan
