// baypr/io/idx.hpp: read the IDX format of MNIST / Fashion-MNIST, plain or gzip-compressed
// (needs zlib: link the baypr::idx target, which brings it).
//
//   IdxArray parse_idx(std::span<const std::byte> bytes, std::string_view name = "buffer")
//   IdxArray parse_idx(std::string_view bytes, std::string_view name = "buffer")
//       decode a whole IDX file held in memory, gunzipping it first when it starts with the gzip
//       magic 1f 8b; never reads outside `bytes` (usable by a fuzzer)
//   IdxImages idx_images(const IdxArray&, name)        a 3-D ubyte array (magic 0x00000803)
//   Eigen::VectorXi idx_labels(const IdxArray&, name)  a 1-D ubyte array (magic 0x00000801)
//   IdxImages read_idx_images(path), Eigen::VectorXi read_idx_labels(path)
//   IdxDataset read_idx_dataset(images_path, labels_path)   both, counts checked to agree
//   Eigen::MatrixXd to_unit_interval(const IdxImages&)      pixels / 255 as an n x (rows*cols)
//                                                            double matrix
//
// The IDX header is big-endian: two zero bytes, a type code (only 0x08, unsigned byte, is
// supported: it is the only one MNIST-style data uses), the number of dimensions, then one uint32
// per dimension; the data follow in C order. Every problem is a baypr::io_error reading
// "<function>: <file 'path' | 'name'>: <what is wrong>" (baypr/io/detail/file.hpp): bad magic,
// unsupported type, wrong number of dimensions, zero image rows or columns, truncated data,
// trailing bytes, corrupt gzip, label / image count mismatch. The decompressed size is capped
// (max_idx_bytes) so a crafted gzip cannot exhaust memory.
#pragma once

#include <zlib.h>

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/io/detail/file.hpp"

namespace baypr {

// Largest decompressed IDX file accepted (Fashion-MNIST's training images are 47 MB).
inline constexpr std::size_t max_idx_bytes = std::size_t{1} << 30;
inline constexpr std::uint64_t max_idx_image_pixels = std::uint64_t{1} << 24;  // per image

struct IdxArray {
  std::vector<std::uint32_t> dims;  // as stored, outermost first
  std::vector<std::uint8_t> data;   // C order, product(dims) bytes
};

// Images as one row per image, pixels in row-major (C) order within the row.
using IdxImageMatrix = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct IdxImages {
  Eigen::Index rows = 0, cols = 0;  // image height and width
  IdxImageMatrix pixels;            // n x (rows * cols)
};

struct IdxDataset {
  IdxImages images;
  Eigen::VectorXi labels;  // one per image
};

namespace detail {

inline std::string hex32(std::uint32_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s.push_back(digits[(v >> shift) & 0xFU]);
  return s;
}

inline bool is_gzip(std::span<const std::byte> bytes) {
  return bytes.size() >= 2 && bytes[0] == std::byte{0x1f} && bytes[1] == std::byte{0x8b};
}

// One gzip member, inflated; anything after the member is an error (a corrupt or padded file).
inline std::vector<std::uint8_t> gunzip(std::string_view function, std::string_view source,
                                        std::span<const std::byte> bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    io::fail(function, source, "corrupt gzip: zlib could not start");
  struct Guard {
    z_stream* z;
    ~Guard() { inflateEnd(z); }
  } guard{&zs};
  std::vector<std::uint8_t> out;
  std::size_t consumed = 0;
  constexpr std::size_t chunk_in = std::size_t{1} << 20;
  out.resize(std::min<std::size_t>(std::max<std::size_t>(4 * bytes.size(), 1024), max_idx_bytes));
  std::size_t produced = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.avail_in == 0) {
      if (consumed == bytes.size()) io::fail(function, source, "corrupt gzip: truncated stream");
      const std::size_t take = std::min(chunk_in, bytes.size() - consumed);
      // zlib's API is not const-correct; it never writes through next_in.
      zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(bytes.data() + consumed));
      zs.avail_in = static_cast<uInt>(take);
      consumed += take;
    }
    if (produced == out.size()) {
      if (out.size() >= max_idx_bytes) {
        io::fail(function, source,
                 "decompresses to more than " + std::to_string(max_idx_bytes) + " bytes");
      }
      out.resize(std::min(out.size() * 2, max_idx_bytes));
    }
    const std::size_t room = std::min<std::size_t>(out.size() - produced, std::size_t{1} << 30);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(room);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      io::fail(function, source,
               std::string("corrupt gzip: ") +
                   (zs.msg != nullptr ? zs.msg : "inflate error " + std::to_string(rc)));
    }
    if (rc == Z_BUF_ERROR && zs.avail_in != 0 && zs.avail_out != 0) {
      io::fail(function, source, "corrupt gzip: inflate made no progress");
    }
  }
  if (zs.avail_in != 0 || consumed != bytes.size()) {
    io::fail(function, source,
             "corrupt gzip: " + std::to_string(zs.avail_in + (bytes.size() - consumed)) +
                 " bytes after the end of the compressed stream");
  }
  out.resize(produced);
  return out;
}

inline IdxArray parse_idx_raw(std::string_view function, std::string_view source,
                              std::span<const std::uint8_t> b) {
  if (b.size() < 4) {
    io::fail(function, source,
             "truncated: " + std::to_string(b.size()) + " bytes, shorter than the 4-byte magic");
  }
  const std::uint32_t magic = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                              (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
  if (b[0] != 0 || b[1] != 0) {
    io::fail(function, source,
             "bad magic " + hex32(magic) + ", expected 0x000008NN (two zero bytes, type, rank)");
  }
  if (b[2] != 0x08) {
    io::fail(function, source,
             "unsupported IDX element type " + hex32(b[2]) + " in magic " + hex32(magic) +
                 ", only 0x08 (unsigned byte) is supported");
  }
  const std::size_t rank = b[3];
  if (rank == 0) io::fail(function, source, "bad magic " + hex32(magic) + ": rank 0");
  const std::size_t header = 4 + 4 * rank;
  if (b.size() < header) {
    io::fail(function, source,
             "truncated: " + std::to_string(b.size()) + " bytes, shorter than the " +
                 std::to_string(header) + "-byte header of a rank-" + std::to_string(rank) +
                 " array");
  }
  IdxArray out;
  std::uint64_t count = 1;
  bool overflow = false;
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t o = 4 + 4 * k;
    const std::uint32_t dim = (std::uint32_t{b[o]} << 24) | (std::uint32_t{b[o + 1]} << 16) |
                              (std::uint32_t{b[o + 2]} << 8) | std::uint32_t{b[o + 3]};
    out.dims.push_back(dim);
    if (dim != 0 && count > max_idx_bytes / dim) overflow = true;
    count *= dim;
    if (count > max_idx_bytes) overflow = true;
  }
  if (overflow)
    io::fail(function, source,
             "dimensions describe more than " + std::to_string(max_idx_bytes) + " bytes");
  const std::size_t available = b.size() - header;
  if (available < count) {
    io::fail(function, source,
             "truncated: the header promises " + std::to_string(count) + " data bytes, found " +
                 std::to_string(available));
  }
  if (available > count) {
    io::fail(function, source,
             std::to_string(available - count) + " trailing bytes after the " +
                 std::to_string(count) + " data bytes");
  }
  out.data.assign(b.begin() + static_cast<std::ptrdiff_t>(header), b.end());
  return out;
}

inline IdxImages idx_images_impl(std::string_view function, std::string_view source,
                                 const IdxArray& a) {
  if (a.dims.size() != 3) {
    io::fail(function, source,
             "bad magic: expected images (0x00000803, rank 3), got rank " +
                 std::to_string(a.dims.size()) + " (magic " +
                 hex32(0x800U | static_cast<std::uint32_t>(a.dims.size())) + ")");
  }
  if (a.dims[1] == 0 || a.dims[2] == 0) {
    io::fail(function, source,
             "wrong dimensions: images of " + std::to_string(a.dims[1]) + " x " +
                 std::to_string(a.dims[2]) + " pixels");
  }
  // The product in 64 bits, capped: with zero images the data is empty whatever the image size, and
  // an absurd one would overflow Eigen::Index or make a 0 x (rows * cols) matrix slow to walk.
  const std::uint64_t pixels = std::uint64_t{a.dims[1]} * std::uint64_t{a.dims[2]};
  if (pixels > max_idx_image_pixels) {
    io::fail(function, source,
             "wrong dimensions: images of " + std::to_string(a.dims[1]) + " x " +
                 std::to_string(a.dims[2]) + " pixels, more than " +
                 std::to_string(max_idx_image_pixels) + " per image");
  }
  IdxImages out;
  const auto n = static_cast<Eigen::Index>(a.dims[0]);
  out.rows = static_cast<Eigen::Index>(a.dims[1]);
  out.cols = static_cast<Eigen::Index>(a.dims[2]);
  out.pixels = Eigen::Map<const IdxImageMatrix>(a.data.data(), n, out.rows * out.cols);
  return out;
}

inline Eigen::VectorXi idx_labels_impl(std::string_view function, std::string_view source,
                                       const IdxArray& a) {
  if (a.dims.size() != 1) {
    io::fail(function, source,
             "bad magic: expected labels (0x00000801, rank 1), got rank " +
                 std::to_string(a.dims.size()) + " (magic " +
                 hex32(0x800U | static_cast<std::uint32_t>(a.dims.size())) + ")");
  }
  return Eigen::Map<const Eigen::Matrix<std::uint8_t, Eigen::Dynamic, 1>>(
             a.data.data(), static_cast<Eigen::Index>(a.data.size()))
      .cast<int>();
}

inline IdxArray parse_idx_impl(std::string_view function, std::string_view source,
                               std::span<const std::byte> bytes) {
  if (is_gzip(bytes)) {
    const std::vector<std::uint8_t> raw = gunzip(function, source, bytes);
    return parse_idx_raw(function, source, raw);
  }
  return parse_idx_raw(function, source,
                       std::span<const std::uint8_t>(
                           reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace detail

[[nodiscard]] inline IdxArray parse_idx(std::span<const std::byte> bytes,
                                        std::string_view name = "buffer") {
  return detail::parse_idx_impl("baypr::parse_idx", detail::io::buffer_source(name), bytes);
}

[[nodiscard]] inline IdxArray parse_idx(std::string_view bytes, std::string_view name = "buffer") {
  return parse_idx(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), name);
}

[[nodiscard]] inline IdxImages idx_images(const IdxArray& array, std::string_view name = "buffer") {
  return detail::idx_images_impl("baypr::idx_images", detail::io::buffer_source(name), array);
}

[[nodiscard]] inline Eigen::VectorXi idx_labels(const IdxArray& array,
                                                std::string_view name = "buffer") {
  return detail::idx_labels_impl("baypr::idx_labels", detail::io::buffer_source(name), array);
}

[[nodiscard]] inline IdxImages read_idx_images(const std::filesystem::path& path) {
  constexpr std::string_view fn = "baypr::read_idx_images";
  const std::string source = detail::io::file_source(path);
  const auto bytes = detail::io::read_all(path, fn, max_idx_bytes, "any IDX file accepted");
  return detail::idx_images_impl(fn, source, detail::parse_idx_impl(fn, source, bytes));
}

[[nodiscard]] inline Eigen::VectorXi read_idx_labels(const std::filesystem::path& path) {
  constexpr std::string_view fn = "baypr::read_idx_labels";
  const std::string source = detail::io::file_source(path);
  const auto bytes = detail::io::read_all(path, fn, max_idx_bytes, "any IDX file accepted");
  return detail::idx_labels_impl(fn, source, detail::parse_idx_impl(fn, source, bytes));
}

[[nodiscard]] inline IdxDataset read_idx_dataset(const std::filesystem::path& images_path,
                                                 const std::filesystem::path& labels_path) {
  IdxDataset out;
  out.images = read_idx_images(images_path);
  out.labels = read_idx_labels(labels_path);
  if (out.labels.size() != out.images.pixels.rows()) {
    detail::io::fail("baypr::read_idx_dataset", detail::io::file_source(labels_path),
                     "label / image count mismatch: " + std::to_string(out.labels.size()) +
                         " labels for " + std::to_string(out.images.pixels.rows()) +
                         " images in '" + images_path.string() + "'");
  }
  return out;
}

// Pixels scaled to [0, 1] (divided by 255), one image per row.
[[nodiscard]] inline Eigen::MatrixXd to_unit_interval(const IdxImages& images) {
  return images.pixels.cast<double>() / 255.0;
}

}  // namespace baypr
