// examples/report.hpp: PNG round trips decoded by stb_image, exact pixel values of every image
// operation (hand-derived), the colour map's monotone luminance, error messages, and the gnuplot
// charts (rendered when gnuplot is installed; a fake gnuplot on PATH checks failures and quoting).
#include <stb_image.h>  // the decoder; its implementation is in Debian's libstb.so

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "baypr/core/errors.hpp"
#include "report.hpp"
#include "support/catch.hpp"
#include "support/messages.hpp"

namespace fs = std::filesystem;
using baypr::report::Rgb;
using baypr::report::RgbImage;
using baypr::test::contains;
using baypr::test::message_of;

namespace {

// A fresh directory whose name holds a space, a quote, % and parentheses; removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    std::random_device rd;
    path =
        fs::temp_directory_path() / ("baypr report " + tag + " it's (50%) " + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// Sets PATH for the scope, then restores it.
struct ScopedPath {
  std::optional<std::string> old;
  explicit ScopedPath(const std::string& value) {
    if (const char* p = std::getenv("PATH")) old = p;
    ::setenv("PATH", value.c_str(), 1);
  }
  ~ScopedPath() {
    if (old) {
      ::setenv("PATH", old->c_str(), 1);
    } else {
      ::unsetenv("PATH");
    }
  }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;
};

struct Decoded {
  int width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t> rgb;
};

Decoded decode_png(const fs::path& p) {
  Decoded d;
  unsigned char* data = stbi_load(p.c_str(), &d.width, &d.height, &d.channels, 3);
  if (data == nullptr) return d;
  d.rgb.assign(data,
               data + 3 * static_cast<std::size_t>(d.width) * static_cast<std::size_t>(d.height));
  stbi_image_free(data);
  return d;
}

Rgb pixel(const RgbImage& im, int x, int y) {
  const std::size_t o = 3 * (static_cast<std::size_t>(y) * static_cast<std::size_t>(im.width) +
                             static_cast<std::size_t>(x));
  return {im.rgb[o], im.rgb[o + 1], im.rgb[o + 2]};
}

RgbImage solid(int w, int h, Rgb c) {
  RgbImage im;
  im.width = w;
  im.height = h;
  for (int i = 0; i < w * h; ++i) im.rgb.insert(im.rgb.end(), c.begin(), c.end());
  return im;
}

// Rec. 709 luma of 8-bit values.
double luma(const Rgb& c) {
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Numeric rows of a gnuplot data file, grouped in blocks (split at blank lines).
std::vector<std::vector<std::vector<double>>> read_blocks(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::vector<std::vector<double>>> blocks(1);
  std::string line;
  bool blank_before = false;
  while (std::getline(in, line)) {
    if (line.empty()) {
      blank_before = true;
      continue;
    }
    if (line[0] == '#') continue;
    if (blank_before && !blocks.back().empty()) blocks.emplace_back();
    blank_before = false;
    std::istringstream ss(line);
    std::vector<double> row;
    double v = 0.0;
    while (ss >> v) row.push_back(v);
    blocks.back().push_back(row);
  }
  return blocks;
}

void write_script(const fs::path& p, const std::string& body) {
  {
    std::ofstream out(p);
    out << "#!/bin/sh\n" << body;
  }
  fs::permissions(p, fs::perms::owner_all, fs::perm_options::replace);
}

const std::string awkward = "it's \"A\" (AUROC 0.93) 50% {x}_1^2 & @~ \\n";

}  // namespace

TEST_CASE("write_png round trips every pixel through stb_image", "[report][png]") {
  TempDir dir("png");
  std::mt19937_64 rng(7);
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {17, 5}, {3, 64}, {128, 96}}) {
    RgbImage im;
    im.width = w;
    im.height = h;
    for (int i = 0; i < 3 * w * h; ++i) im.rgb.push_back(static_cast<std::uint8_t>(rng() & 255));
    const fs::path p = dir.path / ("im " + std::to_string(w) + "x" + std::to_string(h) + ".png");
    baypr::report::write_png(p, im);
    const Decoded d = decode_png(p);
    REQUIRE(d.width == w);
    REQUIRE(d.height == h);
    CHECK(d.channels == 3);
    CHECK(d.rgb == im.rgb);
  }
  // Only the PNG is left: the temporary file was renamed over it.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 4);
}

TEST_CASE("write_png: failures name the function and the path", "[report][png][errors]") {
  const RgbImage im = solid(2, 2, {1, 2, 3});
  const fs::path missing = fs::temp_directory_path() / "baypr-no-such-dir-4711" / "out.png";
  const std::string msg = message_of([&] { baypr::report::write_png(missing, im); });
  CHECK(contains(msg, "baypr::report::write_png"));
  CHECK(contains(msg, missing.string()));
  CHECK_THROWS_AS(baypr::report::write_png(missing, im), baypr::io_error);

  TempDir dir("bad");
  RgbImage bad = im;
  bad.rgb.pop_back();
  CHECK_THROWS_AS(baypr::report::write_png(dir.path / "bad.png", bad), baypr::invalid_argument);
  CHECK(contains(message_of([&] { baypr::report::write_png(dir.path / "bad.png", bad); }),
                 "has rgb.size() 11, expected 3 * 2 * 2 = 12"));
  CHECK_THROWS_AS(baypr::report::write_png(dir.path / "empty.png", RgbImage{}),
                  baypr::invalid_argument);
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("grey_image rounds and clamps", "[report][image]") {
  Eigen::ArrayXXd g(2, 3);
  g << 0.0, 1.0, 0.5,  //
      -0.5, 2.0, 0.2;
  const RgbImage im = baypr::report::grey_image(g);
  REQUIRE(im.width == 3);
  REQUIRE(im.height == 2);
  const std::vector<std::uint8_t> expected{0, 0, 0, 255, 255, 255, 128, 128, 128,
                                           0, 0, 0, 255, 255, 255, 51,  51,  51};
  CHECK(im.rgb == expected);
  g(1, 1) = std::nan("");
  CHECK(contains(message_of([&] { baypr::report::grey_image(g); }), "at row 1, column 1"));
}

TEST_CASE("colour map: black to white, channels and luminance monotone", "[report][colour]") {
  using baypr::report::colour_map;
  CHECK(colour_map(0.0) == Rgb{0, 0, 0});
  CHECK(colour_map(1.0) == Rgb{255, 255, 255});
  CHECK(colour_map(-3.0) == Rgb{0, 0, 0});
  CHECK(colour_map(7.0) == Rgb{255, 255, 255});
  // The knots of the table in report.cpp, and a point halfway between two of them.
  CHECK(colour_map(0.2) == Rgb{50, 0, 80});
  CHECK(colour_map(0.45) == Rgb{190, 10, 80});
  CHECK(colour_map(0.65) == Rgb{240, 110, 80});
  CHECK(colour_map(0.85) == Rgb{255, 210, 80});
  CHECK(colour_map(0.55) == Rgb{215, 60, 80});

  // After 8-bit rounding luminance never falls; over any 1/40 step it strictly rises.
  Rgb prev = colour_map(0.0);
  bool channels_monotone = true, luma_monotone = true;
  for (int i = 1; i <= 10000; ++i) {
    const Rgb c = colour_map(i / 10000.0);
    for (std::size_t k = 0; k < 3; ++k) channels_monotone = channels_monotone && c[k] >= prev[k];
    luma_monotone = luma_monotone && luma(c) >= luma(prev);
    prev = c;
  }
  CHECK(channels_monotone);
  CHECK(luma_monotone);
  for (int i = 1; i <= 40; ++i) {
    INFO("step " << i);
    CHECK(luma(colour_map(i / 40.0)) > luma(colour_map((i - 1) / 40.0)));
  }
}

TEST_CASE("heat_overlay: exact values at lo, hi and alpha 0, 1", "[report][image]") {
  using baypr::report::heat_overlay;
  Eigen::ArrayXXd g(2, 2);
  g << 0.2, 0.4,  //
      0.6, 1.0;
  Eigen::ArrayXXd s(2, 2);
  s << -1.0, 3.0,  //
      -5.0, 10.0;  // lo, hi, below lo, above hi
  const double lo = -1.0, hi = 3.0;

  CHECK(heat_overlay(g, s, lo, hi, 0.0).rgb == baypr::report::grey_image(g).rgb);

  const RgbImage full = heat_overlay(g, s, lo, hi, 1.0);
  CHECK(pixel(full, 0, 0) == Rgb{0, 0, 0});
  CHECK(pixel(full, 1, 0) == Rgb{255, 255, 255});
  CHECK(pixel(full, 0, 1) == Rgb{0, 0, 0});
  CHECK(pixel(full, 1, 1) == Rgb{255, 255, 255});

  // alpha 0.25 over grey 0.2 (51): at lo 0.75 * 51 = 38.25 -> 38; at hi 38.25 + 63.75 = 102.
  Eigen::ArrayXXd g1 = Eigen::ArrayXXd::Constant(1, 2, 0.2);
  Eigen::ArrayXXd s1(1, 2);
  s1 << lo, hi;
  const RgbImage quarter = heat_overlay(g1, s1, lo, hi, 0.25);
  CHECK(pixel(quarter, 0, 0) == Rgb{38, 38, 38});
  CHECK(pixel(quarter, 1, 0) == Rgb{102, 102, 102});

  // A knot of the map (t = 0.45 -> 190, 10, 80) at alpha 0.5 over grey 0.4 (102):
  // (102 + 190) / 2 = 146, (102 + 10) / 2 = 56, (102 + 80) / 2 = 91.
  Eigen::ArrayXXd g2 = Eigen::ArrayXXd::Constant(1, 1, 0.4);
  Eigen::ArrayXXd s2 = Eigen::ArrayXXd::Constant(1, 1, 0.45);
  CHECK(pixel(heat_overlay(g2, s2, 0.0, 1.0, 0.5), 0, 0) == Rgb{146, 56, 91});

  // A coarser score grid is upsampled by nearest neighbour.
  const Eigen::ArrayXXd g4 = Eigen::ArrayXXd::Constant(4, 6, 0.5);
  Eigen::ArrayXXd s4(2, 3);
  s4 << 0, 1, 0,  //
      1, 0, 1;
  const RgbImage up = heat_overlay(g4, s4, 0.0, 1.0, 1.0);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 6; ++x) {
      const bool hot = s4(y / 2, x / 2) > 0.5;
      CHECK(pixel(up, x, y) == (hot ? Rgb{255, 255, 255} : Rgb{0, 0, 0}));
    }
  }

  CHECK(contains(message_of([&] { heat_overlay(g, s, 1.0, 1.0); }), "'hi' must be > lo = 1"));
  CHECK(contains(message_of([&] { heat_overlay(g, s, lo, hi, 1.5); }),
                 "'alpha' must be in [0, 1], got 1.5"));
  CHECK(contains(message_of([&] { heat_overlay(g4, Eigen::ArrayXXd::Zero(3, 3), lo, hi); }),
                 "'scores' must be 4 x 6 or a grid"));
  s(0, 1) = INFINITY;
  CHECK_THROWS_AS(heat_overlay(g, s, lo, hi), baypr::invalid_argument);
}

TEST_CASE("mask_image and outline_mask", "[report][image]") {
  using baypr::report::BoolArray;
  BoolArray m = BoolArray::Constant(5, 5, false);
  m.block(1, 1, 3, 3).setConstant(true);
  m(0, 4) = true;  // a lone corner pixel: its own boundary
  const RgbImage white = baypr::report::mask_image(m);
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 5; ++x) {
      CHECK(pixel(white, x, y) == (m(y, x) ? Rgb{255, 255, 255} : Rgb{0, 0, 0}));
    }
  }

  RgbImage im = solid(5, 5, {9, 9, 9});
  baypr::report::outline_mask(im, m, {255, 0, 0});
  // R = outline, . = untouched: the 3x3 block's ring, not its centre, and the corner pixel.
  const std::array<std::string, 5> expected{"....R", ".RRR.", ".R.R.", ".RRR.", "....."};
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 5; ++x) {
      const bool r = expected[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)] == 'R';
      INFO("x " << x << ", y " << y);
      CHECK(pixel(im, x, y) == (r ? Rgb{255, 0, 0} : Rgb{9, 9, 9}));
    }
  }

  // A full mask is closed by the image border.
  RgbImage full = solid(3, 3, {0, 0, 0});
  baypr::report::outline_mask(full, BoolArray::Constant(3, 3, true), {0, 255, 0});
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 3; ++x) {
      CHECK(pixel(full, x, y) == (x == 1 && y == 1 ? Rgb{0, 0, 0} : Rgb{0, 255, 0}));
    }
  }

  // The original mask on an image upscaled by 3: a one-pixel ring at image resolution.
  BoolArray c = BoolArray::Constant(3, 3, false);
  c(1, 1) = true;
  RgbImage big = baypr::report::upscale(solid(3, 3, {0, 0, 0}), 3);
  baypr::report::outline_mask(big, c, {0, 0, 255});
  for (int y = 0; y < 9; ++y) {
    for (int x = 0; x < 9; ++x) {
      const bool ring = x >= 3 && x <= 5 && y >= 3 && y <= 5 && !(x == 4 && y == 4);
      CHECK(pixel(big, x, y) == (ring ? Rgb{0, 0, 255} : Rgb{0, 0, 0}));
    }
  }

  RgbImage unchanged = solid(4, 4, {1, 1, 1});
  CHECK(
      contains(message_of([&] {
                 baypr::report::outline_mask(unchanged, BoolArray::Constant(3, 3, true), {0, 0, 0});
               }),
               "'mask' must be 4 x 4 or a grid"));
  CHECK(unchanged.rgb == solid(4, 4, {1, 1, 1}).rgb);
}

TEST_CASE("upscale repeats pixels", "[report][image]") {
  RgbImage im;
  im.width = 2;
  im.height = 1;
  im.rgb = {1, 2, 3, 4, 5, 6};
  const RgbImage up = baypr::report::upscale(im, 3);
  REQUIRE(up.width == 6);
  REQUIRE(up.height == 3);
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 6; ++x) CHECK(pixel(up, x, y) == (x < 3 ? Rgb{1, 2, 3} : Rgb{4, 5, 6}));
  }
  CHECK(baypr::report::upscale(im, 1).rgb == im.rgb);
  CHECK(contains(message_of([&] { baypr::report::upscale(im, 0); }),
                 "'factor' must be in 1..4096, got 0"));
}

TEST_CASE("tile: sizes, padding, top-left alignment", "[report][image]") {
  const Rgb red{255, 0, 0}, green{0, 255, 0}, blue{0, 0, 255}, bg{7, 8, 9};
  const std::vector<std::vector<RgbImage>> rows{{solid(2, 3, red), solid(4, 1, green)},
                                                {solid(1, 1, blue)}};
  for (const int pad : {0, 2}) {
    INFO("padding " << pad);
    const RgbImage t = baypr::report::tile(rows, pad, bg);
    // Widest row: pad + 2 + pad + 4 + pad; rows 3 and 1 tall.
    REQUIRE(t.width == 6 + 3 * pad);
    REQUIRE(t.height == 4 + 3 * pad);
    REQUIRE(t.rgb.size() == static_cast<std::size_t>(3 * t.width * t.height));
    RgbImage expected = solid(t.width, t.height, bg);
    const auto paint = [&](int x0, int y0, int w, int h, Rgb c) {
      for (int y = y0; y < y0 + h; ++y) {
        for (int x = x0; x < x0 + w; ++x) {
          const auto o = static_cast<std::size_t>(3 * (y * expected.width + x));
          for (std::size_t k = 0; k < 3; ++k) expected.rgb[o + k] = c[k];
        }
      }
    };
    paint(pad, pad, 2, 3, red);
    paint(2 + 2 * pad, pad, 4, 1, green);
    paint(pad, 3 + 2 * pad, 1, 1, blue);
    CHECK(t.rgb == expected.rgb);
  }
  CHECK(contains(message_of([&] {
                   baypr::report::tile({{solid(1, 1, red)}, {}}, 1, bg);
                 }),
                 "has an empty row 1"));
  RgbImage broken = solid(2, 2, red);
  broken.width = 3;
  CHECK(contains(message_of([&] {
                   baypr::report::tile({{solid(1, 1, red), broken}}, 1, bg);
                 }),
                 "'rows_of_images[0][1]' has rgb.size() 12"));
  CHECK_THROWS_AS(baypr::report::tile({}, 1, bg), baypr::invalid_argument);
  CHECK_THROWS_AS(baypr::report::tile(rows, -1, bg), baypr::invalid_argument);
}

TEST_CASE("colour_bar follows the colour map", "[report][image]") {
  using baypr::report::colour_map;
  const RgbImage h = baypr::report::colour_bar(5, 2);
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 5; ++x) CHECK(pixel(h, x, y) == colour_map(x / 4.0));
  }
  const RgbImage v = baypr::report::colour_bar(2, 5);
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 2; ++x) CHECK(pixel(v, x, y) == colour_map((4 - y) / 4.0));
  }
  CHECK(pixel(v, 0, 0) == Rgb{255, 255, 255});
  CHECK(pixel(v, 0, 4) == Rgb{0, 0, 0});
  CHECK_THROWS_AS(baypr::report::colour_bar(0, 3), baypr::invalid_argument);
}

namespace {

std::vector<baypr::report::Curve> sample_curves() {
  return {{awkward, {0.0, 0.1, 0.4, 1.0}, {0.0, 0.6, 0.9, 1.0}},
          {"PatchCore (k = 1)", {0.0, 0.5, 1.0}, {0.0, 0.55, 1.0}}};
}

std::vector<baypr::report::ScoreSample> sample_scores() {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> n01(0.0, 1.0);
  std::vector<baypr::report::ScoreSample> out;
  const std::vector<std::string> labels{awkward, "Bayesian 'NIW' (5-shot)", "100% \"gaussian\"",
                                        "all equal"};
  for (std::size_t m = 0; m < labels.size(); ++m) {
    baypr::report::ScoreSample s{labels[m], {}, {}};
    for (int i = 0; i < 200; ++i) s.normal.push_back(m == 3 ? 1.0 : n01(rng));
    for (int i = 0; i < 50; ++i) s.anomalous.push_back(m == 3 ? 1.0 : 2.0 + n01(rng));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

TEST_CASE("chart data files: ROC points exact, histogram densities integrate to 1",
          "[report][chart]") {
  TempDir dir("data");
  ScopedPath no_gnuplot(dir.path.string());  // a PATH with no gnuplot on it
  CHECK_FALSE(baypr::report::gnuplot_available());

  const fs::path roc = dir.path / "roc (a).png";
  CHECK_FALSE(baypr::report::plot_roc_curves(roc, awkward, sample_curves()));
  CHECK_FALSE(fs::exists(roc));
  const auto blocks = read_blocks(dir.path / "roc (a).dat");
  const auto curves = sample_curves();
  REQUIRE(blocks.size() == curves.size());
  for (std::size_t c = 0; c < curves.size(); ++c) {
    REQUIRE(blocks[c].size() == curves[c].x.size());
    for (std::size_t i = 0; i < curves[c].x.size(); ++i) {
      CHECK(blocks[c][i] == std::vector<double>{curves[c].x[i], curves[c].y[i]});
    }
  }
  const std::string roc_gp = read_text(dir.path / "roc (a).gp");
  CHECK(contains(roc_gp, "set output 'roc (a).png'"));
  CHECK(contains(roc_gp, "title 'it''s \"A\" (AUROC 0.93) 50% {x}_1^2 & @~ \\n'"));
  CHECK(contains(roc_gp, "x with lines"));  // the chance diagonal

  // plot_series writes the same blocks; log_y sets a log scale and needs y > 0.
  CHECK_FALSE(baypr::report::plot_series(dir.path / "series.png", "t", "round", "|g|^2", curves));
  CHECK(read_blocks(dir.path / "series.dat") == blocks);
  CHECK(contains(read_text(dir.path / "series.gp"), "set xlabel 'round'"));
  CHECK_FALSE(contains(read_text(dir.path / "series.gp"), "logscale"));
  std::vector<baypr::report::Curve> positive{{"g", {0.0, 1.0, 2.0}, {4.0, 1.0, 0.25}}};
  CHECK_FALSE(
      baypr::report::plot_series(dir.path / "log.png", "t", "round", "|g|^2", positive, true));
  CHECK(contains(read_text(dir.path / "log.gp"), "set logscale y"));
  CHECK(contains(
      message_of([&] { baypr::report::plot_series(dir.path / "y.png", "", "", "", curves, true); }),
      "'curves[0].y' must be > 0 on a log scale, got 0 at index 0"));
  CHECK_FALSE(fs::exists(dir.path / "y.dat"));

  const fs::path hist = dir.path / "hist.png";
  const auto scores = sample_scores();
  CHECK_FALSE(baypr::report::plot_score_histograms(hist, "t", scores, 20));
  const auto hb = read_blocks(dir.path / "hist.dat");
  REQUIRE(hb.size() == scores.size());
  for (std::size_t m = 0; m < scores.size(); ++m) {
    INFO("method " << m);
    REQUIRE(hb[m].size() == 20);
    double normal = 0.0, anomalous = 0.0;
    for (const auto& row : hb[m]) {
      REQUIRE(row.size() == 4);
      normal += row[1] * row[3];
      anomalous += row[2] * row[3];
    }
    CHECK(std::abs(normal - 1.0) < 1e-12);
    CHECK(std::abs(anomalous - 1.0) < 1e-12);
  }
  // Equal scores (1.0) get the range [0.5, 1.5]: all mass in one bin of width 0.05 at the middle.
  int occupied = 0;
  for (const auto& row : hb[3]) {
    if (row[1] == 0.0) continue;
    ++occupied;
    CHECK(std::abs(row[1] - 20.0) < 1e-9);
    CHECK(std::abs(row[0] - 1.0) <= 0.025 + 1e-12);
    CHECK(std::abs(row[3] - 0.05) < 1e-15);
  }
  CHECK(occupied == 1);
  CHECK(std::abs(hb[3].front()[0] - 0.525) < 1e-12);

  CHECK(
      contains(message_of([&] { baypr::report::plot_roc_curves(dir.path / "x.svg", "", curves); }),
               "'png' must name a file ending in .png"));
  auto bad = sample_curves();
  bad[1].y.pop_back();
  CHECK_THROWS_AS(baypr::report::plot_roc_curves(dir.path / "x.png", "", bad),
                  baypr::invalid_argument);
  auto nan_scores = sample_scores();
  nan_scores[2].anomalous[3] = std::nan("");
  CHECK(contains(
      message_of([&] { baypr::report::plot_score_histograms(dir.path / "x.png", "", nan_scores); }),
      "'methods[2].anomalous' must be finite, got nan at index 3"));
  CHECK_FALSE(fs::exists(dir.path / "x.dat"));
}

TEST_CASE("charts: a failing gnuplot throws io_error with its output", "[report][chart]") {
  TempDir dir("fake");
  const fs::path bin = dir.path / "bin";
  fs::create_directories(bin);
  ScopedPath fake(bin.string());

  // The fake echoes its argument and its working directory: checks the shell quoting.
  write_script(bin / "gnuplot", "echo \"boom: [$1] in [$(pwd)]\"\nexit 3\n");
  REQUIRE(baypr::report::gnuplot_available());
  const fs::path png = dir.path / "it's 100% (x).png";
  const std::string msg =
      message_of([&] { baypr::report::plot_roc_curves(png, "t", sample_curves()); });
  CHECK(contains(msg, "baypr::report::plot_roc_curves"));
  CHECK(contains(msg, "exited with status 3"));
  CHECK(contains(msg, "boom: [./it's 100% (x).gp] in [" + fs::canonical(dir.path).string() + "]"));
  CHECK_THROWS_AS(baypr::report::plot_roc_curves(png, "t", sample_curves()), baypr::io_error);

  write_script(bin / "gnuplot", "exit 0\n");
  CHECK(
      contains(message_of([&] { baypr::report::plot_score_histograms(png, "t", sample_scores()); }),
               "wrote no image"));
}

TEST_CASE("charts render with gnuplot when it is installed", "[report][chart][gnuplot]") {
  if (!baypr::report::gnuplot_available()) {
    WARN("gnuplot not found on PATH: charts not rendered");
    return;
  }
  TempDir dir("charts");
  const fs::path roc = dir.path / "roc \"curves\" 50%.png";
  REQUIRE(baypr::report::plot_roc_curves(roc, awkward, sample_curves()));
  const Decoded r = decode_png(roc);
  CHECK(r.width == 640);
  CHECK(r.height == 600);

  const fs::path hist = dir.path / "scores.png";
  REQUIRE(baypr::report::plot_score_histograms(hist, awkward, sample_scores()));
  const Decoded h = decode_png(hist);
  CHECK(h.width == 3 * 480);  // four panels: two rows of up to three
  CHECK(h.height == 2 * 360);
  // Not blank: the two fill colours blend into many distinct colours.
  std::vector<std::uint32_t> colours;
  for (std::size_t i = 0; i + 2 < h.rgb.size(); i += 3) {
    colours.push_back((std::uint32_t{h.rgb[i]} << 16) | (std::uint32_t{h.rgb[i + 1]} << 8) |
                      h.rgb[i + 2]);
  }
  std::sort(colours.begin(), colours.end());
  CHECK(std::unique(colours.begin(), colours.end()) - colours.begin() > 10);

  // The script and data stay next to the image, for re-rendering.
  CHECK(fs::exists(dir.path / "scores.gp"));
  CHECK(fs::exists(dir.path / "scores.dat"));
}
