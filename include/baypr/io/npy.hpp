// baypr/io/npy.hpp: read and write NumPy .npy files (Eigen only; no xtensor needed).
//
// The usual exchange with Python: embeddings exported with numpy.save(...) as (n, d) image
// embeddings or (n, p, d) patch embeddings, scores written back as float64.
//
//   NpyArray parse_npy(std::span<const std::byte> bytes, std::string_view name = "buffer")
//   NpyArray parse_npy(std::string_view bytes, std::string_view name = "buffer")
//       decode a whole .npy file held in memory; never reads outside `bytes` (fuzzed)
//   NpyArray read_npy(path)                        the same from a file
//   NpyMatrix<Scalar> read_npy_matrix<Scalar = double>(path)
//       a 2-D array as a row-major matrix; a 1-D array (n,) becomes n x 1
//   NpyPatches<Scalar> read_npy_patches<Scalar = double>(path)
//       a 3-D array (n, p, d) as {n, p, d, (n*p) x d row-major matrix}
//   NpyEmbeddings<Scalar> read_npy_embeddings<Scalar = double>(path)
//       image embeddings (n, d) or patch embeddings (n, p, d), whichever the file holds, as
//       {rows (n*p) x d, images n, patches p (1 for 2-D), rank}
//   npy_matrix<Scalar>(const NpyArray&), npy_patches<Scalar>(const NpyArray&),
//   npy_embeddings<Scalar>(const NpyArray&)
//       the same conversions for an array already parsed (e.g. from memory)
//   void write_npy(path, const Eigen::DenseBase<D>& m)           2-D, shape (rows, cols)
//   void write_npy(path, std::span<const T> data, shape)         any shape, data in C order
//   void write_npy(path, const std::vector<T>& data, shape)
//   void write_npy(path, const NpyArray& array)
//   std::string encode_npy(...)                    the bytes write_npy writes, same overloads
//
// Reading. Format versions 1.0, 2.0 and 3.0. Element types (descr): float32 '<f4', float64
// '<f8', bool '|b1', int8 '|i1', uint8 '|u1', int16/32/64 '<i2' '<i4' '<i8', uint16/32/64 '<u2'
// '<u4' '<u8'; byte order '<', '>' (big-endian data is byte-swapped on reading) or '=' (native),
// and '|' for the 1-byte types. Rejected: float16, long double, complex, strings, objects,
// datetimes, structured dtypes, '|' on a multi-byte type, and descr spellings NumPy never writes
// ('float64', 'f8', '<d'). Any rank 0..32 (NumPy's limit) in C or Fortran order; `NpyArray::data`
// is always in C (row-major) order and native byte order, so Fortran-order files come back
// transposed into C order. bool bytes other than 0 are read as 1. Values are returned as stored:
// NaN and Inf in a float file are kept (the scorers reject them where it matters).
//
// The header must be a Python dict literal with exactly the keys 'descr' (a string),
// 'fortran_order' (True / False) and 'shape' (a tuple of non-negative decimal integers), in any
// order, single- or double-quoted keys, optional trailing commas, then only whitespace (the
// trailing newline and the alignment padding are accepted but not required). A Python 2 'L' suffix
// on a dimension is accepted in versions 1.0 / 2.0, as NumPy does. Rejected, each with its own
// message: bad magic, unsupported version, a header longer than the file, anything else in the
// header (non-ASCII bytes, escapes, comments, missing / unknown / duplicate keys, a shape that is
// not a tuple), negative dimensions, dimensions whose product (times the element size) overflows,
// data shorter than the shape says (truncated), and bytes after the data (trailing garbage: NumPy
// never writes them, so they mean a damaged or mis-concatenated file).
//
// Writing. C order, little-endian, element type from the C++ type (double '<f8', float '<f4',
// integers '|i1' ... '<u8'), version 1.0 header in NumPy's exact layout (NumPy >= 1.23: the dict,
// growth-axis spare spaces, padding to a multiple of 64 bytes, a final newline), so the file is
// byte-for-byte what numpy.save writes for the same array. Non-finite values are written as they
// are. The bytes go to a temporary file in the same directory which is then renamed over the
// target, so a failed write leaves the old file (or nothing), never half a file.
//
// Errors. A file that cannot be opened / read / written, and every malformed or unsupported .npy
// content: baypr::io_error (a std::runtime_error). Asking for the wrong rank (read_npy_matrix on a
// 3-D file) or writing data whose size does not match the shape: baypr::invalid_argument. Values
// that do not convert exactly to the requested type (int64 beyond 2^53 into double, 1.5 into an
// integer, a double beyond float's range into float): baypr::numerical_error. Messages read
// "<function>: <file 'path' | buffer name>: <what is wrong>".
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "baypr/core/errors.hpp"

namespace baypr {

// The element types baypr reads and writes (see the list at the top of this file).
enum class NpyType : std::uint8_t {
  boolean,
  int8,
  uint8,
  int16,
  uint16,
  int32,
  uint32,
  int64,
  uint64,
  float32,
  float64
};

// One vector per element type; bool arrays are held as std::uint8_t (0 / 1) with
// NpyArray::type == NpyType::boolean.
using NpyData =
    std::variant<std::vector<float>, std::vector<double>, std::vector<std::int8_t>,
                 std::vector<std::uint8_t>, std::vector<std::int16_t>, std::vector<std::uint16_t>,
                 std::vector<std::int32_t>, std::vector<std::uint32_t>, std::vector<std::int64_t>,
                 std::vector<std::uint64_t>>;

// Row-major dynamic matrix, the layout of a C-order 2-D .npy array.
template <class Scalar>
using NpyMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A decoded .npy array.
struct NpyArray {
  std::vector<std::int64_t> shape;  // empty for a 0-D (scalar) array
  bool fortran_order = false;       // the layout in the file; `data` is always in C order
  std::string descr = "<f8";        // the dtype as the header spelled it, e.g. "<f4", ">f8"
  NpyType type = NpyType::float64;
  int version = 1;  // major format version of the file read (1, 2 or 3)
  NpyData data;     // C order, native byte order, size() elements

  [[nodiscard]] std::size_t rank() const { return shape.size(); }
  // Number of elements (1 for a 0-D array); parse_npy guarantees it does not overflow.
  [[nodiscard]] std::int64_t size() const {
    std::int64_t n = 1;
    for (const auto s : shape) n *= s;
    return n;
  }
  // The elements converted to T (float, double or an integer type), C order. Throws
  // baypr::numerical_error naming the element if a value does not convert exactly (double to
  // float rounds to nearest; only values beyond float's range are rejected).
  template <class T>
  [[nodiscard]] std::vector<T> as() const;
};

// A 3-D array (n, p, d) of patch embeddings: image i's patches are rows i*p .. i*p + p - 1.
template <class Scalar>
struct NpyPatches {
  Eigen::Index n = 0, p = 0, d = 0;
  NpyMatrix<Scalar> embeddings;  // (n * p) x d
  [[nodiscard]] auto image(Eigen::Index i) const { return embeddings.middleRows(i * p, p); }
};

// Embeddings of n images, as a scorer takes them: one row per image (a 2-D file, p = 1) or p patch
// rows per image (a 3-D file; image i's rows are i*p .. i*p + p - 1).
template <class Scalar>
struct NpyEmbeddings {
  NpyMatrix<Scalar> rows;    // (n * p) x d
  Eigen::Index images = 0;   // n
  Eigen::Index patches = 1;  // p
  std::size_t rank = 2;      // the file's: 2 for (n, d), 3 for (n, p, d)
};

namespace detail::npy {

inline constexpr std::size_t max_rank = 32;  // NumPy's NPY_MAXDIMS (before NumPy 2)
inline constexpr std::string_view magic{"\x93NUMPY", 6};

template <class T>
inline constexpr bool is_character_v =
    std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
    std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;

// float, double and the signed / unsigned integer types of 1, 2, 4, 8 bytes (std::int8_t ...
// std::uint64_t, long long, ...); not bool, not the character types, not long double.
template <class T>
inline constexpr bool is_element_v = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                     (std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                      !is_character_v<T> && sizeof(T) <= 8);

template <class T>
constexpr NpyType type_of() {
  static_assert(is_element_v<T>,
                "baypr .npy I/O: element type must be float, double or an integer type of 1, 2, 4 "
                "or 8 bytes (not bool, not long double, not a dual number)");
  if constexpr (std::is_same_v<T, float>) {
    return NpyType::float32;
  } else if constexpr (std::is_same_v<T, double>) {
    return NpyType::float64;
  } else if constexpr (std::is_signed_v<T>) {
    if constexpr (sizeof(T) == 1)
      return NpyType::int8;
    else if constexpr (sizeof(T) == 2)
      return NpyType::int16;
    else if constexpr (sizeof(T) == 4)
      return NpyType::int32;
    else
      return NpyType::int64;
  } else {
    if constexpr (sizeof(T) == 1)
      return NpyType::uint8;
    else if constexpr (sizeof(T) == 2)
      return NpyType::uint16;
    else if constexpr (sizeof(T) == 4)
      return NpyType::uint32;
    else
      return NpyType::uint64;
  }
}

struct TypeInfo {
  NpyType type;
  char kind;  // 'b', 'i', 'u', 'f' as in a descr
  std::size_t size;
  const char* name;
};

inline constexpr std::array<TypeInfo, 11> types{{
    {NpyType::boolean, 'b', 1, "bool"},
    {NpyType::int8, 'i', 1, "int8"},
    {NpyType::uint8, 'u', 1, "uint8"},
    {NpyType::int16, 'i', 2, "int16"},
    {NpyType::uint16, 'u', 2, "uint16"},
    {NpyType::int32, 'i', 4, "int32"},
    {NpyType::uint32, 'u', 4, "uint32"},
    {NpyType::int64, 'i', 8, "int64"},
    {NpyType::uint64, 'u', 8, "uint64"},
    {NpyType::float32, 'f', 4, "float32"},
    {NpyType::float64, 'f', 8, "float64"},
}};

inline const TypeInfo& info(NpyType t) {
  for (const auto& i : types) {
    if (i.type == t) return i;
  }
  throw invalid_argument("baypr .npy: unknown NpyType value " +
                         std::to_string(static_cast<int>(t)));
}

// Calls f(std::type_identity<T>{}) with T the storage type of t (std::uint8_t for bool).
template <class F>
decltype(auto) dispatch(NpyType t, F&& f) {
  switch (t) {
    case NpyType::boolean:
      return f(std::type_identity<std::uint8_t>{});
    case NpyType::int8:
      return f(std::type_identity<std::int8_t>{});
    case NpyType::uint8:
      return f(std::type_identity<std::uint8_t>{});
    case NpyType::int16:
      return f(std::type_identity<std::int16_t>{});
    case NpyType::uint16:
      return f(std::type_identity<std::uint16_t>{});
    case NpyType::int32:
      return f(std::type_identity<std::int32_t>{});
    case NpyType::uint32:
      return f(std::type_identity<std::uint32_t>{});
    case NpyType::int64:
      return f(std::type_identity<std::int64_t>{});
    case NpyType::uint64:
      return f(std::type_identity<std::uint64_t>{});
    case NpyType::float32:
      return f(std::type_identity<float>{});
    case NpyType::float64:
      return f(std::type_identity<double>{});
  }
  throw invalid_argument("baypr .npy: unknown NpyType value " +
                         std::to_string(static_cast<int>(t)));
}

// Input bytes shown in a message: printable ASCII as is, the rest as \xNN, at most `limit` bytes.
inline std::string printable(std::string_view s, std::size_t limit = 48) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else if (c == '\\') {
      out.append("\\\\");
    } else {
      out.append("\\x").push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  if (s.size() > limit) out.append("...");
  return out;
}

inline std::string shape_string(std::span<const std::int64_t> shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s.append(", ");
    s.append(std::to_string(shape[i]));
  }
  if (shape.size() == 1) s.push_back(',');
  s.push_back(')');
  return s;
}

[[noreturn]] inline void fail(std::string_view function, std::string_view source,
                              std::string_view what) {
  std::string msg(function);
  msg.append(": ").append(source).append(": ").append(what);
  throw io_error(msg);
}

inline std::string file_source(const std::filesystem::path& path) {
  return "file '" + path.string() + "'";
}

// --- preamble: magic, version, header length ------------------------------------------------

struct Preamble {
  int major = 0;
  std::size_t header_begin = 0;  // 10 (version 1) or 12 (versions 2, 3)
  std::size_t header_size = 0;
};

// `head` is the first min(total, 12) bytes of an input of `total` bytes.
inline Preamble parse_preamble(std::string_view head, std::uint64_t total,
                               std::string_view function, std::string_view source) {
  const std::size_t m = std::min(head.size(), magic.size());
  if (head.substr(0, m) != magic.substr(0, m)) {
    fail(function, source,
         "not a .npy file: bad magic string, expected \\x93NUMPY, got '" +
             printable(head.substr(0, magic.size())) + "'");
  }
  if (total < 8) {
    fail(function, source,
         "truncated: " + std::to_string(total) +
             " bytes, shorter than the .npy magic string and version");
  }
  const auto major = static_cast<unsigned char>(head[6]);
  const auto minor = static_cast<unsigned char>(head[7]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(function, source,
         "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
             " (supported: 1.0, 2.0, 3.0)");
  }
  Preamble p;
  p.major = major;
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  p.header_begin = 8 + length_bytes;
  if (total < p.header_begin) {
    fail(function, source,
         "truncated: " + std::to_string(total) + " bytes, the version " + std::to_string(major) +
             ".0 preamble needs " + std::to_string(p.header_begin));
  }
  std::uint64_t len = 0;
  for (std::size_t i = 0; i < length_bytes; ++i) {
    len |= std::uint64_t{static_cast<unsigned char>(head[8 + i])} << (8 * i);
  }
  if (len > total - p.header_begin) {
    fail(function, source,
         "header length " + std::to_string(len) + " extends beyond the end of the file (" +
             std::to_string(total) + " bytes, header starts at byte " +
             std::to_string(p.header_begin) + ")");
  }
  p.header_size = static_cast<std::size_t>(len);
  return p;
}

// --- header: a Python dict literal ------------------------------------------------------------

struct Header {
  std::vector<std::int64_t> shape;
  bool fortran_order = false;
  std::string descr;
  NpyType type = NpyType::float64;
  bool swap = false;  // data byte order differs from the host's
  std::uint64_t elements = 0;
  std::uint64_t bytes = 0;
};

inline void parse_descr(Header& h, std::string_view function, std::string_view source) {
  const std::string_view d = h.descr;
  auto reject = [&](std::string_view why) {
    fail(function, source,
         "unsupported dtype '" + printable(d) + "'" + std::string(why) +
             " (supported: '<f4', '<f8', '|b1', '|i1', '|u1', '<i2', '<u2', '<i4', '<u4', '<i8', "
             "'<u8', also with byte order '>' or '=')");
  };
  if (d.size() < 3) reject("");
  const char order = d[0];
  if (order != '<' && order != '>' && order != '=' && order != '|') {
    reject(": no byte-order character");
  }
  const char kind = d[1];
  std::size_t size = 0;
  for (std::size_t i = 2; i < d.size(); ++i) {
    if (d[i] < '0' || d[i] > '9' || size > 1000) reject("");
    size = size * 10 + static_cast<std::size_t>(d[i] - '0');
  }
  if (d.size() > 3 && d[2] == '0') reject("");
  if (kind == 'f' && (size == 2 || size == 16 || size == 12)) {
    reject(size == 2 ? ": float16 is not supported" : ": long double is not supported");
  }
  if (kind == 'c') reject(": complex numbers are not supported");
  const TypeInfo* found = nullptr;
  for (const auto& i : types) {
    if (i.kind == kind && i.size == size) found = &i;
  }
  if (found == nullptr) reject("");
  if (order == '|' && size != 1) reject(": byte order '|' is only valid for 1-byte types");
  constexpr bool little = std::endian::native == std::endian::little;
  h.type = found->type;
  h.swap = size > 1 && ((order == '<' && !little) || (order == '>' && little));
}

class HeaderParser {
 public:
  HeaderParser(std::string_view text, int major, std::string_view function, std::string_view source)
      : text_(text), major_(major), function_(function), source_(source) {}

  Header parse() {
    for (std::size_t i = 0; i < text_.size(); ++i) {
      const auto c = static_cast<unsigned char>(text_[i]);
      if (c >= 0x80 || (c < 0x20 && !is_space(text_[i]))) {
        fail(function_, source_,
             "malformed header: byte " + std::to_string(i) + " of the header is " +
                 printable(text_.substr(i, 1)) +
                 ", not printable ASCII (the header must be a Python dict literal)");
      }
    }
    Header h;
    skip_space();
    if (!consume('{')) error("the header is not a Python dict literal: expected '{'");
    bool have_descr = false, have_fortran = false, have_shape = false;
    while (true) {
      skip_space();
      if (consume('}')) break;
      const std::size_t key_at = pos_;
      const std::string key = parse_string("a key");
      skip_space();
      if (!consume(':')) error("expected ':' after key '" + printable(key) + "'");
      skip_space();
      bool* seen = nullptr;
      if (key == "descr") {
        seen = &have_descr;
        if (peek() == '[') error("structured dtypes (descr as a list) are not supported");
        h.descr = parse_string("the value of 'descr'");
      } else if (key == "fortran_order") {
        seen = &have_fortran;
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        seen = &have_shape;
        h.shape = parse_shape();
      } else {
        pos_ = key_at;
        error("unexpected key '" + printable(key) +
              "' (the header must have exactly the keys 'descr', 'fortran_order', 'shape')");
      }
      if (*seen) {
        pos_ = key_at;
        error("duplicate key '" + key + "'");
      }
      *seen = true;
      skip_space();
      if (consume(',')) continue;
      if (consume('}')) break;
      error("expected ',' or '}' after the value of '" + key + "'");
    }
    skip_space();
    if (pos_ != text_.size()) error("unexpected text after the closing '}'");
    if (!have_descr) error_plain("missing key 'descr'");
    if (!have_fortran) error_plain("missing key 'fortran_order'");
    if (!have_shape) error_plain("missing key 'shape'");
    parse_descr(h, function_, source_);
    count(h);
    return h;
  }

 private:
  static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void skip_space() {
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
  }

  [[noreturn]] void error_plain(const std::string& what) const {
    fail(function_, source_,
         "malformed header: " + what + "; header: '" + printable(text_, 120) + "'");
  }
  [[noreturn]] void error(const std::string& what) const {
    const std::string near = pos_ < text_.size() ? "'" + printable(text_.substr(pos_), 24) + "'"
                                                 : std::string("the end of the header");
    fail(function_, source_,
         "malformed header: " + what + ", at byte " + std::to_string(pos_) +
             " of the header, near " + near);
  }

  std::string parse_string(std::string_view what) {
    const char quote = peek();
    if (quote != '\'' && quote != '"') error("expected a quoted string as " + std::string(what));
    ++pos_;
    const std::size_t begin = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') error("escape sequences in strings are not supported");
      if (text_[pos_] == '\n' || text_[pos_] == '\r') error("unterminated string");
      ++pos_;
    }
    if (pos_ >= text_.size()) error("unterminated string");
    std::string s(text_.substr(begin, pos_ - begin));
    ++pos_;
    return s;
  }

  bool parse_bool() {
    const std::size_t begin = pos_;
    while (pos_ < text_.size() && is_word(text_[pos_])) ++pos_;
    const std::string_view word = text_.substr(begin, pos_ - begin);
    if (word == "True") return true;
    if (word == "False") return false;
    pos_ = begin;
    error("the value of 'fortran_order' must be True or False");
  }

  static bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
  }

  std::vector<std::int64_t> parse_shape() {
    if (peek() == '[') error("'shape' must be a tuple, got a list");
    if (!consume('(')) error("'shape' must be a tuple of integers such as (3, 4)");
    std::vector<std::int64_t> shape;
    skip_space();
    if (consume(')')) return shape;
    while (true) {
      skip_space();
      if (shape.size() == max_rank) {
        error("'shape' has more than " + std::to_string(max_rank) + " dimensions (NumPy's limit)");
      }
      shape.push_back(parse_dimension());
      skip_space();
      if (consume(',')) {
        skip_space();
        if (consume(')')) return shape;
        continue;
      }
      if (consume(')')) {
        if (shape.size() == 1) error("'shape' (n) is not a tuple; a 1-D shape is written (n,)");
        return shape;
      }
      error("malformed 'shape': expected ',' or ')' after a dimension");
    }
  }

  std::int64_t parse_dimension() {
    const std::size_t begin = pos_;
    const bool negative = consume('-');
    if (peek() < '0' || peek() > '9') {
      error("malformed 'shape': expected a non-negative decimal integer");
    }
    if (peek() == '0' && pos_ + 1 < text_.size() && is_word(text_[pos_ + 1]) &&
        text_[pos_ + 1] != 'L') {
      error("malformed 'shape': '" + printable(word_at(begin)) +
            "' is not a decimal integer (leading zero, prefix or fraction)");
    }
    constexpr std::uint64_t limit = std::numeric_limits<std::int64_t>::max();
    std::uint64_t v = 0;
    bool too_big = false;
    while (peek() >= '0' && peek() <= '9') {
      const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (v > (limit - digit) / 10) too_big = true;
      if (!too_big) v = v * 10 + digit;
      ++pos_;
    }
    if (peek() == 'L' && major_ <= 2) ++pos_;  // Python 2 long, as NumPy's _filter_header
    if (is_word(peek())) {
      error("malformed 'shape': '" + printable(word_at(begin)) + "' is not a decimal integer");
    }
    const std::string digits(text_.substr(begin, pos_ - begin));
    if (negative && (v != 0 || too_big)) {
      pos_ = begin;
      error("negative dimension " + printable(digits) + " in 'shape'");
    }
    if (too_big) {
      pos_ = begin;
      error("dimension " + printable(digits) + " in 'shape' does not fit in a 64-bit integer");
    }
    return static_cast<std::int64_t>(v);
  }

  std::string_view word_at(std::size_t begin) const {
    std::size_t end = begin;
    if (end < text_.size() && text_[end] == '-') ++end;
    while (end < text_.size() && is_word(text_[end])) ++end;
    return text_.substr(begin, end - begin);
  }

  // Number of elements and bytes, rejecting any product that overflows (zero dimensions
  // included: every non-zero dimension's product must fit, as NumPy requires).
  void count(Header& h) const {
    const std::uint64_t item = info(h.type).size;
    const std::uint64_t limit =
        static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()) / item;
    std::uint64_t product = 1;
    bool zero = false;
    for (const auto dim : h.shape) {
      const auto u = static_cast<std::uint64_t>(dim);
      if (u == 0) {
        zero = true;
        continue;
      }
      if (product > limit / u) {
        fail(function_, source_,
             "shape " + shape_string(h.shape) + " of " + info(h.type).name +
                 " overflows: the array would need more than " + std::to_string(limit * item) +
                 " bytes");
      }
      product *= u;
    }
    h.elements = zero ? 0 : product;
    h.bytes = h.elements * item;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int major_;
  std::string_view function_;
  std::string_view source_;
};

// --- data ------------------------------------------------------------------------------------

template <class T>
void byte_swap(std::vector<T>& v) {
  for (auto& x : v) {
    std::array<unsigned char, sizeof(T)> b;
    std::memcpy(b.data(), &x, sizeof(T));
    std::reverse(b.begin(), b.end());
    std::memcpy(&x, b.data(), sizeof(T));
  }
}

// Fortran-order elements to C order (a general axis permutation; rank 0 and 1 are unchanged).
template <class T>
std::vector<T> fortran_to_c(const std::vector<T>& f, const std::vector<std::int64_t>& shape) {
  const std::size_t r = shape.size();
  if (r < 2 || f.empty()) return f;
  std::vector<std::size_t> stride(r), dim(r), idx(r, 0);
  std::size_t s = 1;
  for (std::size_t k = r; k-- > 0;) {
    dim[k] = static_cast<std::size_t>(shape[k]);
    stride[k] = s;
    s *= dim[k];
  }
  std::vector<T> c(f.size());
  std::size_t offset = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    c[offset] = f[i];
    for (std::size_t k = 0; k < r; ++k) {  // axis 0 varies fastest in Fortran order
      offset += stride[k];
      if (++idx[k] < dim[k]) break;
      offset -= stride[k] * dim[k];
      idx[k] = 0;
    }
  }
  return c;
}

// `fill(void* destination)` copies h.bytes raw bytes of data into the destination.
template <class Fill>
NpyArray decode(Header&& h, int major, Fill&& fill) {
  NpyArray a;
  a.version = major;
  a.type = h.type;
  a.fortran_order = h.fortran_order;
  dispatch(h.type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<T> v(static_cast<std::size_t>(h.elements));
    if (h.bytes > 0) fill(static_cast<void*>(v.data()));
    if (h.swap) byte_swap(v);
    if (h.type == NpyType::boolean) {
      for (auto& x : v) x = static_cast<T>(x != 0 ? 1 : 0);
    }
    if (h.fortran_order) v = fortran_to_c(v, h.shape);
    a.data = std::move(v);
  });
  a.shape = std::move(h.shape);
  a.descr = std::move(h.descr);
  return a;
}

inline void check_data_size(const Header& h, std::uint64_t available, std::string_view function,
                            std::string_view source) {
  if (available < h.bytes) {
    fail(function, source,
         "truncated data: shape " + shape_string(h.shape) + " of " + info(h.type).name + " needs " +
             std::to_string(h.bytes) + " bytes after the header, the file has " +
             std::to_string(available));
  }
  if (available > h.bytes) {
    fail(function, source,
         "trailing garbage: " + std::to_string(available - h.bytes) +
             " byte(s) after the data of shape " + shape_string(h.shape) + " of " +
             info(h.type).name + " (" + std::to_string(h.bytes) + " bytes)");
  }
}

inline NpyArray parse_bytes(std::string_view bytes, std::string_view function,
                            std::string_view source) {
  const Preamble p = parse_preamble(bytes.substr(0, 12), bytes.size(), function, source);
  const std::string_view text = bytes.substr(p.header_begin, p.header_size);
  Header h = HeaderParser(text, p.major, function, source).parse();
  const std::size_t data_begin = p.header_begin + p.header_size;
  check_data_size(h, bytes.size() - data_begin, function, source);
  const char* data = bytes.data() + data_begin;
  const auto n = static_cast<std::size_t>(h.bytes);
  return decode(std::move(h), p.major, [&](void* out) { std::memcpy(out, data, n); });
}

inline NpyArray read_file(const std::filesystem::path& path, std::string_view function) {
  namespace fs = std::filesystem;
  const std::string source = file_source(path);
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec && status.type() != fs::file_type::not_found) {
    fail(function, source, "cannot open: " + ec.message());
  }
  if (status.type() == fs::file_type::not_found) fail(function, source, "no such file");
  if (status.type() == fs::file_type::directory) fail(function, source, "is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(function, source, "cannot open for reading");
  if (status.type() != fs::file_type::regular) {  // a pipe or device: read it all, then parse
    const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(function, source, "read error");
    return parse_bytes(all, function, source);
  }
  const std::uint64_t total = fs::file_size(path, ec);
  if (ec) fail(function, source, "cannot determine the file size: " + ec.message());
  auto read_exactly = [&](char* out, std::uint64_t n, std::string_view what) {
    in.read(out, static_cast<std::streamsize>(n));
    if (static_cast<std::uint64_t>(in.gcount()) != n) {
      fail(function, source,
           "truncated while reading the " + std::string(what) + " (the file changed size?)");
    }
  };
  std::array<char, 12> head{};
  const auto head_size = static_cast<std::size_t>(std::min<std::uint64_t>(total, head.size()));
  read_exactly(head.data(), head_size, "preamble");
  const Preamble p =
      parse_preamble(std::string_view(head.data(), head_size), total, function, source);
  std::string text(p.header_size, '\0');
  const std::size_t already = head_size - std::min(head_size, p.header_begin);
  std::copy_n(head.data() + p.header_begin, std::min(already, p.header_size), text.data());
  if (p.header_size > already) {
    read_exactly(text.data() + already, p.header_size - already, "header");
  } else if (already > p.header_size) {
    in.seekg(static_cast<std::streamoff>(p.header_begin + p.header_size));
  }
  Header h = HeaderParser(text, p.major, function, source).parse();
  // Size checks against the file size come before allocating, so a header claiming a huge
  // shape never allocates more than the file holds.
  check_data_size(h, total - p.header_begin - p.header_size, function, source);
  const std::uint64_t n = h.bytes;
  NpyArray a = decode(std::move(h), p.major,
                      [&](void* out) { read_exactly(static_cast<char*>(out), n, "data"); });
  if (in.peek() != std::char_traits<char>::eof()) {
    fail(function, source, "trailing garbage after the data (the file grew while reading?)");
  }
  return a;
}

// --- conversions -----------------------------------------------------------------------------

template <class From>
std::string element_string(From v) {
  if constexpr (std::is_floating_point_v<From>) {
    return format_value(static_cast<double>(v));
  } else {
    return std::to_string(v);
  }
}

template <class To, class From>
To convert(From v, std::size_t index, NpyType from_type, std::string_view function,
           std::string_view source) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else {
    auto reject = [&](std::string_view why) {
      std::string msg(function);
      msg.append(": ").append(source).append(": element ").append(std::to_string(index));
      msg.append(" (C order) = ").append(element_string(v)).append(" (");
      msg.append(info(from_type).name).append(") ").append(why);
      msg.append(" ").append(info(type_of<To>()).name);
      throw numerical_error(msg);
    };
    if constexpr (std::is_floating_point_v<To> && std::is_floating_point_v<From>) {
      if constexpr (sizeof(To) < sizeof(From)) {
        if (std::isfinite(v) && std::abs(v) > static_cast<From>(std::numeric_limits<To>::max())) {
          reject("is beyond the range of");
        }
      }
      return static_cast<To>(v);
    } else if constexpr (std::is_floating_point_v<To>) {  // integer to floating
      if constexpr (std::numeric_limits<From>::digits <= std::numeric_limits<To>::digits) {
        return static_cast<To>(v);
      } else {
        const To r = static_cast<To>(v);
        // max() = 2^k - 1 rounds up to 2^k, so `<` is the exact range test.
        const bool in_range = r >= static_cast<To>(std::numeric_limits<From>::min()) &&
                              r < static_cast<To>(std::numeric_limits<From>::max());
        if (!in_range || static_cast<From>(r) != v) reject("is not exactly representable as");
        return r;
      }
    } else if constexpr (std::is_floating_point_v<From>) {  // floating to integer
      const From upper = std::ldexp(From{1}, std::numeric_limits<To>::digits);
      if (!std::isfinite(v) || v != std::trunc(v) ||
          v < static_cast<From>(std::numeric_limits<To>::min()) || v >= upper) {
        reject("is not exactly representable as");
      }
      return static_cast<To>(v);
    } else {  // integer to integer
      if (!std::in_range<To>(v)) reject("is out of the range of");
      return static_cast<To>(v);
    }
  }
}

template <class To>
void convert_into(const NpyArray& a, To* out, std::string_view function, std::string_view source) {
  std::visit(
      [&](const auto& v) {
        using From = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_same_v<From, To>) {
          std::copy(v.begin(), v.end(), out);
        } else {
          for (std::size_t i = 0; i < v.size(); ++i) {
            out[i] = convert<To>(v[i], i, a.type, function, source);
          }
        }
      },
      a.data);
}

inline std::size_t data_size(const NpyData& d) {
  return std::visit([](const auto& v) { return v.size(); }, d);
}

// Shape and data agree (a hand-built NpyArray may not); the shape itself is valid.
inline void check_array(const NpyArray& a, std::string_view function) {
  if (a.rank() > max_rank) {
    detail::throw_invalid(
        function, "array",
        "has rank " + std::to_string(a.rank()) + ", more than " + std::to_string(max_rank));
  }
  std::uint64_t product = 1;
  bool zero = false;
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()) / 8;
  for (const auto dim : a.shape) {
    if (dim < 0) {
      detail::throw_invalid(function, "array",
                            "has a negative dimension in shape " + shape_string(a.shape));
    }
    const auto u = static_cast<std::uint64_t>(dim);
    if (u == 0) {
      zero = true;
      continue;
    }
    if (product > limit / u) {
      detail::throw_invalid(function, "array",
                            "has shape " + shape_string(a.shape) + " whose size overflows");
    }
    product *= u;
  }
  const std::uint64_t n = zero ? 0 : product;
  if (data_size(a.data) != n) {
    detail::throw_invalid(function, "array",
                          "has shape " + shape_string(a.shape) + " (" + std::to_string(n) +
                              " elements) but " + std::to_string(data_size(a.data)) +
                              " data elements");
  }
  const bool type_matches = dispatch(a.type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return std::holds_alternative<std::vector<T>>(a.data);
  });
  if (!type_matches) {
    detail::throw_invalid(
        function, "array",
        std::string("has type ") + info(a.type).name + " but its data holds another element type");
  }
}

template <class Scalar>
NpyMatrix<Scalar> to_matrix(const NpyArray& a, std::string_view function, std::string_view argument,
                            std::string_view source) {
  static_assert(is_element_v<Scalar>,
                "baypr::read_npy_matrix: Scalar must be float, double or "
                "an integer type");
  check_array(a, function);
  if (a.rank() != 1 && a.rank() != 2) {
    detail::throw_invalid(function, argument,
                          "(" + std::string(source) + ") must hold a 1-D or 2-D array, got shape " +
                              shape_string(a.shape));
  }
  const auto rows = static_cast<Eigen::Index>(a.shape[0]);
  const auto cols = a.rank() == 2 ? static_cast<Eigen::Index>(a.shape[1]) : Eigen::Index{1};
  NpyMatrix<Scalar> m(rows, cols);
  convert_into(a, m.data(), function, source);
  return m;
}

template <class Scalar>
NpyPatches<Scalar> to_patches(const NpyArray& a, std::string_view function,
                              std::string_view argument, std::string_view source) {
  static_assert(is_element_v<Scalar>,
                "baypr::read_npy_patches: Scalar must be float, double or "
                "an integer type");
  check_array(a, function);
  if (a.rank() != 3) {
    detail::throw_invalid(function, argument,
                          "(" + std::string(source) +
                              ") must hold a 3-D array (n, p, d), got shape " +
                              shape_string(a.shape));
  }
  NpyPatches<Scalar> out;
  out.n = static_cast<Eigen::Index>(a.shape[0]);
  out.p = static_cast<Eigen::Index>(a.shape[1]);
  out.d = static_cast<Eigen::Index>(a.shape[2]);
  out.embeddings.resize(out.n * out.p, out.d);
  convert_into(a, out.embeddings.data(), function, source);
  return out;
}

template <class Scalar>
NpyEmbeddings<Scalar> to_embeddings(const NpyArray& a, std::string_view function,
                                    std::string_view argument, std::string_view source) {
  check_array(a, function);
  NpyEmbeddings<Scalar> out;
  out.rank = a.rank();
  if (a.rank() == 2) {
    out.rows = to_matrix<Scalar>(a, function, argument, source);
    out.images = out.rows.rows();
  } else if (a.rank() == 3) {
    NpyPatches<Scalar> p = to_patches<Scalar>(a, function, argument, source);
    out.images = p.n;
    out.patches = p.p;
    out.rows = std::move(p.embeddings);
  } else {
    detail::throw_invalid(function, argument,
                          "(" + std::string(source) +
                              ") must hold a 2-D (n, d) or 3-D (n, p, d) array, got shape " +
                              shape_string(a.shape));
  }
  return out;
}

// --- writing ---------------------------------------------------------------------------------

inline std::string descr_of(NpyType t) {
  const TypeInfo& i = info(t);
  std::string d;
  d.push_back(i.size == 1 ? '|' : '<');
  d.push_back(i.kind);
  d.append(std::to_string(i.size));
  return d;
}

// Shape checks for writing; returns the number of elements.
inline std::uint64_t checked_count(std::span<const std::int64_t> shape, std::size_t item,
                                   std::string_view function) {
  if (shape.size() > max_rank) {
    detail::throw_invalid(function, "shape",
                          "has " + std::to_string(shape.size()) + " dimensions, more than " +
                              std::to_string(max_rank));
  }
  const std::uint64_t limit =
      static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max()) / item;
  std::uint64_t product = 1;
  bool zero = false;
  for (const auto dim : shape) {
    if (dim < 0) {
      detail::throw_invalid(function, "shape",
                            "must have non-negative dimensions, got " + shape_string(shape));
    }
    const auto u = static_cast<std::uint64_t>(dim);
    if (u == 0) {
      zero = true;
      continue;
    }
    if (product > limit / u) {
      detail::throw_invalid(function, "shape", "overflows: " + shape_string(shape));
    }
    product *= u;
  }
  return zero ? 0 : product;
}

// NumPy's header, byte for byte (numpy/lib/format.py, _write_array_header, NumPy >= 1.23).
inline std::string encode_header(NpyType t, std::span<const std::int64_t> shape) {
  std::string dict = "{'descr': '" + descr_of(t) + "', 'fortran_order': False, 'shape': ";
  dict.append(shape_string(shape)).append(", }");
  if (!shape.empty()) {  // spare room to grow axis 0 in place (GROWTH_AXIS_MAX_DIGITS = 21)
    dict.append(21 - std::min<std::size_t>(21, std::to_string(shape[0]).size()), ' ');
  }
  const std::size_t hlen = dict.size() + 1;
  const std::size_t pad = 64 - (10 + hlen) % 64;  // 64, not 0, when already aligned (as NumPy)
  const std::size_t len = hlen + pad;             // < 65536: rank <= 32 bounds the dict
  std::string out(magic);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  out.append(dict).append(pad, ' ').push_back('\n');
  return out;
}

template <class T>
void append_little_endian(std::string& out, T v) {
  std::array<char, sizeof(T)> b;
  std::memcpy(b.data(), &v, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
  out.append(b.data(), b.size());
}

// `type` is type_of<T>() except for bool arrays, held as std::uint8_t.
template <class T>
std::string encode(std::span<const T> data, std::span<const std::int64_t> shape,
                   std::string_view function, NpyType type = type_of<T>()) {
  const std::uint64_t n = checked_count(shape, sizeof(T), function);
  if (data.size() != n) {
    detail::throw_invalid(function, "data",
                          "has " + std::to_string(data.size()) + " elements, shape " +
                              shape_string(shape) + " needs " + std::to_string(n));
  }
  std::string out = encode_header(type, shape);
  const std::size_t header = out.size();
  if constexpr (std::endian::native == std::endian::little) {
    out.resize(header + data.size_bytes());
    if (!data.empty()) std::memcpy(out.data() + header, data.data(), data.size_bytes());
  } else {
    out.reserve(header + data.size_bytes());
    for (const T v : data) append_little_endian(out, v);
  }
  return out;
}

template <class Derived>
std::string encode_matrix(const Eigen::DenseBase<Derived>& m, std::string_view function) {
  using Scalar = typename Derived::Scalar;
  static_assert(is_element_v<Scalar>,
                "baypr::encode_npy / write_npy: Scalar must be float, double or an integer type");
  const NpyMatrix<Scalar> rm = m.derived();
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(rm.rows()),
                                        static_cast<std::int64_t>(rm.cols())};
  return encode<Scalar>(std::span<const Scalar>(rm.data(), static_cast<std::size_t>(rm.size())),
                        shape, function);
}

inline std::string encode_array(const NpyArray& array, std::string_view function) {
  check_array(array, function);
  return std::visit(
      [&](const auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        return encode<T>(std::span<const T>(v), array.shape, function, array.type);
      },
      array.data);
}

inline std::string temporary_name() {
  static std::atomic<std::uint64_t> counter{0};
  const auto ticks =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::uint64_t x = ticks ^ (counter.fetch_add(1) * 0x9e3779b97f4a7c15ULL) ^
                    reinterpret_cast<std::uintptr_t>(&counter);
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i, x >>= 4) s.push_back(hex[x & 15]);
  return s;
}

// Write to `<dir>/.<name>.tmp-<random>` and rename over `path`: a failure leaves no half file.
inline void write_atomically(const std::filesystem::path& path, std::string_view bytes,
                             std::string_view function) {
  namespace fs = std::filesystem;
  const std::string source = file_source(path);
  if (path.filename().empty()) fail(function, source, "the path names no file");
  fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp-" + temporary_name());
  auto remove_tmp = [&] {
    std::error_code ignored;
    fs::remove(tmp, ignored);
  };
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) {
        fail(function, source,
             "cannot create the temporary file '" + tmp.string() +
                 "' (does the directory exist and is it writable?)");
      }
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.flush();
      if (!out) fail(function, source, "write error (disk full?)");
      out.close();
      if (out.fail()) fail(function, source, "write error while closing (disk full?)");
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) fail(function, source, "cannot rename the temporary file over it: " + ec.message());
  } catch (...) {
    remove_tmp();
    throw;
  }
}

}  // namespace detail::npy

template <class T>
std::vector<T> NpyArray::as() const {
  static_assert(detail::npy::is_element_v<T>,
                "baypr::NpyArray::as: T must be float, double or an integer type");
  detail::npy::check_array(*this, "baypr::NpyArray::as");
  std::vector<T> out(detail::npy::data_size(data));
  detail::npy::convert_into(*this, out.data(), "baypr::NpyArray::as", "array");
  return out;
}

// --- reading ---------------------------------------------------------------------------------

// Decodes a complete .npy file held in memory. `name` is used in error messages only.
[[nodiscard]] inline NpyArray parse_npy(std::span<const std::byte> bytes,
                                        std::string_view name = "buffer") {
  return detail::npy::parse_bytes(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
      "baypr::parse_npy", name);
}
[[nodiscard]] inline NpyArray parse_npy(std::string_view bytes, std::string_view name = "buffer") {
  return detail::npy::parse_bytes(bytes, "baypr::parse_npy", name);
}

[[nodiscard]] inline NpyArray read_npy(const std::filesystem::path& path) {
  return detail::npy::read_file(path, "baypr::read_npy");
}

// A 1-D (n,) or 2-D (n, d) array as an n x 1 or n x d row-major matrix of Scalar.
template <class Scalar = double>
[[nodiscard]] NpyMatrix<Scalar> npy_matrix(const NpyArray& array) {
  return detail::npy::to_matrix<Scalar>(array, "baypr::npy_matrix", "array", "array");
}
template <class Scalar = double>
[[nodiscard]] NpyMatrix<Scalar> read_npy_matrix(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_npy_matrix";
  return detail::npy::to_matrix<Scalar>(detail::npy::read_file(path, function), function, "path",
                                        detail::npy::file_source(path));
}

// A 3-D (n, p, d) array as n, p, d and the (n * p) x d row-major matrix of its rows.
template <class Scalar = double>
[[nodiscard]] NpyPatches<Scalar> npy_patches(const NpyArray& array) {
  return detail::npy::to_patches<Scalar>(array, "baypr::npy_patches", "array", "array");
}
template <class Scalar = double>
[[nodiscard]] NpyPatches<Scalar> read_npy_patches(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_npy_patches";
  return detail::npy::to_patches<Scalar>(detail::npy::read_file(path, function), function, "path",
                                         detail::npy::file_source(path));
}

// A 2-D (n, d) or 3-D (n, p, d) array as embeddings; any other rank is an invalid_argument naming
// the shape.
template <class Scalar = double>
[[nodiscard]] NpyEmbeddings<Scalar> npy_embeddings(const NpyArray& array) {
  return detail::npy::to_embeddings<Scalar>(array, "baypr::npy_embeddings", "array", "array");
}
template <class Scalar = double>
[[nodiscard]] NpyEmbeddings<Scalar> read_npy_embeddings(const std::filesystem::path& path) {
  constexpr std::string_view function = "baypr::read_npy_embeddings";
  return detail::npy::to_embeddings<Scalar>(detail::npy::read_file(path, function), function,
                                            "path", detail::npy::file_source(path));
}

// --- writing ---------------------------------------------------------------------------------

// The .npy bytes of `data` (C order) with the given shape.
template <class T>
[[nodiscard]] std::string encode_npy(std::span<const T> data,
                                     const std::vector<std::int64_t>& shape) {
  return detail::npy::encode<T>(data, shape, "baypr::encode_npy");
}
template <class T, class Alloc>
[[nodiscard]] std::string encode_npy(const std::vector<T, Alloc>& data,
                                     const std::vector<std::int64_t>& shape) {
  return detail::npy::encode<T>(std::span<const T>(data), shape, "baypr::encode_npy");
}

// A matrix (any Eigen expression, either storage order) as a 2-D (rows, cols) array; a vector
// is a matrix too: an n x 1 column is written with shape (n, 1).
template <class Derived>
[[nodiscard]] std::string encode_npy(const Eigen::DenseBase<Derived>& m) {
  return detail::npy::encode_matrix(m, "baypr::encode_npy");
}

// An NpyArray, in C order with its element type (little-endian); fortran_order is ignored since
// `data` is in C order.
[[nodiscard]] inline std::string encode_npy(const NpyArray& array) {
  return detail::npy::encode_array(array, "baypr::encode_npy");
}

template <class T>
void write_npy(const std::filesystem::path& path, std::span<const T> data,
               const std::vector<std::int64_t>& shape) {
  const std::string bytes = detail::npy::encode<T>(data, shape, "baypr::write_npy");
  detail::npy::write_atomically(path, bytes, "baypr::write_npy");
}
template <class T, std::size_t Extent>
requires(!std::is_const_v<T>) void write_npy(const std::filesystem::path& path,
                                             std::span<T, Extent> data,
                                             const std::vector<std::int64_t>& shape) {
  write_npy(path, std::span<const T>(data.data(), data.size()), shape);
}
template <class T, class Alloc>
void write_npy(const std::filesystem::path& path, const std::vector<T, Alloc>& data,
               const std::vector<std::int64_t>& shape) {
  write_npy(path, std::span<const T>(data), shape);
}
template <class Derived>
void write_npy(const std::filesystem::path& path, const Eigen::DenseBase<Derived>& m) {
  const std::string bytes = detail::npy::encode_matrix(m, "baypr::write_npy");
  detail::npy::write_atomically(path, bytes, "baypr::write_npy");
}
inline void write_npy(const std::filesystem::path& path, const NpyArray& array) {
  const std::string bytes = detail::npy::encode_array(array, "baypr::write_npy");
  detail::npy::write_atomically(path, bytes, "baypr::write_npy");
}

}  // namespace baypr
