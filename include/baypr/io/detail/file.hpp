// baypr/io/detail/file.hpp: what every baypr reader and writer shares (.npy, IDX, .pat and
// meta::train's checkpoints): one error dialect, opening a file for reading, reading it whole, and
// writing one atomically.
//
// Errors are baypr::io_error with the message "<function>: <source>: <what is wrong>", where the
// source is "file '<path>'" for a file (file_source), "directory '<path>'" for a directory
// (directory_source) and "'<name>'" for bytes held in memory (buffer_source). Input bytes quoted
// in a message go through printable().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "baypr/core/errors.hpp"

namespace baypr::detail::io {

inline std::string file_source(const std::filesystem::path& path) {
  return "file '" + path.string() + "'";
}

inline std::string directory_source(const std::filesystem::path& path) {
  return "directory '" + path.string() + "'";
}

inline std::string buffer_source(std::string_view name) {
  std::string s = "'";
  s.append(name).push_back('\'');
  return s;
}

[[noreturn]] inline void fail(std::string_view function, std::string_view source,
                              std::string_view what) {
  std::string msg(function);
  msg.append(": ").append(source).append(": ").append(what);
  throw io_error(msg);
}

// Input bytes shown in a message: printable ASCII as is, a backslash and each character of
// `escape` as \xNN (\\ for the backslash), the rest as \xNN; at most `limit` bytes, then "...".
inline std::string printable(std::string_view s, std::size_t limit = 48,
                             std::string_view escape = {}) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      out.append("\\\\");
    } else if (c >= 0x20 && c < 0x7f && escape.find(static_cast<char>(c)) == escape.npos) {
      out.push_back(static_cast<char>(c));
    } else {
      out.append("\\x").push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  if (s.size() > limit) out.append("...");
  return out;
}

// An open input file. `size` is its size in bytes when `regular`; a pipe or a device has no size
// known in advance (read it to its end).
struct InputFile {
  std::ifstream stream;
  bool regular = false;
  std::uint64_t size = 0;
};

// Opens `path` for binary reading: "no such file", "is a directory", "cannot open: <reason>",
// "cannot open for reading" and "cannot determine the file size: <reason>" otherwise.
inline InputFile open_input(const std::filesystem::path& path, std::string_view function) {
  namespace fs = std::filesystem;
  const std::string source = file_source(path);
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) fail(function, source, "no such file");
  if (ec) fail(function, source, "cannot open: " + ec.message());
  if (status.type() == fs::file_type::directory) fail(function, source, "is a directory");
  InputFile f;
  f.stream.open(path, std::ios::binary);
  if (!f.stream) fail(function, source, "cannot open for reading");
  f.regular = status.type() == fs::file_type::regular;
  if (f.regular) {
    f.size = fs::file_size(path, ec);
    if (ec) fail(function, source, "cannot determine the file size: " + ec.message());
  }
  return f;
}

// The whole file. A regular file larger than `max_bytes` is refused before anything is allocated
// ("<size> bytes, larger than <what_max> (<max_bytes>)"); so is a pipe that yields more.
inline std::vector<std::byte> read_all(
    const std::filesystem::path& path, std::string_view function,
    std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max(),
    std::string_view what_max = "the largest accepted") {
  InputFile f = open_input(path, function);
  const auto too_large = [&](const std::string& size) {
    fail(function, file_source(path),
         size + " bytes, larger than " + std::string(what_max) + " (" + std::to_string(max_bytes) +
             ")");
  };
  std::vector<std::byte> bytes;
  if (f.regular) {
    if (f.size > max_bytes) too_large(std::to_string(f.size));
    bytes.resize(static_cast<std::size_t>(f.size));
    f.stream.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(f.size));
    if (static_cast<std::uint64_t>(f.stream.gcount()) != f.size) {
      fail(function, file_source(path), "read error (the file changed size?)");
    }
    return bytes;
  }
  for (std::istreambuf_iterator<char> it(f.stream), end; it != end; ++it) {
    if (bytes.size() == max_bytes) too_large("more than " + std::to_string(max_bytes));
    bytes.push_back(static_cast<std::byte>(*it));
  }
  if (f.stream.bad()) fail(function, file_source(path), "read error");
  return bytes;
}

// A random-looking suffix for a temporary file name: unique within the process (a counter) and
// unlikely to collide across processes (the clock and an address).
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

// Writes to `<dir>/.<name>.tmp-<random>` and renames it over `path`: a failure leaves the old file
// (or nothing), never half a file, and no temporary file behind.
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

}  // namespace baypr::detail::io
