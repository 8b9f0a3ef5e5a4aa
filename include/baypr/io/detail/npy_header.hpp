// baypr/io/detail/npy_header.hpp: the .npy element types, the preamble (magic, version, header
// length) and the header, a Python dict literal, parsed strictly (the rules: baypr/io/npy.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/io/detail/file.hpp"
#include "baypr/io/npy_types.hpp"

namespace baypr::detail::npy {

using io::fail;
using io::file_source;
using io::printable;

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

}  // namespace baypr::detail::npy
