// baypr/io/npy.hpp: reading NumPy-written fixtures exactly (tests/reference/npy/, written by
// tests/reference/generate_npy.py), writing byte-for-byte what numpy.save writes, round trips,
// atomic writes, and every kind of malformed input (crafted headers, every truncation, byte
// mutations) rejected with the right exception and a useful message, never a crash.
#include <Eigen/Core>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "baypr/io/npy.hpp"
#include "support/catch.hpp"
#include "support/scratch_dir.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path fixture_dir = fs::path(BAYPR_TEST_DATA_DIR) / "npy";

// One line of tests/reference/npy.txt.
struct Expected {
  std::string file, descr;
  bool fortran = false;
  int version = 0;
  std::vector<std::int64_t> shape;
  std::vector<std::string> values;  // C order, as written by Python
};

const std::vector<Expected>& expected_files() {
  static const std::vector<Expected> all = [] {
    std::ifstream in(std::string(BAYPR_TEST_DATA_DIR) + "/npy.txt");
    if (!in) throw std::runtime_error("cannot open npy.txt");
    std::vector<Expected> out;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream ss(line);
      Expected e;
      int fortran = 0;
      std::size_t rank = 0, count = 0;
      ss >> e.file >> e.descr >> fortran >> e.version >> rank;
      e.fortran = fortran != 0;
      e.shape.resize(rank);
      for (auto& d : e.shape) ss >> d;
      ss >> count;
      e.values.resize(count);
      for (auto& v : e.values) ss >> v;
      if (!ss) throw std::runtime_error("malformed npy.txt line: " + line);
      out.push_back(std::move(e));
    }
    return out;
  }();
  return all;
}

const Expected& expected(const std::string& file) {
  for (const auto& e : expected_files()) {
    if (e.file == file) return e;
  }
  throw std::runtime_error("no expected values for " + file);
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void put_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

double parse_double(const std::string& s) {
  return std::strtod(s.c_str(), nullptr);
}

// Exact equality including the sign of zero; NaN equals NaN.
bool same_double(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// Every element of `a` equals the expected text (floats exactly, integers by their decimal text).
void check_values(const baypr::NpyArray& a, const Expected& e) {
  std::visit(
      [&](const auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        REQUIRE(v.size() == e.values.size());
        for (std::size_t i = 0; i < v.size(); ++i) {
          INFO(e.file << " element " << i << " expected " << e.values[i]);
          if constexpr (std::is_floating_point_v<T>) {
            CHECK(same_double(static_cast<double>(v[i]), parse_double(e.values[i])));
          } else {
            CHECK(std::to_string(v[i]) == e.values[i]);
          }
        }
      },
      a.data);
}

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("(wrong exception type) ") + e.what();
  }
  return "(no exception)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A crafted .npy: magic, version, header length, header text as given (no padding added).
std::string craft(const std::string& header, const std::string& data = "", int major = 1) {
  std::string s("\x93NUMPY", 6);
  s.push_back(static_cast<char>(major));
  s.push_back('\0');
  const std::size_t n = header.size();
  s.push_back(static_cast<char>(n & 0xff));
  s.push_back(static_cast<char>((n >> 8) & 0xff));
  if (major > 1) {
    s.push_back(static_cast<char>((n >> 16) & 0xff));
    s.push_back(static_cast<char>((n >> 24) & 0xff));
  }
  return s + header + data;
}

std::string dict(const std::string& descr, const std::string& fortran, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

std::string doubles(std::initializer_list<double> v) {
  std::string s(v.size() * 8, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

std::size_t files_in(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

// --- reading NumPy's files -------------------------------------------------------------------

TEST_CASE("every NumPy-written fixture reads back exactly", "[io][npy][reference]") {
  REQUIRE(expected_files().size() >= 20);
  for (const auto& e : expected_files()) {
    INFO("fixture " << e.file);
    const auto path = fixture_dir / e.file;
    const baypr::NpyArray a = baypr::read_npy(path);
    CHECK(a.descr == e.descr);
    CHECK(a.fortran_order == e.fortran);
    CHECK(a.version == e.version);
    CHECK(a.shape == e.shape);
    CHECK(a.rank() == e.shape.size());
    CHECK(static_cast<std::size_t>(a.size()) == e.values.size());
    check_values(a, e);

    // The in-memory parser gives the same array.
    const std::string bytes = file_bytes(path);
    const baypr::NpyArray b = baypr::parse_npy(bytes, e.file);
    CHECK(b.shape == a.shape);
    CHECK(b.type == a.type);
    check_values(b, e);
    const auto* p = reinterpret_cast<const std::byte*>(bytes.data());
    check_values(baypr::parse_npy(std::span<const std::byte>(p, bytes.size())), e);
  }
}

TEST_CASE("element types map to NpyType", "[io][npy]") {
  using baypr::NpyType;
  const std::vector<std::pair<std::string, NpyType>> types{
      {"f8_c_2d.npy", NpyType::float64}, {"f4_c_2d.npy", NpyType::float32},
      {"u1_mask.npy", NpyType::uint8},   {"b1.npy", NpyType::boolean},
      {"i1.npy", NpyType::int8},         {"i2.npy", NpyType::int16},
      {"u2.npy", NpyType::uint16},       {"i4_labels.npy", NpyType::int32},
      {"u4.npy", NpyType::uint32},       {"i8_labels.npy", NpyType::int64},
      {"u8.npy", NpyType::uint64},       {"i4_be.npy", NpyType::int32},
      {"f8_be.npy", NpyType::float64},
  };
  for (const auto& [file, type] : types) {
    INFO(file);
    CHECK(baypr::read_npy(fixture_dir / file).type == type);
  }
}

TEST_CASE("read_npy_matrix: C order, Fortran order, big-endian, 1-D", "[io][npy]") {
  auto check_matrix = [](const auto& m, const Expected& e) {
    REQUIRE(e.shape.size() >= 1);
    const Eigen::Index rows = e.shape[0];
    const Eigen::Index cols = e.shape.size() == 2 ? e.shape[1] : 1;
    REQUIRE(m.rows() == rows);
    REQUIRE(m.cols() == cols);
    for (Eigen::Index i = 0; i < rows; ++i) {
      for (Eigen::Index j = 0; j < cols; ++j) {
        INFO(e.file << " (" << i << ", " << j << ")");
        CHECK(same_double(static_cast<double>(m(i, j)),
                          parse_double(e.values[static_cast<std::size_t>(i * cols + j)])));
      }
    }
  };
  for (const char* f : {"f8_c_2d.npy", "f8_f_2d.npy", "f8_1d.npy", "f8_v2.npy", "f8_be.npy"}) {
    check_matrix(baypr::read_npy_matrix(fixture_dir / f), expected(f));
  }
  for (const char* f : {"f4_c_2d.npy", "f4_v3.npy", "f4_be_f.npy"}) {
    check_matrix(baypr::read_npy_matrix<float>(fixture_dir / f), expected(f));
    check_matrix(baypr::read_npy_matrix<double>(fixture_dir / f), expected(f));
  }
  // The Fortran-order file holds the same matrix NumPy sees: m(i, j) is row i, column j.
  const auto f = baypr::read_npy_matrix(fixture_dir / "f8_f_2d.npy");
  CHECK(f(0, 1) == -1.5 / 7.0);  // (i * 4 + j) * 0.5 - 2 over 7, as generated
  CHECK(f(1, 0) == 0.0);
  CHECK(f(2, 3) == 3.5 / 7.0);
  // An empty (0, 3) array.
  const auto empty = baypr::read_npy_matrix(fixture_dir / "f8_empty.npy");
  CHECK(empty.rows() == 0);
  CHECK(empty.cols() == 3);
  // Integer data as double.
  const auto labels = baypr::read_npy_matrix(fixture_dir / "i8_labels.npy");
  CHECK(labels(1, 1) == -4.0);
  const auto ints = baypr::read_npy_matrix<int>(fixture_dir / "i4_labels.npy");
  CHECK(ints(5, 0) == -1);
}

TEST_CASE("read_npy_matrix / read_npy_patches reject the wrong rank", "[io][npy][errors]") {
  const std::string m3 = error_of<baypr::invalid_argument>(
      [] { (void)baypr::read_npy_matrix(fixture_dir / "f8_c_3d.npy"); });
  CHECK(contains(m3, "baypr::read_npy_matrix: argument 'path'"));
  CHECK(contains(m3, "f8_c_3d.npy"));
  CHECK(contains(m3, "must hold a 1-D or 2-D array, got shape (2, 3, 4)"));
  const std::string m0 = error_of<baypr::invalid_argument>(
      [] { (void)baypr::read_npy_matrix(fixture_dir / "f8_0d.npy"); });
  CHECK(contains(m0, "got shape ()"));
  const std::string p2 = error_of<baypr::invalid_argument>(
      [] { (void)baypr::read_npy_patches(fixture_dir / "f8_c_2d.npy"); });
  CHECK(contains(p2, "baypr::read_npy_patches: argument 'path'"));
  CHECK(contains(p2, "must hold a 3-D array (n, p, d), got shape (3, 4)"));
  const std::string a1 = error_of<baypr::invalid_argument>(
      [] { (void)baypr::npy_patches(baypr::read_npy(fixture_dir / "f8_1d.npy")); });
  CHECK(contains(a1, "baypr::npy_patches: argument 'array'"));
  CHECK(contains(a1, "got shape (5,)"));
}

TEST_CASE("read_npy_patches: (n, p, d) in C and Fortran order", "[io][npy]") {
  for (const char* file : {"f8_c_3d.npy", "f4_f_3d.npy"}) {
    INFO(file);
    const auto& e = expected(file);
    const auto patches = baypr::read_npy_patches(fixture_dir / file);
    REQUIRE(patches.n == e.shape[0]);
    REQUIRE(patches.p == e.shape[1]);
    REQUIRE(patches.d == e.shape[2]);
    REQUIRE(patches.embeddings.rows() == patches.n * patches.p);
    REQUIRE(patches.embeddings.cols() == patches.d);
    for (Eigen::Index i = 0; i < patches.n; ++i) {
      const auto image = patches.image(i);
      REQUIRE(image.rows() == patches.p);
      for (Eigen::Index j = 0; j < patches.p; ++j) {
        for (Eigen::Index k = 0; k < patches.d; ++k) {
          const auto flat = static_cast<std::size_t>((i * patches.p + j) * patches.d + k);
          CHECK(same_double(image(j, k), parse_double(e.values[flat])));
        }
      }
    }
    const auto as_float = baypr::read_npy_patches<float>(fixture_dir / file);
    CHECK(as_float.embeddings.cast<double>() == patches.embeddings.cast<float>().cast<double>());
  }
}

TEST_CASE("read_npy_embeddings: (n, d) or (n, p, d) as rows, any other rank named", "[io][npy]") {
  const auto two = baypr::read_npy_embeddings(fixture_dir / "f8_c_2d.npy");
  CHECK((two.rank == 2 && two.patches == 1 && two.images == 3));
  const auto matrix = baypr::read_npy_matrix(fixture_dir / "f8_c_2d.npy");  // NaN and Inf too
  REQUIRE((two.rows.rows() == matrix.rows() && two.rows.cols() == matrix.cols()));
  for (Eigen::Index i = 0; i < matrix.size(); ++i) {
    CHECK(same_double(two.rows.data()[i], matrix.data()[i]));
  }
  for (const char* file : {"f8_c_3d.npy", "f4_f_3d.npy"}) {
    INFO(file);
    const auto three = baypr::read_npy_embeddings<float>(fixture_dir / file);
    const auto patches = baypr::read_npy_patches<float>(fixture_dir / file);
    CHECK((three.rank == 3 && three.images == patches.n && three.patches == patches.p));
    CHECK(three.rows == patches.embeddings);  // grids, all finite
  }
  const std::string m1 = error_of<baypr::invalid_argument>(
      [] { (void)baypr::read_npy_embeddings(fixture_dir / "f8_1d.npy"); });
  CHECK(contains(m1, "baypr::read_npy_embeddings: argument 'path'"));
  CHECK(contains(m1, "f8_1d.npy"));
  CHECK(contains(m1, "must hold a 2-D (n, d) or 3-D (n, p, d) array, got shape (5,)"));
  const std::string m0 = error_of<baypr::invalid_argument>(
      [] { (void)baypr::npy_embeddings(baypr::read_npy(fixture_dir / "f8_0d.npy")); });
  CHECK(contains(m0, "baypr::npy_embeddings: argument 'array' (array) must hold a 2-D"));
}

TEST_CASE("conversions are exact or throw numerical_error", "[io][npy][conversion]") {
  const auto mask = baypr::read_npy(fixture_dir / "u1_mask.npy");
  const auto mask_d = mask.as<double>();
  CHECK(mask_d.back() == 255.0);
  CHECK(mask.as<int>()[1] == 15);
  const std::string narrow =
      error_of<baypr::numerical_error>([&] { (void)mask.as<std::int8_t>(); });
  CHECK(contains(narrow, "baypr::NpyArray::as"));
  CHECK(contains(narrow, "element 9 (C order) = 135 (uint8) is out of the range of int8"));

  const auto big = baypr::read_npy(fixture_dir / "i8_big.npy");
  CHECK(big.as<std::int64_t>()[0] == (std::int64_t{1} << 53) + 1);
  const std::string b = error_of<baypr::numerical_error>([&] { (void)big.as<double>(); });
  CHECK(contains(b,
                 "element 0 (C order) = 9007199254740993 (int64) is not exactly "
                 "representable as float64"));
  // -2^63 is exactly representable as a double.
  baypr::NpyArray only_min = big;
  only_min.shape = {1};
  std::get<std::vector<std::int64_t>>(only_min.data) = {std::numeric_limits<std::int64_t>::min()};
  CHECK(only_min.as<double>()[0] == -9223372036854775808.0);

  const auto u8 = baypr::read_npy(fixture_dir / "u8.npy");
  CHECK(
      contains(error_of<baypr::numerical_error>([&] { (void)u8.as<std::int64_t>(); }),
               "element 2 (C order) = 18446744073709551615 (uint64) is out of the range of int64"));
  CHECK(contains(error_of<baypr::numerical_error>([&] { (void)u8.as<double>(); }),
                 "not exactly representable as float64"));

  const auto u4 = baypr::read_npy(fixture_dir / "u4.npy");
  CHECK(u4.as<double>()[1] == 4294967295.0);
  CHECK(contains(
      error_of<baypr::numerical_error>([&] { (void)u4.as<float>(); }),
      "element 1 (C order) = 4294967295 (uint32) is not exactly representable as float32"));

  const auto f8 = baypr::read_npy(fixture_dir / "f8_c_2d.npy");
  CHECK(contains(error_of<baypr::numerical_error>([&] { (void)f8.as<int>(); }),
                 "element 0 (C order) = 0.1 (float64) is not exactly representable as int32"));
  CHECK(contains(error_of<baypr::numerical_error>([&] { (void)f8.as<float>(); }),
                 "element 7 (C order) = 1e+300 (float64) is beyond the range of float32"));
  const std::string via_file = error_of<baypr::numerical_error>(
      [] { (void)baypr::read_npy_matrix<float>(fixture_dir / "f8_c_2d.npy"); });
  CHECK(contains(via_file, "baypr::read_npy_matrix: file '"));
  CHECK(contains(via_file, "f8_c_2d.npy': element 7"));

  // In the Fortran-order file, -1.75 is stored 7th (index 6); the error names its C-order index.
  const auto f4 = baypr::read_npy(fixture_dir / "f4_f_3d.npy");
  CHECK(contains(error_of<baypr::numerical_error>([&] { (void)f4.as<std::int16_t>(); }),
                 "element 1 (C order) = -1.75 (float32) is not exactly representable as int16"));

  const auto i1 = baypr::read_npy(fixture_dir / "i1.npy");
  CHECK(contains(error_of<baypr::numerical_error>([&] { (void)i1.as<std::uint8_t>(); }),
                 "element 0 (C order) = -128 (int8) is out of the range of uint8"));
  const auto b1 = baypr::read_npy(fixture_dir / "b1.npy");
  CHECK(b1.as<int>() == std::vector<int>{1, 0, 1, 1, 0});
  CHECK(contains(error_of<baypr::numerical_error>([] {
                   baypr::NpyArray a;
                   a.shape = {2};
                   a.type = baypr::NpyType::float64;
                   a.data = std::vector<double>{1.0, std::nan("")};
                   (void)a.as<std::int64_t>();
                 }),
                 "element 1 (C order) = nan (float64) is not exactly representable as int64"));
}

// --- writing ---------------------------------------------------------------------------------

TEST_CASE("encode_npy is byte-for-byte numpy.save", "[io][npy][writer][reference]") {
  // Every C-order, little-endian (or 1-byte), version 1.0 fixture, re-encoded from what we read.
  std::size_t compared = 0;
  for (const auto& e : expected_files()) {
    if (e.fortran || e.version != 1 || e.descr[0] == '>') continue;
    INFO("fixture " << e.file);
    const std::string bytes = file_bytes(fixture_dir / e.file);
    CHECK(baypr::encode_npy(baypr::read_npy(fixture_dir / e.file)) == bytes);
    ++compared;
  }
  CHECK(compared >= 15);

  // The same arrays built in C++ from the expected values, through each public overload.
  const auto& e2 = expected("f8_c_2d.npy");
  Eigen::MatrixXd m(3, 4);  // column-major storage: the writer must still write C order
  for (Eigen::Index i = 0; i < 3; ++i) {
    for (Eigen::Index j = 0; j < 4; ++j) {
      m(i, j) = parse_double(e2.values[static_cast<std::size_t>(i * 4 + j)]);
    }
  }
  CHECK(baypr::encode_npy(m) == file_bytes(fixture_dir / "f8_c_2d.npy"));

  const auto& e4 = expected("f4_c_2d.npy");
  Eigen::MatrixXf mf(2, 5);
  for (Eigen::Index i = 0; i < 2; ++i) {
    for (Eigen::Index j = 0; j < 5; ++j) {
      mf(i, j) = static_cast<float>(parse_double(e4.values[static_cast<std::size_t>(i * 5 + j)]));
    }
  }
  CHECK(baypr::encode_npy(mf) == file_bytes(fixture_dir / "f4_c_2d.npy"));
  // A transposed expression of a row-major map writes the same bytes.
  Eigen::MatrixXf mft = mf.transpose();
  CHECK(baypr::encode_npy(mft.transpose()) == file_bytes(fixture_dir / "f4_c_2d.npy"));

  std::vector<double> v1;
  for (const auto& s : expected("f8_1d.npy").values) v1.push_back(parse_double(s));
  CHECK(baypr::encode_npy(v1, {5}) == file_bytes(fixture_dir / "f8_1d.npy"));
  CHECK(baypr::encode_npy(std::span<const double>(v1), {5}) ==
        file_bytes(fixture_dir / "f8_1d.npy"));

  const std::vector<double> scalar{3.141592653589793};
  CHECK(baypr::encode_npy(scalar, {}) == file_bytes(fixture_dir / "f8_0d.npy"));
  CHECK(baypr::encode_npy(Eigen::MatrixXd(0, 3)) == file_bytes(fixture_dir / "f8_empty.npy"));

  std::vector<double> v3;
  for (const auto& s : expected("f8_c_3d.npy").values) v3.push_back(parse_double(s));
  CHECK(baypr::encode_npy(v3, {2, 3, 4}) == file_bytes(fixture_dir / "f8_c_3d.npy"));

  const std::vector<std::int32_t> labels{0, 1, 0, 2, 1, -1};
  CHECK(baypr::encode_npy(labels, {6}) == file_bytes(fixture_dir / "i4_labels.npy"));
  std::vector<std::uint8_t> mask(18);
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = static_cast<std::uint8_t>(15 * i);
  CHECK(baypr::encode_npy(mask, {2, 3, 3}) == file_bytes(fixture_dir / "u1_mask.npy"));
}

TEST_CASE("the header layout: 64-byte alignment, newline, version 1.0", "[io][npy][writer]") {
  std::vector<std::int64_t> rank32(32, 0);  // 32 dimensions (the most), the last one 0
  for (std::size_t i = 0; i + 1 < rank32.size(); ++i)
    rank32[i] = static_cast<std::int64_t>(i % 2) + 1;
  for (const std::vector<std::int64_t>& shape : std::vector<std::vector<std::int64_t>>{
           {}, {0}, {1}, {7, 3}, {1000000000000, 0, 2}, {0, 1000000000000}, rank32}) {
    std::int64_t n = 1;
    for (const auto d : shape) n *= d;
    const std::vector<double> data(static_cast<std::size_t>(n), 1.0);
    const std::string bytes = baypr::encode_npy(data, shape);
    INFO("shape rank " << shape.size());
    const std::size_t header_end = bytes.size() - data.size() * 8;
    CHECK(header_end % 64 == 0);
    CHECK(bytes[header_end - 1] == '\n');
    CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
    const auto a = baypr::parse_npy(bytes);
    CHECK(a.shape == shape);
  }
}

TEST_CASE("write then read round trips", "[io][npy][writer]") {
  const ScratchDir dir("baypr-io-npy");
  std::mt19937_64 rng(7);
  std::normal_distribution<double> normal;
  for (const auto& [rows, cols] : std::vector<std::pair<Eigen::Index, Eigen::Index>>{
           {1, 1}, {5, 3}, {3, 5}, {17, 64}, {0, 4}, {4, 0}}) {
    INFO(rows << " x " << cols);
    const Eigen::MatrixXd m = Eigen::MatrixXd::NullaryExpr(rows, cols, [&] { return normal(rng); });
    baypr::write_npy(dir.path / "m.npy", m);
    CHECK(baypr::read_npy_matrix(dir.path / "m.npy") == m);
    // Row-major storage, float, and an expression.
    const baypr::NpyMatrix<float> mf = m.cast<float>();
    baypr::write_npy(dir.path / "mf.npy", mf);
    CHECK(baypr::read_npy_matrix<float>(dir.path / "mf.npy") == mf);
    CHECK(baypr::read_npy(dir.path / "mf.npy").descr == "<f4");
    baypr::write_npy(dir.path / "e.npy", 2.0 * m.array() + 1.0);
    CHECK(baypr::read_npy_matrix(dir.path / "e.npy") == (2.0 * m.array() + 1.0).matrix());
  }
  // A strided map of user memory (every other row of a row-major buffer).
  std::vector<double> buffer(6 * 4);
  for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<double>(i) * 0.5;
  using Stride = Eigen::Stride<Eigen::Dynamic, 1>;
  const Eigen::Map<const baypr::NpyMatrix<double>, 0, Stride> every_other(buffer.data(), 3, 4,
                                                                          Stride(8, 1));
  baypr::write_npy(dir.path / "map.npy", every_other);
  CHECK(baypr::read_npy_matrix(dir.path / "map.npy") == every_other);

  // Non-finite values and signed zero are written as they are.
  Eigen::MatrixXd special(1, 4);
  special << std::numeric_limits<double>::quiet_NaN(), -0.0,
      std::numeric_limits<double>::infinity(), std::numeric_limits<double>::denorm_min();
  baypr::write_npy(dir.path / "special.npy", special);
  const auto back = baypr::read_npy_matrix(dir.path / "special.npy");
  for (Eigen::Index j = 0; j < 4; ++j) CHECK(same_double(back(0, j), special(0, j)));

  // Patches: (n, p, d) through the span overload.
  std::vector<float> patches(2 * 3 * 5);
  for (std::size_t i = 0; i < patches.size(); ++i) patches[i] = static_cast<float>(i) / 4.0f;
  baypr::write_npy(dir.path / "patches.npy", std::span<float>(patches), {2, 3, 5});
  const auto p = baypr::read_npy_patches<float>(dir.path / "patches.npy");
  CHECK(p.n == 2);
  CHECK(p.p == 3);
  CHECK(p.d == 5);
  CHECK(p.embeddings(4, 2) == patches[4 * 5 + 2]);

  // Every integer type, and an NpyArray (bool) written back.
  baypr::write_npy(dir.path / "u64.npy", std::vector<std::uint64_t>{0, 1, ~std::uint64_t{0}}, {3});
  CHECK(baypr::read_npy(dir.path / "u64.npy").as<std::uint64_t>() ==
        std::vector<std::uint64_t>{0, 1, ~std::uint64_t{0}});
  baypr::write_npy(dir.path / "i16.npy", std::vector<std::int16_t>{-5, 7}, {2, 1});
  CHECK(baypr::read_npy(dir.path / "i16.npy").descr == "<i2");
  const auto b1 = baypr::read_npy(fixture_dir / "b1.npy");
  baypr::write_npy(dir.path / "b1.npy", b1);
  CHECK(file_bytes(dir.path / "b1.npy") == file_bytes(fixture_dir / "b1.npy"));
  // A Fortran-order, big-endian file comes back as C order, little-endian.
  const auto fbe = baypr::read_npy(fixture_dir / "f4_be_f.npy");
  baypr::write_npy(dir.path / "fbe.npy", fbe);
  const auto fbe2 = baypr::read_npy(dir.path / "fbe.npy");
  CHECK(fbe2.descr == "<f4");
  CHECK(!fbe2.fortran_order);
  CHECK(fbe2.shape == fbe.shape);
  CHECK(fbe2.as<double>() == fbe.as<double>());
  // Only the written files remain: no temporary files.
  CHECK(files_in(dir.path) == 10);
}

TEST_CASE("write_npy: atomic replacement and clean failures", "[io][npy][writer][errors]") {
  const ScratchDir dir("baypr-io-npy");
  const fs::path target = dir.path / "scores.npy";
  baypr::write_npy(target, Eigen::MatrixXd::Constant(2, 2, 1.0));
  baypr::write_npy(target, Eigen::MatrixXd::Constant(3, 1, 2.0));  // replaces the old file
  CHECK(baypr::read_npy_matrix(target) == Eigen::MatrixXd::Constant(3, 1, 2.0));

  // A missing directory: nothing is created.
  const std::string missing = error_of<baypr::io_error>(
      [&] { baypr::write_npy(dir.path / "no" / "such" / "x.npy", Eigen::MatrixXd::Ones(1, 1)); });
  CHECK(contains(missing, "baypr::write_npy: file '"));
  CHECK(contains(missing, "cannot create the temporary file"));
  CHECK(!fs::exists(dir.path / "no"));

  // The target is a directory: the rename fails, the temporary file is removed.
  fs::create_directory(dir.path / "adir");
  const std::string over_dir = error_of<baypr::io_error>(
      [&] { baypr::write_npy(dir.path / "adir", Eigen::MatrixXd::Ones(1, 1)); });
  CHECK(contains(over_dir, "cannot rename the temporary file over it"));
  CHECK(files_in(dir.path) == 2);  // scores.npy and adir
  CHECK(fs::is_empty(dir.path / "adir"));

  // Bad arguments are caught before anything is written.
  const std::vector<double> five(5, 1.0);
  const std::string size = error_of<baypr::invalid_argument>([&] {
    baypr::write_npy(dir.path / "bad.npy", five, {2, 3});
  });
  CHECK(contains(size, "baypr::write_npy: argument 'data' has 5 elements, shape (2, 3) needs 6"));
  CHECK(contains(error_of<baypr::invalid_argument>(
                     [&] { baypr::write_npy(dir.path / "bad.npy", five, {-5}); }),
                 "argument 'shape' must have non-negative dimensions, got (-5,)"));
  CHECK(contains(error_of<baypr::invalid_argument>(
                     [&] { (void)baypr::encode_npy(five, std::vector<std::int64_t>(33, 1)); }),
                 "baypr::encode_npy: argument 'shape' has 33 dimensions, more than 32"));
  CHECK(contains(error_of<baypr::invalid_argument>([&] {
                   (void)baypr::encode_npy(five, {std::int64_t{1} << 40, std::int64_t{1} << 40});
                 }),
                 "argument 'shape' overflows"));
  baypr::NpyArray inconsistent;
  inconsistent.shape = {2, 2};
  inconsistent.data = std::vector<double>{1.0, 2.0, 3.0};
  CHECK(contains(error_of<baypr::invalid_argument>(
                     [&] { baypr::write_npy(dir.path / "bad.npy", inconsistent); }),
                 "argument 'array' has shape (2, 2) (4 elements) but 3 data elements"));
  inconsistent.data = std::vector<float>{1, 2, 3, 4};
  CHECK(contains(error_of<baypr::invalid_argument>([&] { (void)baypr::encode_npy(inconsistent); }),
                 "has type float64 but its data holds another element type"));
  CHECK(!fs::exists(dir.path / "bad.npy"));
  CHECK(files_in(dir.path) == 2);
}

// --- malformed input -------------------------------------------------------------------------

TEST_CASE("read_npy: missing files and directories", "[io][npy][errors]") {
  const ScratchDir dir("baypr-io-npy");
  CHECK(contains(error_of<baypr::io_error>([&] { (void)baypr::read_npy(dir.path / "none.npy"); }),
                 "none.npy': no such file"));
  CHECK(contains(error_of<baypr::io_error>([&] { (void)baypr::read_npy(dir.path); }),
                 "': is a directory"));
  CHECK(contains(error_of<baypr::io_error>(
                     [&] { (void)baypr::read_npy_matrix<float>(dir.path / "none.npy"); }),
                 "baypr::read_npy_matrix: file '"));
}

TEST_CASE("lenient where NumPy is: spelling variants of a valid header", "[io][npy]") {
  const std::string data = doubles({1.0, 2.0});
  for (const std::string& header :
       {std::string("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"),
        std::string("{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,)}"),
        std::string("{'shape':(2,),'fortran_order':False,'descr':'<f8'}\n"),
        std::string("  {\n 'descr' : '<f8' ,\t'fortran_order' : True , 'shape' : ( 2 , ) , }  \n"),
        std::string("{'descr': '=f8', 'fortran_order': False, 'shape': (2,), }"),
        std::string("{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }"),
        std::string("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }"),
        std::string("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1,), }"),
        std::string("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}")}) {
    INFO(header);
    const auto a = baypr::parse_npy(craft(header, data));
    CHECK(a.as<double>() == std::vector<double>{1.0, 2.0});
    CHECK(a.size() == 2);
  }
  // Versions 2.0 and 3.0 with the same header; the 'L' suffix only up to 2.0.
  const std::string h = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n";
  CHECK(baypr::parse_npy(craft(h, data, 2)).version == 2);
  CHECK(baypr::parse_npy(craft(h, data, 3)).version == 3);
  CHECK(contains(error_of<baypr::io_error>([&] {
                   (void)baypr::parse_npy(craft(
                       "{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }", data, 3));
                 }),
                 "'2L' is not a decimal integer"));
  // bool bytes other than 0 read as 1.
  const auto b = baypr::parse_npy(craft("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                                        std::string("\x00\x02\xff", 3)));
  CHECK(std::get<std::vector<std::uint8_t>>(b.data) == std::vector<std::uint8_t>{0, 1, 1});
  // A Fortran-order 1-D array is the same as C order; a 0-size Fortran array is empty.
  CHECK(baypr::parse_npy(craft("{'descr': '<f8', 'fortran_order': True, 'shape': (0, 3), }"))
            .size() == 0);
}

TEST_CASE("malformed input: each failure mode names itself", "[io][npy][errors]") {
  const std::string d6 = doubles({1, 2, 3, 4, 5, 6});
  const std::string ok = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
  auto hdr = [&](const std::string& descr, const std::string& fortran, const std::string& shape) {
    return craft(dict(descr, fortran, shape), d6);
  };
  std::string long_v1 = craft(ok, d6);
  long_v1[8] = '\xff';
  long_v1[9] = '\xff';
  std::string long_v2 = craft(ok, d6, 2);
  for (int i = 8; i < 12; ++i) long_v2[static_cast<std::size_t>(i)] = '\xff';
  std::string rank33 = "(";
  for (int i = 0; i < 33; ++i) rank33 += "1, ";
  rank33 += ")";

  const std::vector<std::pair<std::string, std::string>> cases{
      // preamble
      {"", "truncated: 0 bytes, shorter than the .npy magic string and version"},
      {std::string("\x93NUMP", 5), "truncated: 5 bytes"},
      {"GIF89a\x01\x00", "not a .npy file: bad magic string, expected \\x93NUMPY, got 'GIF89a'"},
      {std::string("\x93NUMPX\x01\x00\x00\x00", 10), "bad magic string"},
      {std::string("\x93NUMPY\x04\x00\x00\x00", 10), "unsupported .npy format version 4.0"},
      {std::string("\x93NUMPY\x01\x01\x00\x00", 10), "unsupported .npy format version 1.1"},
      {std::string("\x93NUMPY\x00\x00\x00\x00", 10), "unsupported .npy format version 0.0"},
      {std::string("\x93NUMPY\x01\x00\x05", 9),
       "truncated: 9 bytes, the version 1.0 preamble needs 10"},
      {std::string("\x93NUMPY\x02\x00\x05\x00\x00", 11), "the version 2.0 preamble needs 12"},
      {long_v1, "header length 65535 extends beyond the end of the file (117 bytes"},
      {long_v2, "header length 4294967295 extends beyond the end of the file"},
      // not a dict with exactly the keys descr, fortran_order, shape
      {craft("[1, 2]", d6), "the header is not a Python dict literal: expected '{'"},
      {craft("", d6), "the header is not a Python dict literal"},
      {craft("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)", d6),
       "expected ',' or '}' after the value of 'shape'"},
      {craft("{'descr': '<f8', 'fortran_order': False}", d6), "missing key 'shape'"},
      {craft("{'shape': (2, 3), 'fortran_order': False}", d6), "missing key 'descr'"},
      {craft("{}", d6), "missing key 'descr'"},
      {craft("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'foo': 1}", d6),
       "unexpected key 'foo' (the header must have exactly the keys"},
      {craft("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}", d6),
       "duplicate key 'descr'"},
      {craft("{descr: '<f8', 'fortran_order': False, 'shape': (2, 3)}", d6),
       "expected a quoted string as a key"},
      {craft("{'descr' '<f8', 'fortran_order': False, 'shape': (2, 3)}", d6),
       "expected ':' after key 'descr'"},
      {craft("{'descr': '<f8, 'fortran_order': False, 'shape': (2, 3)}", d6),
       "expected ',' or '}' after the value of 'descr'"},
      {craft("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)} x", d6),
       "unexpected text after the closing '}'"},
      {craft("{'descr': '<f8', # comment\n 'fortran_order': False, 'shape': (2, 3)}", d6),
       "expected a quoted string as a key"},
      {craft("{'descr': '<f\\x38', 'fortran_order': False, 'shape': (2, 3)}", d6),
       "escape sequences in strings are not supported"},
      {craft("{'descr': '<f8\n', 'fortran_order': False, 'shape': (2, 3)}", d6),
       "unterminated string"},
      {craft("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}\xe9", d6),
       "byte 57 of the header is \\xe9, not printable ASCII"},
      {craft(std::string("{'descr': '<f8',\0 'fortran_order': False, 'shape': (2, 3)}", 58), d6),
       "byte 16 of the header is \\x00"},
      // fortran_order
      {hdr("<f8", "0", "(2, 3)"), "the value of 'fortran_order' must be True or False"},
      {hdr("<f8", "'False'", "(2, 3)"), "must be True or False"},
      {hdr("<f8", "true", "(2, 3)"), "must be True or False"},
      {hdr("<f8", "Falsey", "(2, 3)"), "must be True or False"},
      // shape
      {craft("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3}", d6),
       "expected ',' or ')' after a dimension"},
      {hdr("<f8", "False", "(2,, 3)"), "expected a non-negative decimal integer"},
      {hdr("<f8", "False", "(,)"), "expected a non-negative decimal integer"},
      {hdr("<f8", "False", "[2, 3]"), "'shape' must be a tuple, got a list"},
      {hdr("<f8", "False", "6"), "'shape' must be a tuple of integers such as (3, 4)"},
      {hdr("<f8", "False", "(6)"), "'shape' (n) is not a tuple; a 1-D shape is written (n,)"},
      {hdr("<f8", "False", "(2.0, 3)"), "'2.0' is not a decimal integer"},
      {hdr("<f8", "False", "(2 3)"), "expected ',' or ')' after a dimension"},
      {hdr("<f8", "False", "(0x6,)"), "'0x6' is not a decimal integer (leading zero"},
      {hdr("<f8", "False", "(06,)"), "'06' is not a decimal integer (leading zero"},
      {hdr("<f8", "False", "(2, 3e0)"), "'3e0' is not a decimal integer"},
      {hdr("<f8", "False", "(+6,)"), "expected a non-negative decimal integer"},
      {hdr("<f8", "False", "(None,)"), "expected a non-negative decimal integer"},
      {hdr("<f8", "False", "(-2, -3)"), "negative dimension -2 in 'shape'"},
      {hdr("<f8", "False", "(2, -99999999999999999999999)"),
       "negative dimension -99999999999999999999999"},
      {hdr("<f8", "False", "(99999999999999999999,)"),
       "dimension 99999999999999999999 in 'shape' does not fit in a 64-bit integer"},
      {hdr("<f8", "False", "(9223372036854775808,)"), "does not fit in a 64-bit integer"},
      {hdr("<f8", "False", "(4294967296, 4294967296)"),
       "shape (4294967296, 4294967296) of float64 overflows"},
      {hdr("<f8", "False", "(1152921504606846976,)"),
       "(1152921504606846976,) of float64 overflows"},
      {hdr("|u1", "False", "(0, 4294967296, 4294967296)"), "overflows"},
      {hdr("<f8", "False", "(9223372036854775807,)"), "overflows"},
      {hdr("<f8", "False", rank33), "'shape' has more than 32 dimensions"},
      // dtype
      {hdr("<f2", "False", "(2, 3)"), "unsupported dtype '<f2': float16 is not supported"},
      {hdr("<f16", "False", "(2, 3)"), "long double is not supported"},
      {hdr("<c16", "False", "(2, 3)"), "unsupported dtype '<c16': complex numbers"},
      {hdr("|O", "False", "(2, 3)"), "unsupported dtype '|O'"},
      {hdr("<U3", "False", "(2, 3)"), "unsupported dtype '<U3'"},
      {hdr("|S8", "False", "(2, 3)"), "unsupported dtype '|S8'"},
      {hdr("<M8[ns]", "False", "(2, 3)"), "unsupported dtype '<M8[ns]'"},
      {hdr("float64", "False", "(2, 3)"), "unsupported dtype 'float64': no byte-order character"},
      {hdr("f8", "False", "(2, 3)"), "unsupported dtype 'f8'"},
      {hdr("<d", "False", "(2, 3)"), "unsupported dtype '<d'"},
      {hdr("|f8", "False", "(2, 3)"), "byte order '|' is only valid for 1-byte types"},
      {hdr("<f08", "False", "(2, 3)"), "unsupported dtype '<f08'"},
      {hdr("<f8 ", "False", "(2, 3)"), "unsupported dtype '<f8 '"},
      {hdr("<f99999999999999999999999", "False", "(2, 3)"), "unsupported dtype"},
      {hdr("", "False", "(2, 3)"), "unsupported dtype ''"},
      {craft("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2, 3)}", d6),
       "structured dtypes (descr as a list) are not supported"},
      {craft("{'descr': 8, 'fortran_order': False, 'shape': (2, 3)}", d6),
       "expected a quoted string as the value of 'descr'"},
      // data
      {craft(ok, d6.substr(0, 47)),
       "truncated data: shape (2, 3) of float64 needs 48 bytes after the header, the file has 47"},
      {craft(ok, ""), "needs 48 bytes after the header, the file has 0"},
      {craft(ok, d6 + "x"),
       "trailing garbage: 1 byte(s) after the data of shape (2, 3) of float64"},
      {craft(ok, d6 + d6), "trailing garbage: 48 byte(s)"},
  };
  for (const auto& c : cases) {
    const std::string& bytes = c.first;  // not a structured binding: clang 14 cannot capture one
    const std::string& what = c.second;
    INFO("input '" << baypr::detail::npy::printable(bytes, 200) << "'");
    const std::string msg = error_of<baypr::io_error>([&] { (void)baypr::parse_npy(bytes); });
    INFO("message: " << msg);
    CHECK(contains(msg, "baypr::parse_npy: 'buffer': "));
    CHECK(contains(msg, what));
  }
  // The name given to parse_npy and the file name given to read_npy appear in messages.
  CHECK(contains(error_of<baypr::io_error>([] { (void)baypr::parse_npy("nope", "embeddings"); }),
                 "baypr::parse_npy: 'embeddings': not a .npy file"));
  const ScratchDir dir("baypr-io-npy");
  put_file(dir.path / "short.npy", craft(ok, d6.substr(0, 40)));
  const std::string file_msg =
      error_of<baypr::io_error>([&] { (void)baypr::read_npy(dir.path / "short.npy"); });
  CHECK(contains(file_msg, "baypr::read_npy: file '"));
  CHECK(contains(file_msg, "short.npy': truncated data"));
  put_file(dir.path / "long.npy", craft(ok, d6 + "junk"));
  CHECK(contains(error_of<baypr::io_error>([&] { (void)baypr::read_npy(dir.path / "long.npy"); }),
                 "trailing garbage: 4 byte(s)"));
  put_file(dir.path / "header.npy", long_v1);
  CHECK(contains(
      error_of<baypr::io_error>([&] { (void)baypr::read_npy_patches(dir.path / "header.npy"); }),
      "baypr::read_npy_patches: file '"));
}

TEST_CASE("every truncation of every fixture is rejected cleanly", "[io][npy][errors][fuzz]") {
  std::size_t prefixes = 0;
  for (const auto& e : expected_files()) {
    const std::string bytes = file_bytes(fixture_dir / e.file);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      // A copy of exactly n bytes, so ASan catches any read past the end.
      const std::vector<char> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      const std::string msg = error_of<baypr::io_error>(
          [&] { (void)baypr::parse_npy(std::string_view(prefix.data(), prefix.size())); });
      INFO(e.file << " cut at " << n << ": " << msg);
      CHECK((contains(msg, "truncated") || contains(msg, "extends beyond the end")));
      ++prefixes;
    }
  }
  CHECK(prefixes > 3000);

  // The file reader takes the same path through the preamble, header and data.
  const ScratchDir dir("baypr-io-npy");
  const std::string bytes = file_bytes(fixture_dir / "f4_f_3d.npy");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    put_file(dir.path / "cut.npy", bytes.substr(0, n));
    const std::string msg =
        error_of<baypr::io_error>([&] { (void)baypr::read_npy(dir.path / "cut.npy"); });
    INFO("cut at " << n << ": " << msg);
    CHECK((contains(msg, "truncated") || contains(msg, "extends beyond the end")));
  }
}

TEST_CASE("byte mutations never crash and round trip when accepted", "[io][npy][errors][fuzz]") {
  std::size_t accepted = 0, rejected = 0;
  const std::vector<unsigned char> replacements{0x00, 0xff, '(', ')', ',', '9', '0', '-',
                                                ' ',  '\'', '}', 'L', '>', '|', 'T'};
  for (const auto& e : expected_files()) {
    const std::string bytes = file_bytes(fixture_dir / e.file);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (const unsigned char r : replacements) {
        std::string m = bytes;
        if (static_cast<unsigned char>(m[i]) == r) continue;
        m[i] = static_cast<char>(r);
        try {
          const auto a = baypr::parse_npy(m);
          ++accepted;
          // Whatever was accepted re-encodes to a file that parses to the same array.
          const auto b = baypr::parse_npy(baypr::encode_npy(a));
          CHECK(b.shape == a.shape);
          CHECK(b.type == a.type);
          CHECK(baypr::encode_npy(b) == baypr::encode_npy(a));
        } catch (const baypr::io_error&) {
          ++rejected;
        }
      }
    }
  }
  CHECK(accepted > 1000);  // mutations of the data bytes
  CHECK(rejected > 1000);
}

// --- optional xtensor layer (compiled where BAYPR_WITH_XTENSOR is defined) -------------------

#if defined(BAYPR_WITH_XTENSOR)
#include <xtensor/xbuilder.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "baypr/io/xtensor.hpp"
#include "baypr/score/bayesian.hpp"

TEST_CASE("xtensor: NpyArray <-> xt::xarray", "[io][npy][xtensor]") {
  // Fortran-order 3-D file: the xarray is indexed like NumPy's array.
  const auto x = baypr::read_npy_xarray<float>(fixture_dir / "f4_f_3d.npy");
  REQUIRE(x.dimension() == 3);
  CHECK(x.shape()[0] == 2);
  CHECK(x.shape()[2] == 4);
  const auto& e = expected("f4_f_3d.npy");
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      for (std::size_t k = 0; k < 4; ++k) {
        CHECK(static_cast<double>(x(i, j, k)) == parse_double(e.values[(i * 3 + j) * 4 + k]));
      }
    }
  }
  // Back to .npy: a view (an expression) of the same data writes what numpy.save writes.
  const auto c3 = baypr::to_xarray<double>(baypr::read_npy(fixture_dir / "f8_c_3d.npy"));
  CHECK(baypr::encode_npy(baypr::to_npy_array(c3)) == file_bytes(fixture_dir / "f8_c_3d.npy"));
  const auto mask = baypr::to_xarray<std::uint8_t>(baypr::read_npy(fixture_dir / "u1_mask.npy"));
  CHECK(baypr::encode_npy(baypr::to_npy_array(mask)) == file_bytes(fixture_dir / "u1_mask.npy"));
  const ScratchDir dir("baypr-io-npy");
  baypr::write_npy(dir.path / "slice.npy", xt::view(c3, 1, xt::all(), xt::all()));
  const auto slice = baypr::read_npy_matrix(dir.path / "slice.npy");
  CHECK(slice.rows() == 3);
  CHECK(slice(2, 3) == c3(1, 2, 3));
  // 0-D and conversion errors.
  CHECK(baypr::to_xarray(baypr::read_npy(fixture_dir / "f8_0d.npy"))() == 3.141592653589793);
  CHECK_THROWS_AS(baypr::to_xarray<double>(baypr::read_npy(fixture_dir / "i8_big.npy")),
                  baypr::numerical_error);
}

TEST_CASE("xtensor: a scorer fed from xt::xtensor rows, no copy", "[io][npy][xtensor]") {
  // Support and queries held in xtensor, as a user's pipeline may hold them.
  xt::xtensor<double, 2> support = xt::xtensor<double, 2>::from_shape({6, 3});
  xt::xtensor<double, 2> queries = xt::xtensor<double, 2>::from_shape({4, 3});
  for (std::size_t i = 0; i < 6; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      support(i, j) = std::sin(1.0 + 3.0 * static_cast<double>(i) + static_cast<double>(j));
    }
  }
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      queries(i, j) = 2.0 * std::cos(0.5 * static_cast<double>(i) + static_cast<double>(j));
    }
  }
  const auto rows = baypr::as_eigen_rows(support);
  CHECK(rows.data() == support.data());  // a view, not a copy
  CHECK(rows(4, 2) == support(4, 2));
  baypr::BayesianScorer from_xtensor;
  from_xtensor.fit(rows);
  // The same rows copied into Eigen: the same scores, bit for bit.
  Eigen::MatrixXd copy(6, 3);
  for (Eigen::Index i = 0; i < 6; ++i) {
    for (Eigen::Index j = 0; j < 3; ++j) {
      copy(i, j) = support(static_cast<std::size_t>(i), static_cast<std::size_t>(j));
    }
  }
  baypr::BayesianScorer from_eigen;
  from_eigen.fit(copy);
  CHECK(from_xtensor.score(baypr::as_eigen_rows(queries)) ==
        from_eigen.score(baypr::as_eigen_rows(queries).eval()));
  // Another rank or a column-major container is named.
  const xt::xarray<double> cube = xt::zeros<double>({2, 2, 2});
  CHECK(contains(error_of<baypr::invalid_argument>([&] { (void)baypr::as_eigen_rows(cube); }),
                 "baypr::as_eigen_rows: argument 'x' must be 2-D (samples x features), got 3"));
  const xt::xarray<double, xt::layout_type::dynamic> column_major(
      std::vector<std::size_t>{2, 2}, 0.0, xt::layout_type::column_major);
  CHECK(
      contains(error_of<baypr::invalid_argument>([&] { (void)baypr::as_eigen_rows(column_major); }),
               "must be row-major (C order)"));
}
#endif
