// baypr/io/pat.hpp: read GIMP pattern files (.pat), e.g. the photographic textures of Debian's
// gimp-data / gimp-data-extras (/usr/share/gimp/2.0/patterns), as anomaly-detection test images.
//
//   PatPattern parse_pat(std::span<const std::byte> bytes, std::string_view name = "buffer")
//   PatPattern parse_pat(std::string_view bytes, std::string_view name = "buffer")
//       decode a whole .pat file held in memory; never reads outside `bytes` (fuzzed)
//   PatPattern read_pat(path)                          the same from a file
//   Eigen::ArrayXXd pattern_to_grey(const PatPattern&) height x width grey levels in [0, 1]
//   std::vector<std::filesystem::path> find_pat_files(root)   every *.pat below root, sorted
//
// Format (all header integers 32-bit big-endian unsigned): header_size, version (1), width,
// height, bytes per pixel (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA), the magic "GPAT", then the
// pattern name (UTF-8, NUL-terminated) filling the rest of the header_size bytes; then
// width * height * bytes pixel bytes, row-major, channels interleaved.
//
// Strictness. Every malformation is a baypr::io_error whose message reads
// "<function>: <file 'path' | 'name'>: <what is wrong>" (baypr/io/detail/file.hpp): a file
// shorter than the 24-byte fixed header, header_size below 24, beyond the file or above
// max_pat_header_bytes, a magic other than "GPAT", a version other than 1, a zero width or height,
// more than max_pat_pixels pixels, bytes per pixel outside 1..4, a name field without a NUL (also
// an empty one: header_size 24), truncated pixel data, and bytes after the pixel data. None of the
// 168 patterns Debian ships has trailing bytes, so they mean a damaged or concatenated file
// (rejected, as for .npy and IDX).
// The name is cut at its first NUL (the rest of the name field is ignored) and kept as stored,
// not validated as UTF-8.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/io/detail/file.hpp"

namespace baypr {

// Sanity caps: a real pattern is at most a few hundred pixels square with a short name.
inline constexpr std::uint64_t max_pat_pixels = std::uint64_t{1} << 26;
inline constexpr std::uint32_t max_pat_header_bytes = std::uint32_t{1} << 16;

struct PatPattern {
  std::string name;
  std::uint32_t width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t> pixels;  // height * width * channels, row-major, channels interleaved
};

namespace detail::pat {

inline constexpr std::size_t fixed_header = 24;

using io::fail;

inline std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

inline PatPattern parse(std::string_view function, std::string_view source,
                        std::span<const std::uint8_t> b) {
  const auto n = std::to_string(b.size());
  if (b.size() < fixed_header) {
    fail(function, source, "short header: " + n + " bytes, fewer than the 24-byte fixed header");
  }
  const std::uint32_t header_size = be32(b, 0), version = be32(b, 4), width = be32(b, 8),
                      height = be32(b, 12), bytes = be32(b, 16);
  if (b[20] != 'G' || b[21] != 'P' || b[22] != 'A' || b[23] != 'T') {
    fail(function, source,
         "wrong magic \"" +
             io::printable(std::string_view(reinterpret_cast<const char*>(b.data()) + 20, 4), 4,
                           "\"") +
             "\" at byte 20, expected \"GPAT\"");
  }
  if (version != 1)
    fail(function, source, "unsupported version " + std::to_string(version) + ", expected 1");
  if (header_size < fixed_header) {
    fail(function, source,
         "header_size " + std::to_string(header_size) + " is less than the 24-byte fixed header");
  }
  if (header_size > max_pat_header_bytes) {
    fail(function, source,
         "header_size " + std::to_string(header_size) + " is absurd (more than " +
             std::to_string(max_pat_header_bytes) + " bytes)");
  }
  if (header_size > b.size()) {
    fail(function, source,
         "header_size " + std::to_string(header_size) + " is beyond the file (" + n + " bytes)");
  }
  if (width == 0 || height == 0) {
    fail(function, source,
         "empty pattern: width " + std::to_string(width) + ", height " + std::to_string(height));
  }
  // Both factors are below 2^32, so the product cannot overflow 64 bits.
  const std::uint64_t pixels = std::uint64_t{width} * height;
  if (pixels > max_pat_pixels) {
    fail(function, source,
         "width " + std::to_string(width) + " x height " + std::to_string(height) + " = " +
             std::to_string(pixels) + " pixels, more than the cap of " +
             std::to_string(max_pat_pixels));
  }
  if (bytes < 1 || bytes > 4) {
    fail(function, source, "bytes per pixel " + std::to_string(bytes) + " not in 1..4");
  }
  const auto name_field = b.subspan(fixed_header, header_size - fixed_header);
  const auto nul = std::find(name_field.begin(), name_field.end(), std::uint8_t{0});
  if (nul == name_field.end()) {
    fail(function, source,
         "missing NUL at the end of the " + std::to_string(name_field.size()) + "-byte name field");
  }
  const std::uint64_t data = pixels * bytes;  // at most 2^28
  const std::uint64_t available = b.size() - header_size;
  if (available < data) {
    fail(function, source,
         "truncated pixel data: " + std::to_string(width) + " x " + std::to_string(height) + " x " +
             std::to_string(bytes) + " = " + std::to_string(data) + " bytes expected, " +
             std::to_string(available) + " found");
  }
  if (available > data) {
    fail(function, source,
         std::to_string(available - data) + " trailing bytes after the " + std::to_string(data) +
             " bytes of pixel data");
  }
  PatPattern out;
  out.name.assign(name_field.begin(), nul);
  out.width = width;
  out.height = height;
  out.channels = bytes;
  out.pixels.assign(b.begin() + static_cast<std::ptrdiff_t>(header_size), b.end());
  return out;
}

}  // namespace detail::pat

[[nodiscard]] inline PatPattern parse_pat(std::span<const std::byte> bytes,
                                          std::string_view name = "buffer") {
  return detail::pat::parse("baypr::parse_pat", detail::io::buffer_source(name),
                            std::span<const std::uint8_t>(
                                reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}
[[nodiscard]] inline PatPattern parse_pat(std::string_view bytes,
                                          std::string_view name = "buffer") {
  return parse_pat(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), name);
}

[[nodiscard]] inline PatPattern read_pat(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_pat";
  // Refused before anything is allocated: no valid pattern is this large.
  const std::uint64_t largest =
      detail::pat::fixed_header + max_pat_header_bytes + 4 * max_pat_pixels;
  const auto bytes = detail::io::read_all(path, function, largest, "any valid pattern");
  return detail::pat::parse(function, detail::io::file_source(path),
                            std::span<const std::uint8_t>(
                                reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

// Grey levels, one row per pattern row: the grey channel / 255, or the Rec. 601 luma
// (0.299 R + 0.587 G + 0.114 B) / 255 for RGB(A); alpha is ignored. The luma is formed from integer
// weights (299, 587, 114) / 255000 so it is exact before the one division, and white is exactly 1.
[[nodiscard]] inline Eigen::ArrayXXd pattern_to_grey(const PatPattern& p) {
  constexpr std::string_view function = "baypr::pattern_to_grey";
  if (p.channels < 1 || p.channels > 4) {
    detail::throw_invalid(function, "p",
                          "has channels " + std::to_string(p.channels) + ", expected 1..4");
  }
  const std::uint64_t pixels = std::uint64_t{p.width} * p.height;
  if (pixels > max_pat_pixels || pixels * p.channels != p.pixels.size()) {
    detail::throw_invalid(function, "p",
                          "has " + std::to_string(p.pixels.size()) +
                              " pixel bytes, expected width " + std::to_string(p.width) +
                              " x height " + std::to_string(p.height) + " x channels " +
                              std::to_string(p.channels));
  }
  const auto rows = static_cast<Eigen::Index>(p.height), cols = static_cast<Eigen::Index>(p.width);
  const std::size_t c = p.channels;
  Eigen::ArrayXXd out(rows, cols);
  for (Eigen::Index y = 0; y < rows; ++y) {
    for (Eigen::Index x = 0; x < cols; ++x) {
      const std::size_t at =
          (static_cast<std::size_t>(y) * p.width + static_cast<std::size_t>(x)) * c;
      if (c < 3) {
        out(y, x) = p.pixels[at] / 255.0;
      } else {
        const std::uint32_t luma =
            299U * p.pixels[at] + 587U * p.pixels[at + 1] + 114U * p.pixels[at + 2];
        out(y, x) = luma / 255000.0;
      }
    }
  }
  return out;
}

// Every regular file named *.pat (lower-case extension, as GIMP installs them) below root,
// recursively, in sorted order.
[[nodiscard]] inline std::vector<std::filesystem::path> find_pat_files(
    const std::filesystem::path& root) {
  namespace fs = std::filesystem;
  constexpr std::string_view function = "baypr::find_pat_files";
  const std::string source = detail::io::directory_source(root);
  std::error_code ec;
  const fs::file_status status = fs::status(root, ec);
  if (status.type() == fs::file_type::not_found)
    detail::io::fail(function, source, "does not exist");
  if (ec) detail::io::fail(function, source, "cannot access: " + ec.message());
  if (status.type() != fs::file_type::directory)
    detail::io::fail(function, source, "not a directory");
  std::vector<fs::path> out;
  fs::recursive_directory_iterator it(root, ec), end;
  if (ec) detail::io::fail(function, source, "cannot list: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    std::error_code type_ec;
    if (p.extension() == ".pat" && it->is_regular_file(type_ec)) out.push_back(p);
  }
  if (ec) detail::io::fail(function, source, "cannot list: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace baypr
