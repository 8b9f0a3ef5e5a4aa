// examples/report.hpp: report figures for the benchmark programs (not part of the installed
// library): 8-bit RGB images (grey images, score heat maps over them, masks and their outlines,
// grids of panels, a colour-map legend) written as PNG through stb_image_write, and ROC /
// score-histogram charts rendered by gnuplot when it is installed.
//
// Images are row-major, y down, 3 bytes per pixel; an Eigen array's rows are image rows (y).
// Bad input throws baypr::invalid_argument; a file that cannot be written, or a gnuplot run that
// fails, throws baypr::io_error naming the function and the path.
#pragma once

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace baypr::report {

using BoolArray = Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic>;
using Rgb = std::array<std::uint8_t, 3>;

struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // row-major, 3 bytes per pixel, size 3 * width * height
};

// ---- images ---------------------------------------------------------------------------------

// The heat colour map at t in [0, 1] (clamped): black -> violet -> crimson -> orange -> gold ->
// white, piecewise linear in RGB. Every channel is non-decreasing in t, so the luminance is
// non-decreasing even after rounding to 8 bits (and strictly increasing before rounding).
Rgb colour_map(double t);

// Grey values in [0, 1] (clamped) to 0..255, rounded to nearest. Non-finite values throw.
RgbImage grey_image(const Eigen::ArrayXXd& grey);

// Scores mapped to t = (s - lo) / (hi - lo), clamped to [0, 1], coloured by colour_map and blended
// over the grey image: out = (1 - alpha) * grey + alpha * colour, rounded once at the end.
// `scores` is either the same shape as `grey` or a coarser grid whose rows and columns divide
// grey's (e.g. one score per patch); it is then upsampled by nearest neighbour.
// Requires finite lo < hi and alpha in [0, 1].
RgbImage heat_overlay(const Eigen::ArrayXXd& grey, const Eigen::ArrayXXd& scores, double lo,
                      double hi, double alpha = 0.5);

// White where true, black where false.
RgbImage mask_image(const BoolArray& mask);

// Paints, in `colour`, every pixel of the mask that is true and has a 4-neighbour that is false
// or outside the image (so a mask touching the border is closed by the border). The mask is the
// image's size or a coarser grid whose rows and columns divide the image's (e.g. the original
// mask on an upscaled image): the boundary is then found at image resolution, one pixel thick.
void outline_mask(RgbImage& image, const BoolArray& mask, Rgb colour);

// Each pixel repeated factor x factor times (factor >= 1).
RgbImage upscale(const RgbImage& image, int factor);

// A grid figure: rows of images, each image placed top-left in its cell, `padding` pixels of
// `background` around and between images. A row is as tall as its tallest image; the figure is as
// wide as its widest row. Every row must hold at least one image.
RgbImage tile(const std::vector<std::vector<RgbImage>>& rows_of_images, int padding,
              Rgb background);

// The colour map as a legend strip: t = 0..1 left to right when width >= height, bottom to top
// otherwise (each pixel's t = its index / (length - 1)).
RgbImage colour_bar(int width, int height);

// Encodes the image as PNG and writes it atomically (temporary file in the same directory, then
// renamed). The image must be non-empty with rgb.size() == 3 * width * height.
void write_png(const std::filesystem::path& path, const RgbImage& image);

// ---- charts (gnuplot) -----------------------------------------------------------------------
//
// Each chart function writes `<stem>.dat` and `<stem>.gp` next to `png` (always, so the chart can
// be re-rendered later with `cd <dir> && gnuplot <stem>.gp`; the script refers to its files by
// name only), then runs gnuplot in that directory. Returns false, without throwing, when no
// gnuplot executable is on PATH; true when the PNG was written. Throws io_error when a file cannot
// be written or gnuplot runs but fails (its output is quoted in the message). Labels are free
// text: quotes, %, parentheses and gnuplot's enhanced-text characters are shown literally.
// `png` must end in .png; its directory must exist (it is not created).
// The script uses the pngcairo terminal when gnuplot has it, else png.

struct Curve {
  std::string label;
  std::vector<double> x, y;
};

struct ScoreSample {
  std::string label;                      // the method, the panel's title
  std::vector<double> normal, anomalous;  // its scores on each class, both non-empty
};

// True when an executable `gnuplot` is found on PATH.
bool gnuplot_available();

// ROC curves (x = false positive rate, y = true positive rate) on the unit square with the
// chance diagonal, one legend entry per curve label. Image 640 x 600 pixels.
bool plot_roc_curves(const std::filesystem::path& png, const std::string& title,
                     const std::vector<Curve>& curves);

// Curves y(x) on common axes (a training curve per method, say), one legend entry per label;
// log_y plots y on a log scale (then every y must be > 0). Image 720 x 480 pixels.
bool plot_series(const std::filesystem::path& png, const std::string& title,
                 const std::string& x_label, const std::string& y_label,
                 const std::vector<Curve>& curves, bool log_y = false);

// One panel per method (gnuplot multiplot, up to 3 panels per row): the normal and anomalous
// score histograms overlaid, each normalised to a density (integral 1) over `bins` common bins
// spanning both samples. Image 480 * columns x 360 * rows pixels.
bool plot_score_histograms(const std::filesystem::path& png, const std::string& title,
                           const std::vector<ScoreSample>& methods, int bins = 30);

}  // namespace baypr::report
