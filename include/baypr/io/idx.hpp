// baypr/io/idx.hpp: read the IDX format of MNIST / Fashion-MNIST, plain or gzip-compressed
// (needs zlib: link the baypr::idx target, which brings it).
//
//   IdxArray parse_idx(std::span<const std::byte> bytes, std::string_view name = "buffer")
//   IdxArray parse_idx(std::string_view bytes, std::string_view name = "buffer")
//       decode a whole IDX file held in memory, gunzipping it first when it starts with the gzip
//       magic 1f 8b; never reads outside `bytes` (usable by a fuzzer)
//   IdxImages idx_images(const IdxArray&, name)        a 3-D ubyte array (magic 0x00000803)
//   std::vector<std::uint8_t> idx_labels(const IdxArray&, name)   1-D ubyte (magic 0x00000801)
//   IdxImages read_idx_images(path), std::vector<std::uint8_t> read_idx_labels(path)
//   IdxDataset read_idx_dataset(images_path, labels_path)   both, counts checked to agree
//   Eigen::MatrixXd to_unit_interval(const IdxImages&)      pixels / 255 as an n x (rows*cols)
//                                                            double matrix
//
// The IDX header is big-endian: two zero bytes, a type code (only 0x08, unsigned byte, is
// supported: it is the only one MNIST-style data uses), the number of dimensions, then one uint32
// per dimension; the data follow in C order. Every problem is a baypr::io_error whose message names
// the function and the file: bad magic, unsupported type, wrong number of dimensions, zero image
// rows or columns, truncated data, trailing bytes, corrupt gzip, label / image count mismatch. The
// decompressed size is capped (max_idx_bytes) so a crafted gzip cannot exhaust memory.
#pragma once

#include <zlib.h>

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "baypr/core/errors.hpp"

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
  std::vector<std::uint8_t> labels;  // one per image
};

namespace detail {

[[noreturn]] inline void throw_idx(std::string_view function, std::string_view name,
                                   std::string_view what) {
  std::string msg(function);
  msg.append(": '").append(name).append("': ").append(what);
  throw io_error(msg);
}

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
inline std::vector<std::uint8_t> gunzip(std::string_view function, std::string_view name,
                                        std::span<const std::byte> bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    throw_idx(function, name, "corrupt gzip: zlib could not start");
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
      if (consumed == bytes.size()) throw_idx(function, name, "corrupt gzip: truncated stream");
      const std::size_t take = std::min(chunk_in, bytes.size() - consumed);
      // zlib's API is not const-correct; it never writes through next_in.
      zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(bytes.data() + consumed));
      zs.avail_in = static_cast<uInt>(take);
      consumed += take;
    }
    if (produced == out.size()) {
      if (out.size() >= max_idx_bytes) {
        throw_idx(function, name,
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
      throw_idx(function, name,
                std::string("corrupt gzip: ") +
                    (zs.msg != nullptr ? zs.msg : "inflate error " + std::to_string(rc)));
    }
    if (rc == Z_BUF_ERROR && zs.avail_in != 0 && zs.avail_out != 0) {
      throw_idx(function, name, "corrupt gzip: inflate made no progress");
    }
  }
  if (zs.avail_in != 0 || consumed != bytes.size()) {
    throw_idx(function, name,
              "corrupt gzip: " + std::to_string(zs.avail_in + (bytes.size() - consumed)) +
                  " bytes after the end of the compressed stream");
  }
  out.resize(produced);
  return out;
}

inline IdxArray parse_idx_raw(std::string_view function, std::string_view name,
                              std::span<const std::uint8_t> b) {
  if (b.size() < 4) {
    throw_idx(function, name,
              "truncated: " + std::to_string(b.size()) + " bytes, shorter than the 4-byte magic");
  }
  const std::uint32_t magic = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                              (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
  if (b[0] != 0 || b[1] != 0) {
    throw_idx(function, name,
              "bad magic " + hex32(magic) + ", expected 0x000008NN (two zero bytes, type, rank)");
  }
  if (b[2] != 0x08) {
    throw_idx(function, name,
              "unsupported IDX element type " + hex32(b[2]) + " in magic " + hex32(magic) +
                  ", only 0x08 (unsigned byte) is supported");
  }
  const std::size_t rank = b[3];
  if (rank == 0) throw_idx(function, name, "bad magic " + hex32(magic) + ": rank 0");
  const std::size_t header = 4 + 4 * rank;
  if (b.size() < header) {
    throw_idx(function, name,
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
    throw_idx(function, name,
              "dimensions describe more than " + std::to_string(max_idx_bytes) + " bytes");
  const std::size_t available = b.size() - header;
  if (available < count) {
    throw_idx(function, name,
              "truncated: the header promises " + std::to_string(count) + " data bytes, found " +
                  std::to_string(available));
  }
  if (available > count) {
    throw_idx(function, name,
              std::to_string(available - count) + " trailing bytes after the " +
                  std::to_string(count) + " data bytes");
  }
  out.data.assign(b.begin() + static_cast<std::ptrdiff_t>(header), b.end());
  return out;
}

inline std::vector<std::byte> read_file_bytes(std::string_view function, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_idx(function, path, "cannot open file");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw_idx(function, path, "cannot determine the file size");
  in.seekg(0, std::ios::beg);
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  if (!bytes.empty() &&
      !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    throw_idx(function, path, "read error");
  }
  return bytes;
}

inline IdxImages idx_images_impl(std::string_view function, std::string_view name,
                                 const IdxArray& a) {
  if (a.dims.size() != 3) {
    throw_idx(function, name,
              "bad magic: expected images (0x00000803, rank 3), got rank " +
                  std::to_string(a.dims.size()) + " (magic " +
                  hex32(0x800U | static_cast<std::uint32_t>(a.dims.size())) + ")");
  }
  if (a.dims[1] == 0 || a.dims[2] == 0) {
    throw_idx(function, name,
              "wrong dimensions: images of " + std::to_string(a.dims[1]) + " x " +
                  std::to_string(a.dims[2]) + " pixels");
  }
  // The product in 64 bits, capped: with zero images the data is empty whatever the image size, and
  // an absurd one would overflow Eigen::Index or make a 0 x (rows * cols) matrix slow to walk.
  const std::uint64_t pixels = std::uint64_t{a.dims[1]} * std::uint64_t{a.dims[2]};
  if (pixels > max_idx_image_pixels) {
    throw_idx(function, name,
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

inline std::vector<std::uint8_t> idx_labels_impl(std::string_view function, std::string_view name,
                                                 const IdxArray& a) {
  if (a.dims.size() != 1) {
    throw_idx(function, name,
              "bad magic: expected labels (0x00000801, rank 1), got rank " +
                  std::to_string(a.dims.size()) + " (magic " +
                  hex32(0x800U | static_cast<std::uint32_t>(a.dims.size())) + ")");
  }
  return a.data;
}

inline IdxArray parse_idx_impl(std::string_view function, std::string_view name,
                               std::span<const std::byte> bytes) {
  if (is_gzip(bytes)) {
    const std::vector<std::uint8_t> raw = gunzip(function, name, bytes);
    return parse_idx_raw(function, name, raw);
  }
  return parse_idx_raw(function, name,
                       std::span<const std::uint8_t>(
                           reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

}  // namespace detail

[[nodiscard]] inline IdxArray parse_idx(std::span<const std::byte> bytes,
                                        std::string_view name = "buffer") {
  return detail::parse_idx_impl("baypr::parse_idx", name, bytes);
}

[[nodiscard]] inline IdxArray parse_idx(std::string_view bytes, std::string_view name = "buffer") {
  return parse_idx(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), name);
}

[[nodiscard]] inline IdxImages idx_images(const IdxArray& array, std::string_view name = "buffer") {
  return detail::idx_images_impl("baypr::idx_images", name, array);
}

[[nodiscard]] inline std::vector<std::uint8_t> idx_labels(const IdxArray& array,
                                                          std::string_view name = "buffer") {
  return detail::idx_labels_impl("baypr::idx_labels", name, array);
}

[[nodiscard]] inline IdxImages read_idx_images(const std::string& path) {
  constexpr std::string_view fn = "baypr::read_idx_images";
  const auto bytes = detail::read_file_bytes(fn, path);
  return detail::idx_images_impl(fn, path, detail::parse_idx_impl(fn, path, bytes));
}

[[nodiscard]] inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  constexpr std::string_view fn = "baypr::read_idx_labels";
  const auto bytes = detail::read_file_bytes(fn, path);
  return detail::idx_labels_impl(fn, path, detail::parse_idx_impl(fn, path, bytes));
}

[[nodiscard]] inline IdxDataset read_idx_dataset(const std::string& images_path,
                                                 const std::string& labels_path) {
  IdxDataset out;
  out.images = read_idx_images(images_path);
  out.labels = read_idx_labels(labels_path);
  if (static_cast<Eigen::Index>(out.labels.size()) != out.images.pixels.rows()) {
    detail::throw_idx("baypr::read_idx_dataset", labels_path,
                      "label / image count mismatch: " + std::to_string(out.labels.size()) +
                          " labels for " + std::to_string(out.images.pixels.rows()) +
                          " images in '" + images_path + "'");
  }
  return out;
}

// Pixels scaled to [0, 1] (divided by 255), one image per row.
[[nodiscard]] inline Eigen::MatrixXd to_unit_interval(const IdxImages& images) {
  return images.pixels.cast<double>() / 255.0;
}

}  // namespace baypr
