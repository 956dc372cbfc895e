// The loss log (CSV), its plot (a PNG we encode ourselves) and the progress
// line. Everything a run writes to disk goes through WriteFileAtomically, so
// a reader (a person watching the plot, a resumed run reading the CSV) never
// sees half a file.
#include "trainer/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string_view>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace yuan::train {
namespace {

constexpr std::string_view kCsvHeader =
    "step,epoch,loss,eval_loss,lr,grad_norm,tokens,tokens_per_s,elapsed_s";
constexpr int kCsvFields = 9;

absl::Status ErrnoStatus(int err, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

// Writes `size` bytes to a temporary file next to `path` and renames it over
// `path` (atomic on POSIX within one file system).
absl::Status WriteFileAtomically(const std::string& path, const void* data, size_t size) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      absl::StrCat(path, ".tmp.", static_cast<int64_t>(getpid()), ".", counter.fetch_add(1));
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "cannot create " + tmp);
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    const ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      close(fd);
      unlink(tmp.c_str());
      return ErrnoStatus(err, "cannot write " + tmp);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // fsync before rename: after a crash the file is the old one or the new
  // one, not an empty one.
  if (fsync(fd) != 0 || close(fd) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(err, "cannot write " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(err, "cannot rename " + tmp + " to " + path);
  }
  return absl::OkStatus();
}

// Shortest text that reads back to the same double (to_chars), so a CSV
// round trip is exact and a resumed run continues the same numbers.
void AppendNumber(std::string* out, double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
void AppendNumber(std::string* out, int64_t v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

template <typename T>
bool ParseWhole(std::string_view s, T* v) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

absl::Status WriteLossCsv(const std::string& path, const std::vector<LogRow>& rows) {
  std::string out(kCsvHeader);
  out += '\n';
  for (const LogRow& r : rows) {
    AppendNumber(&out, r.step);
    out += ',';
    AppendNumber(&out, r.epoch);
    out += ',';
    AppendNumber(&out, r.loss);
    out += ',';
    if (r.eval_loss.has_value()) AppendNumber(&out, *r.eval_loss);
    out += ',';
    AppendNumber(&out, r.lr);
    out += ',';
    AppendNumber(&out, r.grad_norm);
    out += ',';
    AppendNumber(&out, r.tokens);
    out += ',';
    AppendNumber(&out, r.tokens_per_s);
    out += ',';
    AppendNumber(&out, r.elapsed_s);
    out += '\n';
  }
  return WriteFileAtomically(path, out.data(), out.size());
}

absl::StatusOr<std::vector<LogRow>> ReadLossCsv(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return ErrnoStatus(errno, "cannot open " + path);
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return absl::InternalError("cannot read " + path);

  std::vector<LogRow> rows;
  size_t pos = 0;
  int64_t line_no = 0;
  bool saw_header = false;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto error = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", why));
    };
    if (!saw_header) {
      if (line != kCsvHeader) {
        return error(absl::StrCat("expected the header \"", std::string(kCsvHeader), "\""));
      }
      saw_header = true;
      continue;
    }
    if (line.empty()) {
      // Only the end of the file may be blank.
      if (text.find_first_not_of("\r\n", pos) == std::string::npos) break;
      return error("empty line");
    }
    std::array<std::string_view, kCsvFields> field;
    int count = 0;
    size_t start = 0;
    while (true) {
      const size_t comma = line.find(',', start);
      const std::string_view piece =
          line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (count < kCsvFields) field[count] = piece;
      ++count;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (count != kCsvFields) {
      return error(absl::StrCat("expected ", kCsvFields, " fields, found ", count));
    }
    static constexpr std::array<const char*, kCsvFields> kNames = {
        "step", "epoch", "loss", "eval_loss", "lr", "grad_norm", "tokens", "tokens_per_s",
        "elapsed_s"};
    const auto bad = [&](int i) {
      return error(absl::StrCat("field ", kNames[i], ": not a number: \"", std::string(field[i]), "\""));
    };
    LogRow r;
    if (!ParseWhole(field[0], &r.step)) return bad(0);
    if (!ParseWhole(field[1], &r.epoch)) return bad(1);
    if (!ParseWhole(field[2], &r.loss)) return bad(2);
    if (!field[3].empty()) {
      double e;
      if (!ParseWhole(field[3], &e)) return bad(3);
      r.eval_loss = e;
    }
    if (!ParseWhole(field[4], &r.lr)) return bad(4);
    if (!ParseWhole(field[5], &r.grad_norm)) return bad(5);
    if (!ParseWhole(field[6], &r.tokens)) return bad(6);
    if (!ParseWhole(field[7], &r.tokens_per_s)) return bad(7);
    if (!ParseWhole(field[8], &r.elapsed_s)) return bad(8);
    rows.push_back(r);
  }
  if (!saw_header) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":1: empty file, expected the header"));
  }
  return rows;
}

// ---------------------------------------------------------------------------
// PNG (W3C PNG spec / RFC 2083) with a zlib stream (RFC 1950) of stored
// deflate blocks (RFC 1951, BTYPE 00): no compression library needed.

namespace {

// CRC-32 of ISO 3309 / ITU-T V.42 (reflected polynomial 0xEDB88320), over a
// chunk's type and data, as the PNG spec's sample code computes it.
uint32_t Crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void PutU32(std::vector<uint8_t>* out, uint32_t v) {  // big-endian, as PNG and zlib want
  out->push_back(static_cast<uint8_t>(v >> 24));
  out->push_back(static_cast<uint8_t>(v >> 16));
  out->push_back(static_cast<uint8_t>(v >> 8));
  out->push_back(static_cast<uint8_t>(v));
}

void PutChunk(std::vector<uint8_t>* out, const char type[4], const std::vector<uint8_t>& data) {
  PutU32(out, static_cast<uint32_t>(data.size()));
  const size_t type_at = out->size();
  out->insert(out->end(), type, type + 4);
  out->insert(out->end(), data.begin(), data.end());
  PutU32(out, Crc32(out->data() + type_at, 4 + data.size()));
}

}  // namespace

std::vector<uint8_t> EncodePng(const std::vector<uint8_t>& rgb, int width, int height) {
  if (width <= 0 || height <= 0) return {};
  const size_t row_bytes = static_cast<size_t>(width) * 3;
  // The raw data (a filter-type byte per row) must fit a 32-bit chunk length.
  if (static_cast<uint64_t>(row_bytes + 1) * static_cast<uint64_t>(height) > (1ull << 30)) {
    return {};
  }
  if (rgb.size() != row_bytes * static_cast<size_t>(height)) return {};

  // Scanlines, each led by filter type 0 (None).
  std::vector<uint8_t> raw;
  raw.reserve((row_bytes + 1) * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    const uint8_t* row = rgb.data() + static_cast<size_t>(y) * row_bytes;
    raw.insert(raw.end(), row, row + row_bytes);
  }

  // zlib: CMF 0x78 (deflate, 32K window), FLG 0x01 (no dictionary, fastest;
  // 0x7801 is a multiple of 31 as the FCHECK bits require).
  std::vector<uint8_t> z = {0x78, 0x01};
  constexpr size_t kMaxStored = 65535;
  size_t pos = 0;
  do {
    const size_t len = std::min(kMaxStored, raw.size() - pos);
    const bool final = pos + len == raw.size();
    // Block header: BFINAL bit, BTYPE 00, then padding to the byte boundary.
    z.push_back(final ? 1 : 0);
    z.push_back(static_cast<uint8_t>(len & 0xFF));  // LEN, little-endian
    z.push_back(static_cast<uint8_t>(len >> 8));
    z.push_back(static_cast<uint8_t>(~len & 0xFF));  // NLEN = ~LEN
    z.push_back(static_cast<uint8_t>((~len >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + static_cast<ptrdiff_t>(pos),
             raw.begin() + static_cast<ptrdiff_t>(pos + len));
    pos += len;
  } while (pos < raw.size());
  // Adler-32 of the uncompressed data, big-endian. 5552 bytes is the most
  // that can be summed before b may overflow 32 bits (zlib's NMAX).
  uint32_t a = 1, b = 0;
  for (size_t i = 0; i < raw.size();) {
    const size_t end = std::min(raw.size(), i + 5552);
    for (; i < end; ++i) {
      a += raw[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  PutU32(&z, (b << 16) | a);

  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  PutU32(&ihdr, static_cast<uint32_t>(width));
  PutU32(&ihdr, static_cast<uint32_t>(height));
  ihdr.push_back(8);  // bit depth
  ihdr.push_back(2);  // colour type: RGB
  ihdr.push_back(0);  // compression: deflate
  ihdr.push_back(0);  // filter method 0
  ihdr.push_back(0);  // no interlace
  PutChunk(&png, "IHDR", ihdr);
  PutChunk(&png, "IDAT", z);
  PutChunk(&png, "IEND", {});
  return png;
}

// ---------------------------------------------------------------------------
// The plot.

namespace {

struct Rgb {
  uint8_t r, g, b;
};
// The series colours are matplotlib's first two (tab:blue, tab:orange);
// tests/trainer/log_test.cpp looks for exactly these values.
constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kLossColour{31, 119, 180};
constexpr Rgb kEvalColour{255, 127, 14};

// A 5x7 bitmap font with what tick labels and titles need; each row's five
// low bits are the pixels, most significant on the left.
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
    {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}},
    {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
    {'s', {0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E}},
    {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
    {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}},
};

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), rgb_(static_cast<size_t>(w) * h * 3, 255) {}

  void Set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    uint8_t* p = &rgb_[(static_cast<size_t>(y) * w_ + x) * 3];
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
  }
  void Fill(int x0, int y0, int x1, int y1, Rgb c) {  // inclusive corners
    for (int y = std::max(0, y0); y <= std::min(h_ - 1, y1); ++y) {
      for (int x = std::max(0, x0); x <= std::min(w_ - 1, x1); ++x) Set(x, y, c);
    }
  }
  int TextWidth(std::string_view s, int scale) const {
    return s.empty() ? 0 : static_cast<int>(s.size()) * 6 * scale - scale;
  }
  // Top-left corner at (x, y); characters without a glyph are blank.
  void Text(int x, int y, std::string_view s, int scale, Rgb c) {
    for (char ch : s) {
      for (const Glyph& g : kFont) {
        if (g.c != ch) continue;
        for (int row = 0; row < 7; ++row) {
          for (int col = 0; col < 5; ++col) {
            if ((g.rows[row] >> (4 - col)) & 1) {
              Fill(x + col * scale, y + row * scale, x + col * scale + scale - 1,
                   y + row * scale + scale - 1, c);
            }
          }
        }
        break;
      }
      x += 6 * scale;
    }
  }
  const std::vector<uint8_t>& rgb() const { return rgb_; }

 private:
  int w_, h_;
  std::vector<uint8_t> rgb_;
};

// A square brush of side `size` confined to a rectangle: lines drawn with it
// stay inside the plot area.
struct Brush {
  Canvas* canvas;
  int size;
  Rgb colour;
  int x0, y0, x1, y1;  // clip rectangle, inclusive

  void Dot(int x, int y) const {
    const int lo = -(size - 1) / 2, hi = size / 2;
    canvas->Fill(std::max(x0, x + lo), std::max(y0, y + lo), std::min(x1, x + hi),
                 std::min(y1, y + hi), colour);
  }
  void Line(int xa, int ya, int xb, int yb) const {  // Bresenham
    const int dx = std::abs(xb - xa), sx = xa < xb ? 1 : -1;
    const int dy = -std::abs(yb - ya), sy = ya < yb ? 1 : -1;
    int err = dx + dy;
    while (true) {
      Dot(xa, ya);
      if (xa == xb && ya == yb) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        xa += sx;
      }
      if (e2 <= dx) {
        err += dx;
        ya += sy;
      }
    }
  }
};

struct Axis {
  double lo = 0.0, hi = 1.0, step = 0.5;
  int decimals = 0;  // for fixed-point labels
};

// A range covering [min, max] with about `target` ticks at 1, 2, 2.5 or 5
// times a power of ten (integer ticks only when `integer`).
Axis NiceAxis(double min, double max, int target, bool integer) {
  if (!std::isfinite(min) || !std::isfinite(max) || min > max) {
    min = 0.0;
    max = 1.0;
  }
  if (max - min <= std::abs(max) * 1e-12 || !(max - min > 0.0)) {
    // One value (or all equal): a small range around it.
    const double pad = integer ? 1.0 : std::max(std::abs(min) * 0.05, 1e-3);
    min -= pad;
    max += pad;
    if (integer && min < 0.0 && max - 2.0 >= 0.0) min = 0.0;
  }
  const double span = max - min;
  Axis a;
  if (!std::isfinite(span) || span <= 0.0) {
    a.lo = min;
    a.hi = max;
    a.step = 0.0;
    return a;
  }
  const double raw = span / std::max(1, target - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double frac = raw / mag;
  double nice;
  if (frac <= 1.0) nice = 1.0;
  else if (frac <= 2.0) nice = 2.0;
  else if (frac <= 2.5 && !integer) nice = 2.5;
  else if (frac <= 5.0) nice = 5.0;
  else nice = 10.0;
  a.step = nice * mag;
  if (integer) a.step = std::max(1.0, std::round(a.step));
  a.lo = std::floor(min / a.step) * a.step;
  a.hi = std::ceil(max / a.step) * a.step;
  if (a.hi <= a.lo) a.hi = a.lo + a.step;
  // Fewest decimals that show the step exactly (2.5e-2 needs 3).
  a.decimals = 0;
  while (a.decimals < 12) {
    const double scaled = a.step * std::pow(10.0, a.decimals);
    if (std::abs(scaled - std::round(scaled)) <= 1e-6 * scaled) break;
    ++a.decimals;
  }
  return a;
}

// A tick label: fixed point for ordinary magnitudes, "1.5e6" / "2e-5"
// outside them (the font has no '+', and shorter labels fit more ticks).
std::string TickLabel(double v, const Axis& axis) {
  if (axis.step > 0.0 && std::abs(v) < axis.step * 1e-9) return "0";
  const double av = std::abs(v);
  char buf[64];
  if (av >= 1e6 || av < 1e-3) {
    // Mantissa decimals: the tick's magnitude over the step's, plus what
    // the step's own mantissa needs (2.5 needs one).
    const double step_exp = std::floor(std::log10(axis.step));
    const double step_mantissa = axis.step / std::pow(10.0, step_exp);
    int extra = 0;
    while (extra < 3 && std::abs(step_mantissa * std::pow(10.0, extra) -
                                 std::round(step_mantissa * std::pow(10.0, extra))) > 1e-6) {
      ++extra;
    }
    const int digits = static_cast<int>(std::floor(std::log10(av)) - step_exp) + extra;
    const int precision = std::clamp(digits, 0, 12);
    std::snprintf(buf, sizeof buf, "%.*e", precision, v);
    std::string s = buf;
    const size_t e = s.find('e');
    std::string mantissa = s.substr(0, e);
    if (mantissa.find('.') != std::string::npos) {
      while (!mantissa.empty() && mantissa.back() == '0') mantissa.pop_back();
      if (!mantissa.empty() && mantissa.back() == '.') mantissa.pop_back();
    }
    int exponent = std::atoi(s.c_str() + e + 1);
    return absl::StrCat(mantissa, "e", exponent);
  }
  std::snprintf(buf, sizeof buf, "%.*f", axis.decimals, v);
  return buf;
}

std::vector<double> Ticks(const Axis& a) {
  std::vector<double> t;
  if (!(a.step > 0.0)) return t;
  const double n = std::round((a.hi - a.lo) / a.step);
  if (!(n >= 0.0) || n > 100.0) return t;
  for (int k = 0; k <= static_cast<int>(n); ++k) t.push_back(a.lo + k * a.step);
  return t;
}

}  // namespace

absl::Status WriteLossPlot(const std::string& path, const std::vector<LogRow>& rows, int width,
                           int height) {
  if (width < 160 || height < 120 || width > 8192 || height > 8192) {
    return absl::InvalidArgumentError(absl::StrCat(
        "loss plot size ", width, "x", height, " out of range (160x120 to 8192x8192)"));
  }
  // Text and lines grow with the image: 2x at the default 800x480.
  const int s = std::clamp(std::min(width / 400, height / 240), 1, 4);

  // The data's extent, non-finite values left out.
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min;
  double y_min = x_min, y_max = -x_min;
  bool have_eval = false;
  for (const LogRow& r : rows) {
    const double x = static_cast<double>(r.step);
    const bool loss_ok = std::isfinite(r.loss);
    const bool eval_ok = r.eval_loss.has_value() && std::isfinite(*r.eval_loss);
    if (!loss_ok && !eval_ok) continue;
    x_min = std::min(x_min, x);
    x_max = std::max(x_max, x);
    if (loss_ok) {
      y_min = std::min(y_min, r.loss);
      y_max = std::max(y_max, r.loss);
    }
    if (eval_ok) {
      have_eval = true;
      y_min = std::min(y_min, *r.eval_loss);
      y_max = std::max(y_max, *r.eval_loss);
    }
  }
  const int cell_h = 7 * s;

  // Layout: legend and the y title in the top margin, y labels on the left,
  // x labels and the x title below.
  const int top = cell_h + 14 * s;
  const int bottom_margin = 3 * s + 3 * s + cell_h + 5 * s + cell_h + 4 * s;
  const int plot_bottom = height - 1 - bottom_margin;
  const int plot_h = plot_bottom - top + 1;
  const Axis y_axis = NiceAxis(y_min, y_max, std::clamp(plot_h / (cell_h * 4), 2, 8), false);
  const std::vector<double> y_ticks = Ticks(y_axis);
  Canvas canvas(width, height);
  int label_w = 0;
  std::vector<std::string> y_labels;
  for (double t : y_ticks) {
    y_labels.push_back(TickLabel(t, y_axis));
    label_w = std::max(label_w, canvas.TextWidth(y_labels.back(), s));
  }
  const int left = 4 * s + label_w + 3 * s + 3 * s;
  const int right_margin = 12 * s;
  const int plot_right = width - 1 - right_margin;
  const int plot_w = plot_right - left + 1;
  if (plot_w < 16 || plot_h < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("loss plot size ", width, "x", height, " leaves no room for the plot"));
  }
  const Axis x_axis = NiceAxis(x_min, x_max, std::clamp(plot_w / (45 * s), 2, 10), true);
  const std::vector<double> x_ticks = Ticks(x_axis);

  const auto px = [&](double x) {
    const double f = (x - x_axis.lo) / (x_axis.hi - x_axis.lo);
    return left + static_cast<int>(std::lround(std::clamp(f, 0.0, 1.0) * (plot_w - 1)));
  };
  const auto py = [&](double y) {
    const double f = (y - y_axis.lo) / (y_axis.hi - y_axis.lo);
    return plot_bottom - static_cast<int>(std::lround(std::clamp(f, 0.0, 1.0) * (plot_h - 1)));
  };

  // Grid, ticks and labels.
  for (size_t i = 0; i < y_ticks.size(); ++i) {
    const int y = py(y_ticks[i]);
    canvas.Fill(left + 1, y, plot_right - 1, y, kGrid);
    canvas.Fill(left - 3 * s, y, left - 1, y + s - 1, kBlack);
    const int w = canvas.TextWidth(y_labels[i], s);
    canvas.Text(left - 3 * s - 3 * s - w, y - cell_h / 2, y_labels[i], s, kBlack);
  }
  int last_label_end = -1;
  for (double t : x_ticks) {
    const int x = px(t);
    canvas.Fill(x, top + 1, x, plot_bottom - 1, kGrid);
    canvas.Fill(x, plot_bottom + 1, x + s - 1, plot_bottom + 3 * s, kBlack);
    const std::string label = TickLabel(t, x_axis);
    const int w = canvas.TextWidth(label, s);
    const int lx = std::clamp(x - w / 2, 0, width - w);
    if (lx <= last_label_end + 2 * s) continue;  // would overlap its neighbour
    canvas.Text(lx, plot_bottom + 6 * s, label, s, kBlack);
    last_label_end = lx + w;
  }
  // The frame.
  canvas.Fill(left, top, plot_right, top, kBlack);
  canvas.Fill(left, plot_bottom, plot_right, plot_bottom, kBlack);
  canvas.Fill(left, top, left, plot_bottom, kBlack);
  canvas.Fill(plot_right, top, plot_right, plot_bottom, kBlack);
  // Titles: "step" under the x axis, "loss" above the y axis.
  canvas.Text(left + (plot_w - canvas.TextWidth("step", s)) / 2,
              plot_bottom + 6 * s + cell_h + 5 * s, "step", s, kBlack);
  canvas.Text(4 * s, (top - cell_h) / 2, "loss", s, kBlack);

  // Series, inside the frame.
  const Brush loss_brush{&canvas, s, kLossColour, left + 1, top + 1, plot_right - 1, plot_bottom - 1};
  const Brush eval_brush{&canvas, s + 1, kEvalColour, left + 1, top + 1, plot_right - 1,
                         plot_bottom - 1};
  // The loss, every step: consecutive points joined, broken at non-finite
  // values. Points falling in one pixel column become one vertical span
  // (exactly what the joined line would cover), so a million steps cost a
  // million cheap updates, not a million line draws.
  {
    bool have_prev = false;
    int col = 0, last_y = 0, span_lo = 0, span_hi = 0;
    const auto flush = [&] {
      if (have_prev) loss_brush.Line(col, span_lo, col, span_hi);
    };
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!std::isfinite(rows[i].loss)) {
        flush();
        have_prev = false;
        continue;
      }
      const int x = px(static_cast<double>(rows[i].step));
      const int y = py(rows[i].loss);
      if (have_prev && x == col) {
        span_lo = std::min(span_lo, y);
        span_hi = std::max(span_hi, y);
      } else {
        flush();
        if (have_prev) loss_brush.Line(col, last_y, x, y);
        col = x;
        span_lo = span_hi = y;
      }
      last_y = y;
      have_prev = true;
      // A point with no finite neighbour would otherwise be a single pixel.
      const bool prev_ok = i > 0 && std::isfinite(rows[i - 1].loss);
      const bool next_ok = i + 1 < rows.size() && std::isfinite(rows[i + 1].loss);
      if (!prev_ok && !next_ok) {
        const Brush marker{&canvas, 3 * s, kLossColour, left + 1, top + 1, plot_right - 1,
                           plot_bottom - 1};
        marker.Dot(x, y);
      }
    }
    flush();
  }
  // Eval loss: markers joined by a line (non-finite ones left out).
  if (have_eval) {
    const Brush marker{&canvas, 4 * s + 1, kEvalColour, left + 1, top + 1, plot_right - 1,
                       plot_bottom - 1};
    bool have_prev = false;
    int prev_x = 0, prev_y = 0;
    for (const LogRow& r : rows) {
      if (!r.eval_loss.has_value() || !std::isfinite(*r.eval_loss)) continue;
      const int x = px(static_cast<double>(r.step));
      const int y = py(*r.eval_loss);
      if (have_prev) eval_brush.Line(prev_x, prev_y, x, y);
      marker.Dot(x, y);
      prev_x = x;
      prev_y = y;
      have_prev = true;
    }
  }

  // Legend, right-aligned in the top margin: a sample of each series and
  // its name (eval only when there is eval loss).
  {
    const int sample_w = 16 * s;
    const int y_text = (top - cell_h) / 2;
    const int y_mid = y_text + cell_h / 2;
    int x = plot_right;
    const Brush unclipped_loss{&canvas, s, kLossColour, 0, 0, width - 1, height - 1};
    const Brush unclipped_eval{&canvas, s + 1, kEvalColour, 0, 0, width - 1, height - 1};
    if (have_eval) {
      x -= canvas.TextWidth("eval", s);
      canvas.Text(x, y_text, "eval", s, kBlack);
      x -= 4 * s + sample_w;
      unclipped_eval.Line(x, y_mid, x + sample_w, y_mid);
      const Brush marker{&canvas, 4 * s + 1, kEvalColour, 0, 0, width - 1, height - 1};
      marker.Dot(x + sample_w / 2, y_mid);
      x -= 10 * s;
    }
    x -= canvas.TextWidth("loss", s);
    canvas.Text(x, y_text, "loss", s, kBlack);
    x -= 4 * s + sample_w;
    unclipped_loss.Line(x, y_mid, x + sample_w, y_mid);
  }

  const std::vector<uint8_t> png = EncodePng(canvas.rgb(), width, height);
  if (png.empty()) return absl::InternalError("cannot encode the loss plot");
  return WriteFileAtomically(path, png.data(), png.size());
}

// ---------------------------------------------------------------------------

namespace {

// 1h02m03s, 5m12s, 42s.
std::string Duration(double seconds) {
  const int64_t t = std::llround(seconds);
  const int64_t h = t / 3600, m = (t % 3600) / 60, sec = t % 60;
  char buf[64];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(sec));
  } else if (m > 0) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(m),
                  static_cast<long long>(sec));
  } else {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(sec));
  }
  return buf;
}

}  // namespace

std::string ProgressLine(const LogRow& row, int64_t total_steps, double eta_s) {
  std::string out = absl::StrCat("step ", row.step);
  if (total_steps > 0) absl::StrAppend(&out, "/", total_steps);
  char buf[64];
  std::snprintf(buf, sizeof buf, " | loss %.4f", row.loss);
  out += buf;
  if (row.eval_loss.has_value()) {
    std::snprintf(buf, sizeof buf, " | eval %.4f", *row.eval_loss);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, " | lr %.1e", row.lr);
  out += buf;
  std::snprintf(buf, sizeof buf, " | %.0f tok/s", row.tokens_per_s);
  out += buf;
  // Unknown (first step) or absurd (a stalled run) ETAs print as "?"
  // rather than a number nobody should believe.
  if (std::isfinite(eta_s) && eta_s >= 0.0 && eta_s < 1e9) {
    absl::StrAppend(&out, " | ETA ", Duration(eta_s));
  } else {
    out += " | ETA ?";
  }
  return out;
}

}  // namespace yuan::train
