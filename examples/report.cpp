// examples/report.cpp: the images (stb_image_write) and charts (gnuplot) declared in report.hpp.
#include "report.hpp"

#include <stb_image_write.h>  // implementation in Debian's libstb.so; not defined here

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <locale>
#include <optional>
#include <sstream>
#include <string_view>

#include "baypr/core/errors.hpp"
#include "baypr/io/detail/file.hpp"

namespace baypr::report {
namespace {

namespace fs = std::filesystem;
using detail::format_value;
using detail::throw_invalid;

[[noreturn]] void fail_io(std::string_view function, const fs::path& path, std::string_view what) {
  detail::io::fail(function, detail::io::file_source(path), what);
}

// ---- colour map ------------------------------------------------------------------------------

struct Knot {
  double t;
  double r, g, b;
};

// Every channel non-decreasing from knot to knot (see colour_map in report.hpp); luma at the knots
// (Rec. 709 weights, 0..255): 0, 16, 53, 136, 210, 255.
constexpr std::array<Knot, 6> knots{{{0.00, 0, 0, 0},
                                     {0.20, 50, 0, 80},
                                     {0.45, 190, 10, 80},
                                     {0.65, 240, 110, 80},
                                     {0.85, 255, 210, 80},
                                     {1.00, 255, 255, 255}}};

double clamp01(double t) {
  return std::clamp(t, 0.0, 1.0);
}

std::array<double, 3> colour_map_exact(double t) {
  t = clamp01(t);
  std::size_t k = 1;
  while (k + 1 < knots.size() && t > knots[k].t) ++k;
  const Knot& a = knots[k - 1];
  const Knot& b = knots[k];
  const double u = (t - a.t) / (b.t - a.t);
  return {a.r + u * (b.r - a.r), a.g + u * (b.g - a.g), a.b + u * (b.b - a.b)};
}

std::uint8_t to_byte(double v) {
  return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
}

// ---- image helpers ---------------------------------------------------------------------------

std::size_t pixel_count(const RgbImage& im) {
  return static_cast<std::size_t>(im.width) * static_cast<std::size_t>(im.height);
}

std::size_t offset(const RgbImage& im, int x, int y) {
  return 3 * (static_cast<std::size_t>(y) * static_cast<std::size_t>(im.width) +
              static_cast<std::size_t>(x));
}

RgbImage blank(int width, int height, Rgb fill) {
  RgbImage im;
  im.width = width;
  im.height = height;
  im.rgb.resize(3 * pixel_count(im));
  for (std::size_t i = 0; i < im.rgb.size(); i += 3) {
    im.rgb[i] = fill[0];
    im.rgb[i + 1] = fill[1];
    im.rgb[i + 2] = fill[2];
  }
  return im;
}

// stb_image_write takes int sizes and strides; stay far below its overflow limits.
constexpr std::size_t max_image_bytes = std::size_t{1} << 30;

void check_image(std::string_view function, std::string_view argument, const RgbImage& im) {
  if (im.width < 1 || im.height < 1) {
    throw_invalid(function, argument,
                  "must be non-empty, got width " + std::to_string(im.width) + ", height " +
                      std::to_string(im.height));
  }
  if (pixel_count(im) > max_image_bytes / 3) {
    throw_invalid(function, argument,
                  "is too large, got " + std::to_string(im.width) + " x " +
                      std::to_string(im.height) + " pixels");
  }
  if (im.rgb.size() != 3 * pixel_count(im)) {
    throw_invalid(function, argument,
                  "has rgb.size() " + std::to_string(im.rgb.size()) + ", expected 3 * " +
                      std::to_string(im.width) + " * " + std::to_string(im.height) + " = " +
                      std::to_string(3 * pixel_count(im)));
  }
}

int checked_dim(std::string_view function, std::string_view argument, Eigen::Index n,
                std::string_view what) {
  if (n < 1 || n > 65535) {
    throw_invalid(function, argument,
                  "must have 1..65535 " + std::string(what) + ", got " + std::to_string(n));
  }
  return static_cast<int>(n);
}

// rows (cols) of `coarse` must divide those of the image; returns the two factors.
std::pair<Eigen::Index, Eigen::Index> grid_factors(std::string_view function,
                                                   std::string_view argument, Eigen::Index rows,
                                                   Eigen::Index cols, Eigen::Index image_rows,
                                                   Eigen::Index image_cols) {
  if (rows < 1 || cols < 1 || image_rows % rows != 0 || image_cols % cols != 0) {
    throw_invalid(function, argument,
                  "must be " + std::to_string(image_rows) + " x " + std::to_string(image_cols) +
                      " or a grid whose rows and columns divide those, got " +
                      std::to_string(rows) + " x " + std::to_string(cols));
  }
  return {image_rows / rows, image_cols / cols};
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<unsigned char>*>(context);
  const auto* p = static_cast<const unsigned char*>(data);
  out->insert(out->end(), p, p + size);
}

// ---- gnuplot ---------------------------------------------------------------------------------

std::optional<fs::path> find_gnuplot() {
  const char* env = std::getenv("PATH");
  if (env == nullptr) return std::nullopt;
  std::string_view path_list(env);
  while (true) {
    const std::size_t colon = path_list.find(':');
    std::string_view dir = path_list.substr(0, colon);
    const fs::path candidate = fs::path(dir.empty() ? "." : std::string(dir)) / "gnuplot";
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) break;
    path_list.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

// A gnuplot single-quoted string: '' is a quote, nothing else is special; control characters
// (a newline would end the command) become spaces.
std::string gp_quote(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

// A POSIX shell single-quoted word.
std::string sh_quote(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string comment_text(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::ostringstream number_stream() {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  os.precision(std::numeric_limits<double>::max_digits10);
  return os;
}

void write_text(std::string_view function, const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    fail_io(function, path, "cannot create it (does the directory exist and is it writable?)");
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (out.fail()) fail_io(function, path, "write error (disk full?)");
}

struct ChartFiles {
  fs::path dir, png, dat, gp;
  std::string png_name, dat_name, gp_name;
};

ChartFiles chart_files(std::string_view function, const fs::path& png) {
  if (png.extension() != ".png" || png.stem().empty()) {
    throw_invalid(function, "png", "must name a file ending in .png, got '" + png.string() + "'");
  }
  ChartFiles f;
  f.dir = png.parent_path().empty() ? fs::path(".") : png.parent_path();
  f.png_name = png.filename().string();
  f.dat_name = png.stem().string() + ".dat";
  f.gp_name = png.stem().string() + ".gp";
  f.png = f.dir / f.png_name;
  f.dat = f.dir / f.dat_name;
  f.gp = f.dir / f.gp_name;
  return f;
}

// The terminal lines: pngcairo where this gnuplot has it, else the libgd png terminal.
// noenhanced: labels are shown literally (no ^ _ @ & { } markup).
std::string terminal_block(int width, int height, const ChartFiles& f) {
  std::ostringstream os;
  os << "set encoding utf8\n"
     << "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
     << "  set terminal pngcairo size " << width << "," << height << " noenhanced font ',10'\n"
     << "} else {\n"
     << "  set terminal png size " << width << "," << height << " noenhanced truecolor\n"
     << "}\n"
     << "set output " << gp_quote(f.png_name) << "\n";
  return os.str();
}

std::string script_header(std::string_view what, const ChartFiles& f) {
  return "# " + std::string(what) + ", written by baypr's examples/report.cpp.\n" +
         "# Re-render: cd to this directory, then: gnuplot " + comment_text(f.gp_name) + "\n";
}

// Runs gnuplot on the script in the chart's directory; false when there is no gnuplot.
bool run_gnuplot(std::string_view function, const ChartFiles& f) {
  const auto gnuplot = find_gnuplot();
  if (!gnuplot) return false;
  std::error_code ec;
  fs::remove(f.png, ec);  // so a stale PNG cannot pass for a fresh one
  // Absolute directory and ./name: neither can be mistaken for an option.
  const fs::path dir = fs::absolute(f.dir, ec);
  if (ec) fail_io(function, f.gp, "cannot resolve its directory: " + ec.message());
  const std::string command = "cd " + sh_quote(dir.string()) + " && " +
                              sh_quote(gnuplot->string()) + " " + sh_quote("./" + f.gp_name) +
                              " 2>&1";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) fail_io(function, f.gp, "cannot start gnuplot (popen failed)");
  std::string output;
  std::array<char, 4096> buffer{};
  std::size_t got = 0;
  while ((got = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    if (output.size() < 4000) output.append(buffer.data(), got);
  }
  const int status = ::pclose(pipe);
  if (output.size() > 4000) output.resize(4000);
  const bool exited_ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!exited_ok) {
    const std::string how = (status != -1 && WIFEXITED(status))
                                ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                : "did not exit normally";
    fail_io(function, f.gp, "gnuplot " + how + "; its output: " + output);
  }
  if (!fs::is_regular_file(f.png, ec) || fs::file_size(f.png, ec) == 0) {
    fail_io(function, f.png, "gnuplot exited normally but wrote no image; its output: " + output);
  }
  return true;
}

void check_finite_values(std::string_view function, const std::string& argument,
                         const std::vector<double>& v) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      throw_invalid(function, argument,
                    "must be finite, got " + format_value(v[i]) + " at index " + std::to_string(i));
    }
  }
}

}  // namespace

// ---- images ----------------------------------------------------------------------------------

Rgb colour_map(double t) {
  if (std::isnan(t)) throw_invalid("baypr::report::colour_map", "t", "must not be NaN");
  const auto c = colour_map_exact(t);
  return {to_byte(c[0]), to_byte(c[1]), to_byte(c[2])};
}

RgbImage grey_image(const Eigen::ArrayXXd& grey) {
  constexpr std::string_view fn = "baypr::report::grey_image";
  const int h = checked_dim(fn, "grey", grey.rows(), "rows");
  const int w = checked_dim(fn, "grey", grey.cols(), "columns");
  detail::check_finite(fn, "grey", grey);
  RgbImage im = blank(w, h, {0, 0, 0});
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const std::uint8_t v = to_byte(clamp01(grey(y, x)) * 255.0);
      const std::size_t o = offset(im, x, y);
      im.rgb[o] = im.rgb[o + 1] = im.rgb[o + 2] = v;
    }
  }
  return im;
}

RgbImage heat_overlay(const Eigen::ArrayXXd& grey, const Eigen::ArrayXXd& scores, double lo,
                      double hi, double alpha) {
  constexpr std::string_view fn = "baypr::report::heat_overlay";
  const int h = checked_dim(fn, "grey", grey.rows(), "rows");
  const int w = checked_dim(fn, "grey", grey.cols(), "columns");
  const auto [fy, fx] = grid_factors(fn, "scores", scores.rows(), scores.cols(), h, w);
  detail::check_finite(fn, "grey", grey);
  detail::check_finite(fn, "scores", scores);
  detail::check_finite_scalar(fn, "lo", lo);
  detail::check_finite_scalar(fn, "hi", hi);
  if (!(lo < hi)) {
    throw_invalid(fn, "hi", "must be > lo = " + format_value(lo) + ", got " + format_value(hi));
  }
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    throw_invalid(fn, "alpha", "must be in [0, 1], got " + format_value(alpha));
  }
  RgbImage im = blank(w, h, {0, 0, 0});
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double g = clamp01(grey(y, x)) * 255.0;
      const double t = (scores(y / fy, x / fx) - lo) / (hi - lo);
      const auto c = colour_map_exact(t);
      const std::size_t o = offset(im, x, y);
      for (std::size_t k = 0; k < 3; ++k) im.rgb[o + k] = to_byte((1.0 - alpha) * g + alpha * c[k]);
    }
  }
  return im;
}

RgbImage mask_image(const BoolArray& mask) {
  constexpr std::string_view fn = "baypr::report::mask_image";
  const int h = checked_dim(fn, "mask", mask.rows(), "rows");
  const int w = checked_dim(fn, "mask", mask.cols(), "columns");
  RgbImage im = blank(w, h, {0, 0, 0});
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (mask(y, x)) {
        const std::size_t o = offset(im, x, y);
        im.rgb[o] = im.rgb[o + 1] = im.rgb[o + 2] = 255;
      }
    }
  }
  return im;
}

void outline_mask(RgbImage& image, const BoolArray& mask, Rgb colour) {
  constexpr std::string_view fn = "baypr::report::outline_mask";
  check_image(fn, "image", image);
  const auto [fy, fx] =
      grid_factors(fn, "mask", mask.rows(), mask.cols(), image.height, image.width);
  const auto inside = [&, fy = fy, fx = fx](int x, int y) {
    return x >= 0 && y >= 0 && x < image.width && y < image.height && mask(y / fy, x / fx);
  };
  // Decide every pixel from the mask alone, then paint: painting never feeds back.
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (!inside(x, y)) continue;
      if (inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1)) continue;
      const std::size_t o = offset(image, x, y);
      image.rgb[o] = colour[0];
      image.rgb[o + 1] = colour[1];
      image.rgb[o + 2] = colour[2];
    }
  }
}

RgbImage upscale(const RgbImage& image, int factor) {
  constexpr std::string_view fn = "baypr::report::upscale";
  check_image(fn, "image", image);
  if (factor < 1 || factor > 4096) {
    throw_invalid(fn, "factor", "must be in 1..4096, got " + std::to_string(factor));
  }
  const std::size_t new_pixels =
      pixel_count(image) * static_cast<std::size_t>(factor) * static_cast<std::size_t>(factor);
  if (new_pixels > max_image_bytes / 3) {
    throw_invalid(fn, "factor", "makes the image too large, got " + std::to_string(factor));
  }
  RgbImage out = blank(image.width * factor, image.height * factor, {0, 0, 0});
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      const std::size_t src = offset(image, x / factor, y / factor);
      const std::size_t dst = offset(out, x, y);
      for (std::size_t k = 0; k < 3; ++k) out.rgb[dst + k] = image.rgb[src + k];
    }
  }
  return out;
}

RgbImage tile(const std::vector<std::vector<RgbImage>>& rows_of_images, int padding,
              Rgb background) {
  constexpr std::string_view fn = "baypr::report::tile";
  if (rows_of_images.empty()) throw_invalid(fn, "rows_of_images", "must hold at least one row");
  if (padding < 0 || padding > 4096) {
    throw_invalid(fn, "padding", "must be in 0..4096, got " + std::to_string(padding));
  }
  const auto pad = static_cast<std::size_t>(padding);
  std::size_t total_w = 0, total_h = pad;
  std::vector<std::size_t> row_heights;
  for (std::size_t r = 0; r < rows_of_images.size(); ++r) {
    const auto& row = rows_of_images[r];
    if (row.empty()) {
      throw_invalid(fn, "rows_of_images", "has an empty row " + std::to_string(r));
    }
    std::size_t row_w = pad, row_h = 0;
    for (std::size_t i = 0; i < row.size(); ++i) {
      check_image(fn, "rows_of_images[" + std::to_string(r) + "][" + std::to_string(i) + "]",
                  row[i]);
      row_w += static_cast<std::size_t>(row[i].width) + pad;
      row_h = std::max(row_h, static_cast<std::size_t>(row[i].height));
    }
    total_w = std::max(total_w, row_w);
    total_h += row_h + pad;
    row_heights.push_back(row_h);
  }
  if (total_w > 65535 || total_h > 65535 || total_w * total_h > max_image_bytes / 3) {
    throw_invalid(fn, "rows_of_images",
                  "makes a figure too large, got " + std::to_string(total_w) + " x " +
                      std::to_string(total_h) + " pixels");
  }
  RgbImage out = blank(static_cast<int>(total_w), static_cast<int>(total_h), background);
  std::size_t top = pad;
  for (std::size_t r = 0; r < rows_of_images.size(); ++r) {
    std::size_t left = pad;
    for (const RgbImage& im : rows_of_images[r]) {
      const auto row_bytes = 3 * static_cast<std::size_t>(im.width);
      for (int y = 0; y < im.height; ++y) {
        const auto src = im.rgb.begin() + static_cast<std::ptrdiff_t>(offset(im, 0, y));
        const std::size_t dst = 3 * ((top + static_cast<std::size_t>(y)) * total_w + left);
        std::copy(src, src + static_cast<std::ptrdiff_t>(row_bytes),
                  out.rgb.begin() + static_cast<std::ptrdiff_t>(dst));
      }
      left += static_cast<std::size_t>(im.width) + pad;
    }
    top += row_heights[r] + pad;
  }
  return out;
}

RgbImage colour_bar(int width, int height) {
  constexpr std::string_view fn = "baypr::report::colour_bar";
  if (width < 1 || width > 65535) {
    throw_invalid(fn, "width", "must be in 1..65535, got " + std::to_string(width));
  }
  if (height < 1 || height > 65535) {
    throw_invalid(fn, "height", "must be in 1..65535, got " + std::to_string(height));
  }
  if (static_cast<std::size_t>(width) * static_cast<std::size_t>(height) > max_image_bytes / 3) {
    throw_invalid(
        fn, "width",
        "makes the strip too large, got " + std::to_string(width) + " x " + std::to_string(height));
  }
  const bool horizontal = width >= height;
  const int length = horizontal ? width : height;
  RgbImage out = blank(width, height, {0, 0, 0});
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int i = horizontal ? x : height - 1 - y;
      const double t = length > 1 ? static_cast<double>(i) / static_cast<double>(length - 1) : 0.0;
      const Rgb c = colour_map(t);
      const std::size_t o = offset(out, x, y);
      out.rgb[o] = c[0];
      out.rgb[o + 1] = c[1];
      out.rgb[o + 2] = c[2];
    }
  }
  return out;
}

void write_png(const std::filesystem::path& path, const RgbImage& image) {
  constexpr std::string_view fn = "baypr::report::write_png";
  check_image(fn, "image", image);
  std::vector<unsigned char> bytes;
  const int ok = stbi_write_png_to_func(&append_bytes, &bytes, image.width, image.height, 3,
                                        image.rgb.data(), 3 * image.width);
  if (ok == 0 || bytes.empty()) fail_io(fn, path, "the PNG encoder (stb_image_write) failed");
  detail::io::write_atomically(
      path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), fn);
}

// ---- charts ----------------------------------------------------------------------------------

bool gnuplot_available() {
  return find_gnuplot().has_value();
}

namespace {

// Checks the curves (at least one; as many x as y values, at least one, all finite) and writes
// them as one gnuplot index block per curve.
std::string curve_blocks(std::string_view fn, const std::string& what,
                         const std::vector<Curve>& curves) {
  if (curves.empty()) throw_invalid(fn, "curves", "must hold at least one curve");
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const std::string arg = "curves[" + std::to_string(i) + "]";
    if (curves[i].x.empty() || curves[i].x.size() != curves[i].y.size()) {
      throw_invalid(fn, arg,
                    "must have as many x as y values, at least one, got " +
                        std::to_string(curves[i].x.size()) + " x and " +
                        std::to_string(curves[i].y.size()) + " y");
    }
    check_finite_values(fn, arg + ".x", curves[i].x);
    check_finite_values(fn, arg + ".y", curves[i].y);
  }
  auto dat = number_stream();
  dat << "# " << what << "; one block per curve\n";
  for (std::size_t i = 0; i < curves.size(); ++i) {
    if (i > 0) dat << "\n\n";  // blocks are separated by two blank lines
    dat << "# curve " << i << ": " << comment_text(curves[i].label) << "\n";
    for (std::size_t j = 0; j < curves[i].x.size(); ++j) {
      dat << curves[i].x[j] << ' ' << curves[i].y[j] << '\n';
    }
  }
  return dat.str();
}

}  // namespace

bool plot_roc_curves(const std::filesystem::path& png, const std::string& title,
                     const std::vector<Curve>& curves) {
  constexpr std::string_view fn = "baypr::report::plot_roc_curves";
  const ChartFiles f = chart_files(fn, png);
  const std::string dat =
      curve_blocks(fn, "ROC curves: false positive rate, true positive rate", curves);
  std::ostringstream gp;
  gp << script_header("ROC curves", f) << terminal_block(640, 600, f) << "set title "
     << gp_quote(title) << "\n"
     << "set xlabel 'False positive rate'\nset ylabel 'True positive rate'\n"
     << "set xrange [0:1]\nset yrange [0:1]\nset size square\nset grid\n"
     << "set key bottom right box opaque\n"
     << "plot \\\n";
  for (std::size_t i = 0; i < curves.size(); ++i) {
    gp << "  " << gp_quote(f.dat_name) << " index " << i << " using 1:2 with lines lw 2 title "
       << gp_quote(curves[i].label) << ", \\\n";
  }
  gp << "  x with lines dt 2 lc rgb '#808080' title 'chance'\n";

  write_text(fn, f.dat, dat);
  write_text(fn, f.gp, gp.str());
  return run_gnuplot(fn, f);
}

bool plot_series(const std::filesystem::path& png, const std::string& title,
                 const std::string& x_label, const std::string& y_label,
                 const std::vector<Curve>& curves, bool log_y) {
  constexpr std::string_view fn = "baypr::report::plot_series";
  const ChartFiles f = chart_files(fn, png);
  const std::string dat = curve_blocks(fn, "series: x, y", curves);
  if (log_y) {
    for (std::size_t i = 0; i < curves.size(); ++i) {
      for (std::size_t j = 0; j < curves[i].y.size(); ++j) {
        if (!(curves[i].y[j] > 0.0)) {
          throw_invalid(fn, "curves[" + std::to_string(i) + "].y",
                        "must be > 0 on a log scale, got " + format_value(curves[i].y[j]) +
                            " at index " + std::to_string(j));
        }
      }
    }
  }
  std::ostringstream gp;
  gp << script_header("series", f) << terminal_block(720, 480, f) << "set title " << gp_quote(title)
     << "\nset xlabel " << gp_quote(x_label) << "\nset ylabel " << gp_quote(y_label)
     << "\nset grid\nset key top right box opaque\n"
     << (log_y ? "set logscale y\n" : "") << "plot \\\n";
  for (std::size_t i = 0; i < curves.size(); ++i) {
    gp << "  " << gp_quote(f.dat_name) << " index " << i << " using 1:2 with lines lw 2 title "
       << gp_quote(curves[i].label) << (i + 1 < curves.size() ? ", \\\n" : "\n");
  }
  write_text(fn, f.dat, dat);
  write_text(fn, f.gp, gp.str());
  return run_gnuplot(fn, f);
}

bool plot_score_histograms(const std::filesystem::path& png, const std::string& title,
                           const std::vector<ScoreSample>& methods, int bins) {
  constexpr std::string_view fn = "baypr::report::plot_score_histograms";
  const ChartFiles f = chart_files(fn, png);
  if (methods.empty()) throw_invalid(fn, "methods", "must hold at least one method");
  if (bins < 1 || bins > 10000) {
    throw_invalid(fn, "bins", "must be in 1..10000, got " + std::to_string(bins));
  }
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const std::string arg = "methods[" + std::to_string(i) + "]";
    if (methods[i].normal.empty()) throw_invalid(fn, arg + ".normal", "must not be empty");
    if (methods[i].anomalous.empty()) throw_invalid(fn, arg + ".anomalous", "must not be empty");
    check_finite_values(fn, arg + ".normal", methods[i].normal);
    check_finite_values(fn, arg + ".anomalous", methods[i].anomalous);
  }

  // Densities on common bins: count / (n * bin width), so each histogram integrates to 1.
  auto dat = number_stream();
  dat << "# score histograms: bin centre, normal density, anomalous density, bin width;"
         " one block per method\n";
  const auto nbins = static_cast<std::size_t>(bins);
  for (std::size_t m = 0; m < methods.size(); ++m) {
    const auto& s = methods[m];
    double lo = std::min(*std::min_element(s.normal.begin(), s.normal.end()),
                         *std::min_element(s.anomalous.begin(), s.anomalous.end()));
    double hi = std::max(*std::max_element(s.normal.begin(), s.normal.end()),
                         *std::max_element(s.anomalous.begin(), s.anomalous.end()));
    if (!(hi > lo)) {  // all scores equal: one unit-wide range around them
      lo -= 0.5;
      hi += 0.5;
    }
    const double width = (hi - lo) / static_cast<double>(bins);
    const auto histogram = [&](const std::vector<double>& v) {
      std::vector<double> density(nbins, 0.0);
      for (const double x : v) {
        const double k = std::floor((x - lo) / width);
        const std::size_t i = k <= 0.0 ? 0 : std::min(nbins - 1, static_cast<std::size_t>(k));
        density[i] += 1.0;
      }
      for (double& d : density) d /= static_cast<double>(v.size()) * width;
      return density;
    };
    const auto normal = histogram(s.normal);
    const auto anomalous = histogram(s.anomalous);
    if (m > 0) dat << "\n\n";
    dat << "# method " << m << ": " << comment_text(s.label) << "\n";
    for (std::size_t i = 0; i < nbins; ++i) {
      dat << lo + (static_cast<double>(i) + 0.5) * width << ' ' << normal[i] << ' ' << anomalous[i]
          << ' ' << width << '\n';
    }
  }

  const std::size_t columns = std::min<std::size_t>(3, methods.size());
  const std::size_t rows = (methods.size() + columns - 1) / columns;
  std::ostringstream gp;
  gp << script_header("Score histograms", f)
     << terminal_block(static_cast<int>(480 * columns), static_cast<int>(360 * rows), f)
     << "set style fill transparent solid 0.45 noborder\n"
     << "set xlabel 'score'\nset ylabel 'density'\nset key top right\nset grid\n"
     << "set multiplot layout " << rows << "," << columns << " title " << gp_quote(title) << "\n";
  for (std::size_t m = 0; m < methods.size(); ++m) {
    gp << "set title " << gp_quote(methods[m].label) << "\n"
       << "plot " << gp_quote(f.dat_name) << " index " << m
       << " using 1:2:4 with boxes lc rgb '#2166ac' title 'normal', \\\n"
       << "  " << gp_quote(f.dat_name) << " index " << m
       << " using 1:3:4 with boxes lc rgb '#d6604d' title 'anomalous'\n";
  }
  gp << "unset multiplot\n";

  write_text(fn, f.dat, dat.str());
  write_text(fn, f.gp, gp.str());
  return run_gnuplot(fn, f);
}

}  // namespace baypr::report
