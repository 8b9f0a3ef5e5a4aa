// baypr/io/pat.hpp: every GIMP pattern Debian ships (and two crafted ones) read exactly as an
// independent struct-module parser sees them (tests/reference/make_pat_fixtures.py ->
// tests/reference/pat/patterns.csv), every malformation rejected with an io_error that says what
// is wrong, pattern_to_grey's exact values, and find_pat_files' listing rules.
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "baypr/io/pat.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"
#include "support/scratch_dir.hpp"

namespace fs = std::filesystem;
using baypr::test::contains;
using baypr::test::message_of;

namespace {

const fs::path fixture_dir = fs::path(BAYPR_TEST_DATA_DIR) / "pat";
const fs::path system_dir = "/usr/share/gimp/2.0/patterns";

// One line of tests/reference/pat/patterns.csv (no field is quoted: the generator refuses names
// that would need it).
struct Expected {
  std::string root, path, name;
  std::uint32_t width = 0, height = 0, channels = 0;
  std::uint32_t crc32 = 0;
  std::uint64_t byte_sum = 0;
  double grey_mean = 0, grey_top_right = 0, grey_bottom_left = 0;
};

std::vector<Expected> expected_rows() {
  std::ifstream in(fixture_dir / "patterns.csv");
  if (!in) throw std::runtime_error("cannot open patterns.csv");
  std::vector<Expected> out;
  std::string line;
  std::getline(in, line);  // column names
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string field; std::getline(ss, field, ',');) f.push_back(field);
    if (f.size() != 11) throw std::runtime_error("malformed patterns.csv line: " + line);
    Expected e;
    e.root = f[0];
    e.path = f[1];
    e.width = static_cast<std::uint32_t>(std::stoul(f[2]));
    e.height = static_cast<std::uint32_t>(std::stoul(f[3]));
    e.channels = static_cast<std::uint32_t>(std::stoul(f[4]));
    e.name = f[5];
    e.crc32 = static_cast<std::uint32_t>(std::stoul(f[6]));
    e.byte_sum = std::stoull(f[7]);
    e.grey_mean = std::stod(f[8]);
    e.grey_top_right = std::stod(f[9]);
    e.grey_bottom_left = std::stod(f[10]);
    out.push_back(e);
  }
  return out;
}

// CRC-32 (IEEE, reflected, as zlib.crc32), bit by bit: slow but obviously right.
std::uint32_t crc32(const std::vector<std::uint8_t>& bytes) {
  std::uint32_t crc = 0xFFFFFFFFU;
  for (const std::uint8_t b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320U & (0U - (crc & 1U)));
  }
  return ~crc;
}

void check_against(const baypr::PatPattern& p, const Expected& e) {
  INFO(e.root << " " << e.path);
  CHECK(p.width == e.width);
  CHECK(p.height == e.height);
  CHECK(p.channels == e.channels);
  CHECK(p.name == e.name);
  REQUIRE(p.pixels.size() == std::size_t{e.width} * e.height * e.channels);
  CHECK(crc32(p.pixels) == e.crc32);
  std::uint64_t sum = 0;
  for (const std::uint8_t b : p.pixels) sum += b;
  CHECK(sum == e.byte_sum);
  const Eigen::ArrayXXd g = baypr::pattern_to_grey(p);
  REQUIRE(g.rows() == static_cast<Eigen::Index>(e.height));
  REQUIRE(g.cols() == static_cast<Eigen::Index>(e.width));
  CHECK(g.minCoeff() >= 0.0);
  CHECK(g.maxCoeff() <= 1.0);
  // Both sides divide the same exact integer once: the corners agree bit for bit.
  CHECK(g(0, g.cols() - 1) == e.grey_top_right);
  CHECK(g(g.rows() - 1, 0) == e.grey_bottom_left);
  CHECK(std::abs(g.mean() - e.grey_mean) <= 1e-12);
}

void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 24);
  b[at + 1] = static_cast<std::uint8_t>(v >> 16);
  b[at + 2] = static_cast<std::uint8_t>(v >> 8);
  b[at + 3] = static_cast<std::uint8_t>(v);
}

// A well-formed pattern; tests then break one thing at a time.
std::vector<std::uint8_t> make_pat(std::uint32_t width, std::uint32_t height,
                                   std::uint32_t channels, const std::string& name = "Test") {
  // Sized up front and filled by index (GCC 12 warns falsely on vector::insert of a string).
  const std::size_t header = 24 + name.size() + 1, data = std::size_t{width} * height * channels;
  std::vector<std::uint8_t> b(header + data, 0);
  put32(b, 0, static_cast<std::uint32_t>(header));
  put32(b, 4, 1);
  put32(b, 8, width);
  put32(b, 12, height);
  put32(b, 16, channels);
  b[20] = 'G';
  b[21] = 'P';
  b[22] = 'A';
  b[23] = 'T';
  for (std::size_t i = 0; i < name.size(); ++i) b[24 + i] = static_cast<std::uint8_t>(name[i]);
  for (std::size_t i = 0; i < data; ++i) b[header + i] = static_cast<std::uint8_t>(i * 7);
  return b;
}

// The bytes as parse_pat takes them.
std::span<const std::byte> bytes_of(const std::vector<std::uint8_t>& b) {
  return std::as_bytes(std::span<const std::uint8_t>(b));
}

std::string parse_error(const std::vector<std::uint8_t>& b) {
  return message_of([&] { (void)baypr::parse_pat(bytes_of(b), "test buffer"); });
}

// The message of a parse that must fail with io_error, naming the function and the source.
std::string io_error_of(const std::vector<std::uint8_t>& b) {
  CHECK_THROWS_AS(baypr::parse_pat(bytes_of(b), "test buffer"), baypr::io_error);
  const std::string msg = parse_error(b);
  CHECK(contains(msg, "baypr::parse_pat: 'test buffer': "));
  return msg;
}

void write_file(const fs::path& path, const std::vector<std::uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace

// --- real files --------------------------------------------------------------------------------

TEST_CASE("every GIMP pattern Debian ships matches the struct-module reference",
          "[io][pat][reference]") {
  if (!fs::is_directory(system_dir)) {
    WARN(system_dir.string() << " is missing (install gimp-data gimp-data-extras): skipped");
    return;
  }
  std::map<std::string, Expected> expected;
  for (const auto& e : expected_rows()) {
    if (e.root == "system") expected[e.path] = e;
  }
  REQUIRE(expected.size() == 168);
  const auto files = baypr::find_pat_files(system_dir);
  // The reference must list exactly the installed files (regenerate it if gimp-data changed).
  REQUIRE(files.size() == expected.size());
  for (const auto& file : files) {
    const std::string rel = file.lexically_relative(system_dir).generic_string();
    const auto it = expected.find(rel);
    INFO(rel);
    REQUIRE(it != expected.end());
    check_against(baypr::read_pat(file), it->second);
  }
}

TEST_CASE("the crafted grey+alpha and RGBA fixtures read exactly", "[io][pat][reference]") {
  std::size_t seen = 0;
  for (const auto& e : expected_rows()) {
    if (e.root != "fixture") continue;
    check_against(baypr::read_pat(fixture_dir / e.path), e);
    ++seen;
  }
  CHECK(seen == 2);
  // Bytes as written by the generator: 2 wide x 3 high RGBA, row-major, interleaved.
  const auto rgba = baypr::read_pat(fixture_dir / "tiny_rgba.pat");
  CHECK(rgba.name == "Tiny RGBA \xc3\xa9");
  CHECK(rgba.pixels == std::vector<std::uint8_t>{255, 0, 0,   255, 0,   255, 0,   0,
                                                 0,   0, 255, 10,  255, 255, 255, 20,
                                                 0,   0, 0,   30,  10,  20,  30,  40});
  const Eigen::ArrayXXd g = baypr::pattern_to_grey(rgba);
  CHECK(g(0, 0) == 299 * 255 / 255000.0);
  CHECK(g(0, 1) == 587 * 255 / 255000.0);
  CHECK(g(1, 0) == 114 * 255 / 255000.0);
  CHECK(g(1, 1) == 1.0);
  CHECK(g(2, 0) == 0.0);
  CHECK(g(2, 1) == (299 * 10 + 587 * 20 + 114 * 30) / 255000.0);
  // Grey + alpha: padding after the name's NUL is ignored; alpha never reaches the grey level.
  const auto ga = baypr::read_pat(fixture_dir / "tiny_grey_alpha.pat");
  CHECK(ga.name == "Tiny grey+alpha");
  CHECK(ga.channels == 2);
  const Eigen::ArrayXXd h = baypr::pattern_to_grey(ga);
  CHECK(h(0, 0) == 0.0);
  CHECK(h(0, 2) == 102 / 255.0);
  CHECK(h(1, 0) == 153 / 255.0);
  CHECK(h(1, 2) == 1.0);
}

// --- parse_pat ---------------------------------------------------------------------------------

TEST_CASE("parse_pat decodes a crafted buffer and names the default buffer", "[io][pat]") {
  auto b = make_pat(3, 2, 3, "Name with\ttab");
  const auto p = baypr::parse_pat(bytes_of(b));
  CHECK(p.name == "Name with\ttab");
  CHECK(p.width == 3);
  CHECK(p.height == 2);
  CHECK(p.channels == 3);
  REQUIRE(p.pixels.size() == 18);
  for (std::size_t i = 0; i < 18; ++i) CHECK(p.pixels[i] == static_cast<std::uint8_t>(i * 7));
  // The name stops at its first NUL; the rest of the name field is ignored.
  b[24 + 4] = 0;
  CHECK(baypr::parse_pat(bytes_of(b)).name == "Name");
  b.pop_back();  // (not resize(size - 1): GCC 12 -O1 warns it could wrap)
  CHECK(contains(message_of([&] { (void)baypr::parse_pat(bytes_of(b)); }),
                 "baypr::parse_pat: 'buffer': truncated"));
  // An empty name (header_size 25, just the NUL) is fine.
  CHECK(baypr::parse_pat(bytes_of(make_pat(1, 1, 1, ""))).name.empty());
}

TEST_CASE("parse_pat rejects every malformation with a precise io_error", "[io][pat][errors]") {
  const auto good = make_pat(4, 3, 3);
  REQUIRE_NOTHROW(baypr::parse_pat(bytes_of(good)));

  SECTION("short header: every length below 24") {
    for (std::size_t n = 0; n < 24; ++n) {
      const std::vector<std::uint8_t> b(good.begin(),
                                        good.begin() + static_cast<std::ptrdiff_t>(n));
      INFO(n);
      CHECK(contains(io_error_of(b), "short header: " + std::to_string(n) + " bytes"));
    }
  }
  SECTION("wrong magic") {
    auto b = good;
    b[21] = 'I';
    CHECK(contains(io_error_of(b), "wrong magic \"GIAT\" at byte 20, expected \"GPAT\""));
    b[20] = 0;
    CHECK(contains(io_error_of(b), "wrong magic \"\\x00IAT\""));
  }
  SECTION("version") {
    for (const std::uint32_t v : {0U, 2U, 3U, 0xFFFFFFFFU}) {
      auto b = good;
      put32(b, 4, v);
      CHECK(contains(io_error_of(b), "unsupported version " + std::to_string(v) + ", expected 1"));
    }
  }
  SECTION("header_size below 24, absurd, beyond the file") {
    auto b = good;
    for (const std::uint32_t h : {0U, 20U, 23U}) {
      put32(b, 0, h);
      CHECK(contains(io_error_of(b), "header_size " + std::to_string(h) +
                                         " is less than the 24-byte fixed header"));
    }
    put32(b, 0, 1U << 20);
    CHECK(contains(io_error_of(b), "header_size 1048576 is absurd"));
    put32(b, 0, 0xFFFFFFFFU);
    CHECK(contains(io_error_of(b), "header_size 4294967295 is absurd"));
    put32(b, 0, static_cast<std::uint32_t>(good.size() + 1));
    CHECK(contains(io_error_of(b), "header_size " + std::to_string(good.size() + 1) +
                                       " is beyond the file (" + std::to_string(good.size()) +
                                       " bytes)"));
  }
  SECTION("zero width or height") {
    auto b = good;
    put32(b, 8, 0);
    CHECK(contains(io_error_of(b), "empty pattern: width 0, height 3"));
    b = good;
    put32(b, 12, 0);
    CHECK(contains(io_error_of(b), "empty pattern: width 4, height 0"));
  }
  SECTION("too many pixels, including products beyond 32 and near 64 bits") {
    auto b = good;
    put32(b, 8, 0xFFFFFFFFU);
    put32(b, 12, 0xFFFFFFFFU);
    CHECK(contains(io_error_of(b),
                   "width 4294967295 x height 4294967295 = 18446744065119617025 pixels, more than "
                   "the cap of 67108864"));
    put32(b, 8, 1U << 16);
    put32(b, 12, 1U << 16);
    CHECK(contains(io_error_of(b), "= 4294967296 pixels, more than the cap"));
    put32(b, 8, 1U << 13);
    put32(b, 12, (1U << 13) + 1);
    CHECK(contains(io_error_of(b), "= 67117056 pixels, more than the cap"));
    // At the cap exactly the header is accepted and the (absent) data is reported instead.
    put32(b, 12, 1U << 13);
    CHECK(contains(io_error_of(b),
                   "truncated pixel data: 8192 x 8192 x 3 = 201326592 bytes expected, 36 found"));
  }
  SECTION("bytes per pixel outside 1..4") {
    for (const std::uint32_t c : {0U, 5U, 8U, 0xFFFFFFFFU}) {
      auto b = good;
      put32(b, 16, c);
      CHECK(contains(io_error_of(b), "bytes per pixel " + std::to_string(c) + " not in 1..4"));
    }
  }
  SECTION("name without a NUL") {
    auto b = good;
    b[24 + 4] = 'x';  // "Test" + NUL -> "Testx"
    CHECK(contains(io_error_of(b), "missing NUL at the end of the 5-byte name field"));
    put32(b, 0, 24);  // no name field at all; the name bytes then count as pixels
    CHECK(contains(io_error_of(b), "missing NUL at the end of the 0-byte name field"));
  }
  SECTION("truncated pixel data: every truncation") {
    for (std::size_t n = 29; n < good.size(); ++n) {
      const std::vector<std::uint8_t> b(good.begin(),
                                        good.begin() + static_cast<std::ptrdiff_t>(n));
      INFO(n);
      CHECK(contains(io_error_of(b), "truncated pixel data: 4 x 3 x 3 = 36 bytes expected, " +
                                         std::to_string(n - 29) + " found"));
    }
  }
  SECTION("trailing bytes") {
    auto b = good;
    b.push_back(0);
    CHECK(contains(io_error_of(b), "1 trailing bytes after the 36 bytes of pixel data"));
    b.insert(b.end(), good.begin(), good.end());  // two patterns concatenated
    CHECK(contains(io_error_of(b), std::to_string(1 + good.size()) + " trailing bytes"));
  }
}

TEST_CASE("parse_pat on mutated real and crafted files: a pattern or an io_error",
          "[io][pat][errors]") {
  std::vector<std::vector<std::uint8_t>> seeds = {make_pat(5, 4, 1), make_pat(2, 3, 4, "RGBA")};
  if (fs::is_directory(system_dir)) {
    std::ifstream in(system_dir / "Legacy" / "warning.pat", std::ios::binary);
    if (in)
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::mt19937_64 rng(20261128);
  std::size_t parsed = 0, rejected = 0;
  for (const auto& seed : seeds) {
    for (int trial = 0; trial < 3000; ++trial) {
      auto b = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        const std::size_t at = rng() % std::min<std::size_t>(b.size(), 48);  // mostly the header
        b[at] = static_cast<std::uint8_t>(rng());
      }
      try {
        const auto p = baypr::parse_pat(bytes_of(b));
        CHECK(p.pixels.size() == std::size_t{p.width} * p.height * p.channels);
        ++parsed;
      } catch (const baypr::io_error&) {
        ++rejected;
      }
    }
  }
  CHECK(parsed > 0);
  CHECK(rejected > 0);
}

// --- read_pat ----------------------------------------------------------------------------------

TEST_CASE("read_pat names the file in its errors", "[io][pat][errors]") {
  const ScratchDir dir("baypr-io-pat");
  const auto missing = dir.path / "missing.pat";
  CHECK_THROWS_AS(baypr::read_pat(missing), baypr::io_error);
  CHECK(contains(message_of([&] { (void)baypr::read_pat(missing); }),
                 "baypr::read_pat: file '" + missing.string() + "': no such file"));
  auto b = make_pat(2, 2, 1);
  b.pop_back();
  write_file(dir.path / "short.pat", b);
  CHECK(contains(message_of([&] { (void)baypr::read_pat(dir.path / "short.pat"); }),
                 "baypr::read_pat: file '" + (dir.path / "short.pat").string() +
                     "': truncated pixel data: 2 x 2 x 1 = 4 bytes expected, 3 found"));
  b.push_back(9);
  write_file(dir.path / "ok.pat", b);
  CHECK(baypr::read_pat(dir.path / "ok.pat").pixels.back() == 9);
  // The same bytes as a string_view parse alike.
  const std::string text(b.begin(), b.end());
  CHECK(baypr::parse_pat(std::string_view(text), "text").pixels ==
        baypr::parse_pat(bytes_of(b)).pixels);
  // A directory, and a file larger than any valid pattern: refused (a sparse file, so the test
  // writes nothing; the size is checked before anything is allocated or read).
  CHECK(contains(message_of([&] { (void)baypr::read_pat(dir.path); }), "': is a directory"));
  const auto huge = dir.path / "huge.pat";
  write_file(huge, b);
  const std::uint64_t largest = 24 + baypr::max_pat_header_bytes + 4 * baypr::max_pat_pixels;
  fs::resize_file(huge, largest + 1);
  CHECK(contains(message_of([&] { (void)baypr::read_pat(huge); }),
                 "': " + std::to_string(largest + 1) + " bytes, larger than any valid pattern (" +
                     std::to_string(largest) + ")"));
}

// --- pattern_to_grey ---------------------------------------------------------------------------

TEST_CASE("pattern_to_grey: exact values, rows are y", "[io][pat][grey]") {
  // 2 x 2 RGB: (x, y) = (0, 0) red, (1, 0) green, (0, 1) blue, (1, 1) (10, 20, 30).
  baypr::PatPattern rgb{"rgb", 2, 2, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30}};
  const Eigen::ArrayXXd g = baypr::pattern_to_grey(rgb);
  REQUIRE(g.rows() == 2);
  REQUIRE(g.cols() == 2);
  // 299 * 255 / 255000 is exactly 0.299, so the one rounded division gives the literal 0.299.
  CHECK(g(0, 0) == 0.299);
  CHECK(g(0, 1) == 0.587);
  CHECK(g(1, 0) == 0.114);
  CHECK(g(1, 1) == 18150 / 255000.0);  // 299 * 10 + 587 * 20 + 114 * 30 = 18150
  CHECK(std::abs(g(1, 1) - (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255) <= 1e-16);
  // White is exactly 1 and black exactly 0; the fourth (alpha) channel is ignored.
  baypr::PatPattern rgba{"rgba", 2, 1, 4, {255, 255, 255, 0, 0, 0, 0, 255}};
  const Eigen::ArrayXXd w = baypr::pattern_to_grey(rgba);
  CHECK(w(0, 0) == 1.0);
  CHECK(w(0, 1) == 0.0);
  // 2 x 2 grey, non-symmetric so a transpose would show.
  baypr::PatPattern grey{"grey", 2, 2, 1, {0, 51, 204, 255}};
  const Eigen::ArrayXXd h = baypr::pattern_to_grey(grey);
  CHECK(h(0, 0) == 0.0);
  CHECK(h(0, 1) == 0.2);
  CHECK(h(1, 0) == 0.8);
  CHECK(h(1, 1) == 1.0);
  // 3 wide x 1 high is 1 row, 3 columns.
  baypr::PatPattern wide{"wide", 3, 1, 1, {1, 2, 3}};
  CHECK(baypr::pattern_to_grey(wide).rows() == 1);
  CHECK(baypr::pattern_to_grey(wide).cols() == 3);
}

TEST_CASE("pattern_to_grey rejects an inconsistent PatPattern", "[io][pat][grey][errors]") {
  baypr::PatPattern p{"bad", 2, 2, 3, std::vector<std::uint8_t>(11)};
  CHECK_THROWS_AS(baypr::pattern_to_grey(p), baypr::invalid_argument);
  CHECK(contains(message_of([&] { (void)baypr::pattern_to_grey(p); }),
                 "baypr::pattern_to_grey: argument 'p' has 11 pixel bytes, expected width 2 x "
                 "height 2 x channels 3"));
  p.channels = 5;
  CHECK(contains(message_of([&] { (void)baypr::pattern_to_grey(p); }),
                 "has channels 5, expected 1..4"));
}

// --- find_pat_files ----------------------------------------------------------------------------

TEST_CASE("find_pat_files: recursive, sorted, *.pat regular files only", "[io][pat][files]") {
  const ScratchDir dir("baypr-io-pat");
  const auto& r = dir.path;
  fs::create_directories(r / "b" / "deep");
  fs::create_directories(r / "a");
  fs::create_directories(r / "dir.pat");  // a directory, not a pattern
  for (const auto& p :
       {r / "z.pat", r / "b" / "deep" / "x.pat", r / "a" / "y.pat", r / "b" / "c.pat",
        r / "upper.PAT", r / "notes.txt", r / "y.pat.bak", r / "pat"}) {
    write_file(p, {1});
  }
  const auto files = baypr::find_pat_files(r);
  const std::vector<fs::path> expected = {r / "a" / "y.pat", r / "b" / "c.pat",
                                          r / "b" / "deep" / "x.pat", r / "z.pat"};
  CHECK(files == expected);
  CHECK(std::is_sorted(files.begin(), files.end()));
  CHECK(baypr::find_pat_files(r / "a") == std::vector<fs::path>{r / "a" / "y.pat"});
  fs::create_directories(r / "empty");
  CHECK(baypr::find_pat_files(r / "empty").empty());
}

TEST_CASE("find_pat_files: a missing root or a file is an io_error", "[io][pat][files][errors]") {
  const ScratchDir dir("baypr-io-pat");
  const auto missing = dir.path / "nowhere";
  CHECK_THROWS_AS(baypr::find_pat_files(missing), baypr::io_error);
  CHECK(contains(message_of([&] { (void)baypr::find_pat_files(missing); }),
                 "baypr::find_pat_files: directory '" + missing.string() + "': does not exist"));
  write_file(dir.path / "f.pat", {1});
  CHECK(contains(message_of([&] { (void)baypr::find_pat_files(dir.path / "f.pat"); }),
                 "not a directory"));
}
