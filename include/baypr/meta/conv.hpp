// baypr/meta/conv.hpp: a small convolutional embedding for grey (or few-channel) images.
//
//   ConvOptions { height, width, channels = {1, 16, 32}, strides = {2, 2}, output_dim = 64 }
//   Conv(options)
//
// Architecture: for each l, Conv2d(channels[l] -> channels[l+1], 3x3, stride strides[l],
// padding 1) -> ReLU; then global average pooling over positions; then Linear(channels.back(),
// output_dim). An output side is (side - 1) / stride + 1 (integer division), as in PyTorch.
//
// Input row: one image, channels[0] x height x width flattened channel-major then row-major
// (PyTorch's NCHW tensor reshaped to (n, -1)); for a grey image just its pixels row by row.
//
// theta layout, for conv layers l = 0 .. L-1 in order:
//   K_l  channels[l+1] x (9 channels[l]) column-major, column index ci * 9 + ky * 3 + kx
//        (kernel tap (ky, kx) reads input pixel (y * stride + ky - 1, x * stride + kx - 1)),
//   then b_l (channels[l+1]);
// then the head W (output_dim x channels.back(), column-major, as baypr::meta::Linear), then b.
// weight_offset / bias_offset / head_weight_offset / head_bias_offset give the positions.
//
// Each convolution is im2col + one GEMM over all images and positions of the batch. Forward and
// vjp are templates on theta's Scalar (double, or HvpScalar for exact second-order
// meta-gradients). ReLU's derivative at exactly 0 is taken as 0. The tape API
// (meta/embedding.hpp) does the same in double with reusable buffers, and the tangents of forward
// and vjp for Hessian-vector products (forward-over-reverse written out, all GEMMs in double).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/meta/embedding.hpp"
#include "baypr/meta/mlp.hpp"

namespace baypr::meta {

struct ConvOptions {
  Eigen::Index height = 0, width = 0;
  std::vector<Eigen::Index> channels = {1, 16, 32};  // channels[0]: input channels
  std::vector<Eigen::Index> strides = {2, 2};        // one per conv layer, each 1 or 2
  Eigen::Index output_dim = 64;
};

class Conv {
 public:
  explicit Conv(ConvOptions options) : opt_(std::move(options)) {
    constexpr const char* fn = "baypr::meta::Conv";
    if (opt_.height < 1)
      baypr::detail::throw_invalid(fn, "options.height",
                                   "must be >= 1, got " + std::to_string(opt_.height));
    if (opt_.width < 1)
      baypr::detail::throw_invalid(fn, "options.width",
                                   "must be >= 1, got " + std::to_string(opt_.width));
    if (opt_.channels.size() < 2) {
      baypr::detail::throw_invalid(
          fn, "options.channels",
          "must have at least 2 entries, got " + std::to_string(opt_.channels.size()));
    }
    for (std::size_t i = 0; i < opt_.channels.size(); ++i) {
      if (opt_.channels[i] < 1) {
        baypr::detail::throw_invalid(fn, "options.channels",
                                     "must be >= 1, got " + std::to_string(opt_.channels[i]) +
                                         " at index " + std::to_string(i));
      }
    }
    if (opt_.strides.size() + 1 != opt_.channels.size()) {
      baypr::detail::throw_invalid(fn, "options.strides",
                                   "must have one entry per conv layer (" +
                                       std::to_string(opt_.channels.size() - 1) + "), got " +
                                       std::to_string(opt_.strides.size()));
    }
    for (std::size_t i = 0; i < opt_.strides.size(); ++i) {
      if (opt_.strides[i] != 1 && opt_.strides[i] != 2) {
        baypr::detail::throw_invalid(fn, "options.strides",
                                     "must be 1 or 2, got " + std::to_string(opt_.strides[i]) +
                                         " at index " + std::to_string(i));
      }
    }
    if (opt_.output_dim < 1) {
      baypr::detail::throw_invalid(fn, "options.output_dim",
                                   "must be >= 1, got " + std::to_string(opt_.output_dim));
    }
    Eigen::Index h = opt_.height, w = opt_.width, off = 0;
    for (std::size_t l = 0; l < opt_.strides.size(); ++l) {
      Layer layer;
      layer.in_c = opt_.channels[l];
      layer.out_c = opt_.channels[l + 1];
      layer.stride = opt_.strides[l];
      layer.in_h = h;
      layer.in_w = w;
      layer.out_h = (h - 1) / layer.stride + 1;
      layer.out_w = (w - 1) / layer.stride + 1;
      layer.offset = off;
      off += layer.out_c * 9 * layer.in_c + layer.out_c;
      h = layer.out_h;
      w = layer.out_w;
      layers_.push_back(layer);
    }
    head_offset_ = off;
    parameter_count_ = off + opt_.output_dim * opt_.channels.back() + opt_.output_dim;
  }

  [[nodiscard]] Eigen::Index input_dim() const {
    return opt_.channels.front() * opt_.height * opt_.width;
  }
  [[nodiscard]] Eigen::Index output_dim() const { return opt_.output_dim; }
  [[nodiscard]] Eigen::Index parameter_count() const { return parameter_count_; }
  [[nodiscard]] const ConvOptions& options() const { return opt_; }
  [[nodiscard]] Eigen::Index layer_count() const {
    return static_cast<Eigen::Index>(layers_.size());
  }
  // Spatial size of conv layer `layer`'s output.
  [[nodiscard]] Eigen::Index output_height(Eigen::Index layer) const {
    return layers_[checked_layer(layer)].out_h;
  }
  [[nodiscard]] Eigen::Index output_width(Eigen::Index layer) const {
    return layers_[checked_layer(layer)].out_w;
  }

  [[nodiscard]] Eigen::Index weight_offset(Eigen::Index layer) const {
    return layers_[checked_layer(layer)].offset;
  }
  [[nodiscard]] Eigen::Index bias_offset(Eigen::Index layer) const {
    const Layer& L = layers_[checked_layer(layer)];
    return L.offset + L.out_c * 9 * L.in_c;
  }
  [[nodiscard]] Eigen::Index head_weight_offset() const { return head_offset_; }
  [[nodiscard]] Eigen::Index head_bias_offset() const {
    return head_offset_ + opt_.output_dim * opt_.channels.back();
  }

  // PyTorch's defaults: kernels and biases uniform in +-1/sqrt(9 channels[l]), head weights and
  // bias in +-1/sqrt(channels.back()). Seeded, identical on every platform.
  [[nodiscard]] Eigen::VectorXd initial_parameters(std::uint64_t seed) const {
    std::mt19937_64 rng(seed);
    Eigen::VectorXd theta(parameter_count_);
    for (const Layer& L : layers_) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(9 * L.in_c));
      for (Eigen::Index i = 0; i < L.out_c * 9 * L.in_c + L.out_c; ++i) {
        theta(L.offset + i) = baypr::uniform_symmetric(rng, bound);
      }
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(opt_.channels.back()));
    for (Eigen::Index i = head_offset_; i < parameter_count_; ++i)
      theta(i) = baypr::uniform_symmetric(rng, bound);
    return theta;
  }

  template <class Scalar, class DX>
  [[nodiscard]] RowMatrix<Scalar> forward(const ParamVector<Scalar>& theta,
                                          const Eigen::MatrixBase<DX>& x) const {
    detail::check_embedding_call("baypr::meta::Conv::forward", parameter_count_, input_dim(), theta,
                                 x);
    return run(theta, x).z;
  }

  template <class Scalar, class DX, class DG>
  [[nodiscard]] ParamVector<Scalar> vjp(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x,
                                        const Eigen::MatrixBase<DG>& dz) const {
    constexpr const char* fn = "baypr::meta::Conv::vjp";
    detail::check_embedding_call(fn, parameter_count_, input_dim(), theta, x);
    detail::check_output_gradient<Scalar>(fn, x.rows(), output_dim(), dz);
    const Trace<Scalar> t = run(theta, x);
    const Eigen::Index n = x.rows();
    const Eigen::Index c_last = opt_.channels.back();
    const RowMatrix<Scalar> g_out = dz.derived().template cast<Scalar>();

    ParamVector<Scalar> g(parameter_count_);
    Eigen::Map<RowMatrix<Scalar>> dW_head(g.data() + head_offset_, opt_.output_dim, c_last);
    dW_head = detail::layer_product<Scalar>(g_out.transpose(), t.pooled);
    g.segment(head_bias_offset(), opt_.output_dim) = g_out.colwise().sum().transpose();
    const RowMatrix<Scalar> d_pooled = detail::layer_product<Scalar>(g_out, head_weights(theta));

    // Average pooling backward: every position of image b gets d_pooled(b, c) / positions.
    const Layer& last = layers_.back();
    const Eigen::Index positions = last.out_h * last.out_w;
    const Scalar inv_positions(1.0 / static_cast<double>(positions));
    RowMatrix<Scalar> grad(n * positions, c_last);
    for (Eigen::Index c = 0; c < c_last; ++c) {
      Eigen::Map<RowMatrix<Scalar>> block(grad.col(c).data(), positions, n);
      block = (d_pooled.col(c).transpose() * inv_positions).replicate(positions, 1);
    }

    for (Eigen::Index li = layer_count() - 1; li >= 0; --li) {
      const auto l = static_cast<std::size_t>(li);
      const Layer& L = layers_[l];
      detail::relu_backward_in_place(grad, t.activations[l]);
      Eigen::Map<RowMatrix<Scalar>> dK(g.data() + L.offset, L.out_c, 9 * L.in_c);
      if (l == 0) {
        dK = detail::layer_product<Scalar>(grad.transpose(), t.input_patches);
      } else {
        dK = detail::layer_product<Scalar>(grad.transpose(), t.patches[l - 1]);
      }
      g.segment(L.offset + L.out_c * 9 * L.in_c, L.out_c) = grad.colwise().sum().transpose();
      if (l > 0) {
        const RowMatrix<Scalar> d_patches = detail::layer_product<Scalar>(grad, kernel(theta, L));
        grad = col2im(d_patches, L, n);
      }
    }
    return g;
  }

  // The tape API (meta/embedding.hpp): one image per row, so rows are independent.
  static constexpr bool rows_independent = true;
  struct Tape {
    Eigen::MatrixXd xt, input_patches;                  // inputs transposed, their im2col
    std::vector<Eigen::MatrixXd> patches, patches_dot;  // im2col of a[l - 1] (and tangent), l >= 1
    std::vector<Eigen::MatrixXd> a, a_dot;              // relu(h_l) and its tangent
    Eigen::MatrixXd pooled, pooled_dot, z, z_dot;
    Eigen::MatrixXd g, g_dot, d_patches, d_patches_dot, d_pooled, d_pooled_dot;  // backward scratch
    Eigen::Index rows = -1;    // rows of the taped inputs (-1: none)
    bool has_tangent = false;  // jvp_from_tape ran since the last forward_with_tape
  };

  const Eigen::MatrixXd& forward_with_tape(const Eigen::VectorXd& theta, const Eigen::MatrixXd& x,
                                           Tape& tape) const {
    detail::check_embedding_call("baypr::meta::Conv::forward_with_tape", parameter_count_,
                                 input_dim(), theta, x);
    tape.rows = -1;
    tape.has_tangent = false;
    const Eigen::Index n = x.rows();
    const Eigen::Index in_hw = opt_.height * opt_.width, w0 = opt_.width;
    tape.xt = x.transpose();  // one image per column: contiguous reads below
    const double* xt = tape.xt.data();
    const Eigen::Index in_dim = input_dim();
    im2col_into(
        layers_.front(), n,
        [&](Eigen::Index b, Eigen::Index ci, Eigen::Index iy, Eigen::Index ix) {
          return xt[b * in_dim + ci * in_hw + iy * w0 + ix];
        },
        tape.input_patches);
    tape.a.resize(layers_.size());
    tape.patches.resize(layers_.size() - 1);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      Eigen::MatrixXd& h = tape.a[l];
      h.resize(n * L.out_h * L.out_w, L.out_c);
      if (l == 0) {
        h.noalias() = tape.input_patches * kernel(theta, L).transpose();
      } else {
        activation_patches(tape.a[l - 1], L, n, tape.patches[l - 1]);
        h.noalias() = tape.patches[l - 1] * kernel(theta, L).transpose();
      }
      h.rowwise() += layer_bias(theta, L).transpose();
      h = h.cwiseMax(0.0);
    }
    pool(tape.a.back(), n, tape.pooled);
    tape.z.resize(n, opt_.output_dim);
    tape.z.noalias() = tape.pooled * head_weights(theta).transpose();
    tape.z.rowwise() += theta.segment(head_bias_offset(), opt_.output_dim).transpose();
    tape.rows = n;
    return tape.z;
  }

  void vjp_from_tape(const Eigen::VectorXd& theta, const Eigen::MatrixXd& x,
                     const Eigen::MatrixXd& dz, Tape& tape, Eigen::VectorXd& g) const {
    constexpr const char* fn = "baypr::meta::Conv::vjp_from_tape";
    detail::check_tape_call(fn, parameter_count_, input_dim(), tape.rows, theta, x);
    detail::check_tape_dz(fn, "d_embeddings", x.rows(), output_dim(), dz);
    const Eigen::Index n = x.rows();
    g.resize(parameter_count_);
    head_weight_block(g).noalias() = dz.transpose() * tape.pooled;
    g.segment(head_bias_offset(), opt_.output_dim) = dz.colwise().sum().transpose();
    tape.d_pooled.noalias() = dz * head_weights(theta);
    unpool(tape.d_pooled, n, tape.g);
    for (Eigen::Index li = layer_count() - 1; li >= 0; --li) {
      const auto l = static_cast<std::size_t>(li);
      const Layer& L = layers_[l];
      mask_in_place(tape.g, tape.a[l]);
      kernel_block(g, L).noalias() =
          tape.g.transpose() * (l == 0 ? tape.input_patches : tape.patches[l - 1]);
      g.segment(L.offset + L.out_c * 9 * L.in_c, L.out_c) = tape.g.colwise().sum().transpose();
      if (l > 0) {
        tape.d_patches.noalias() = tape.g * kernel(theta, L);
        col2im_into(tape.d_patches, L, n, tape.g);
      }
    }
  }

  const Eigen::MatrixXd& jvp_from_tape(const Eigen::VectorXd& theta, const Eigen::VectorXd& v,
                                       const Eigen::MatrixXd& x, Tape& tape) const {
    constexpr const char* fn = "baypr::meta::Conv::jvp_from_tape";
    detail::check_tape_call(fn, parameter_count_, input_dim(), tape.rows, theta, x);
    baypr::detail::check_size(fn, "direction", "size", v.size(), parameter_count_);
    const Eigen::Index n = x.rows();
    tape.a_dot.resize(layers_.size());
    tape.patches_dot.resize(layers_.size() - 1);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      Eigen::MatrixXd& h = tape.a_dot[l];
      h.resize(n * L.out_h * L.out_w, L.out_c);
      if (l == 0) {
        h.noalias() = tape.input_patches * kernel(v, L).transpose();
      } else {
        activation_patches(tape.a_dot[l - 1], L, n, tape.patches_dot[l - 1]);
        h.noalias() = tape.patches_dot[l - 1] * kernel(theta, L).transpose();
        h.noalias() += tape.patches[l - 1] * kernel(v, L).transpose();
      }
      h.rowwise() += layer_bias(v, L).transpose();
      mask_in_place(h, tape.a[l]);
    }
    pool(tape.a_dot.back(), n, tape.pooled_dot);
    tape.z_dot.resize(n, opt_.output_dim);
    tape.z_dot.noalias() = tape.pooled_dot * head_weights(theta).transpose();
    tape.z_dot.noalias() += tape.pooled * head_weights(v).transpose();
    tape.z_dot.rowwise() += v.segment(head_bias_offset(), opt_.output_dim).transpose();
    tape.has_tangent = true;
    return tape.z_dot;
  }

  void vjp_tangent_from_tape(const Eigen::VectorXd& theta, const Eigen::VectorXd& v,
                             const Eigen::MatrixXd& x, const Eigen::MatrixXd& dz,
                             const Eigen::MatrixXd& dz_dot, Tape& tape,
                             Eigen::VectorXd& g_dot) const {
    constexpr const char* fn = "baypr::meta::Conv::vjp_tangent_from_tape";
    detail::check_tape_call(fn, parameter_count_, input_dim(), tape.rows, theta, x);
    baypr::detail::check_size(fn, "direction", "size", v.size(), parameter_count_);
    detail::check_tape_dz(fn, "d_embeddings", x.rows(), output_dim(), dz);
    detail::check_tape_dz(fn, "d_embeddings_dot", x.rows(), output_dim(), dz_dot);
    if (!tape.has_tangent) {
      baypr::detail::throw_invalid(fn, "tape",
                                   "has no tangent for these inputs: call jvp_from_tape first");
    }
    const Eigen::Index n = x.rows();
    g_dot.resize(parameter_count_);
    auto dW_dot = head_weight_block(g_dot);
    dW_dot.noalias() = dz_dot.transpose() * tape.pooled;
    dW_dot.noalias() += dz.transpose() * tape.pooled_dot;
    g_dot.segment(head_bias_offset(), opt_.output_dim) = dz_dot.colwise().sum().transpose();
    tape.d_pooled.noalias() = dz * head_weights(theta);
    tape.d_pooled_dot.noalias() = dz_dot * head_weights(theta);
    tape.d_pooled_dot.noalias() += dz * head_weights(v);
    unpool(tape.d_pooled, n, tape.g);
    unpool(tape.d_pooled_dot, n, tape.g_dot);
    for (Eigen::Index li = layer_count() - 1; li >= 0; --li) {
      const auto l = static_cast<std::size_t>(li);
      const Layer& L = layers_[l];
      mask_in_place(tape.g, tape.a[l]);
      mask_in_place(tape.g_dot, tape.a[l]);
      auto dK_dot = kernel_block(g_dot, L);
      dK_dot.noalias() =
          tape.g_dot.transpose() * (l == 0 ? tape.input_patches : tape.patches[l - 1]);
      if (l > 0) dK_dot.noalias() += tape.g.transpose() * tape.patches_dot[l - 1];
      g_dot.segment(L.offset + L.out_c * 9 * L.in_c, L.out_c) =
          tape.g_dot.colwise().sum().transpose();
      if (l > 0) {
        tape.d_patches_dot.noalias() = tape.g_dot * kernel(theta, L);
        tape.d_patches_dot.noalias() += tape.g * kernel(v, L);
        col2im_into(tape.d_patches_dot, L, n, tape.g_dot);
        tape.d_patches.noalias() = tape.g * kernel(theta, L);
        col2im_into(tape.d_patches, L, n, tape.g);
      }
    }
  }

 private:
  struct Layer {
    Eigen::Index in_c = 0, out_c = 0, stride = 1, in_h = 0, in_w = 0, out_h = 0, out_w = 0,
                 offset = 0;
  };

  template <class Scalar>
  struct Trace {
    Eigen::MatrixXd input_patches;           // im2col of the inputs (data, so double)
    std::vector<RowMatrix<Scalar>> patches;  // im2col of activations[l], for layers 1 .. L-1
    std::vector<RowMatrix<Scalar>>
        activations;           // (n * out_h * out_w) x out_c, row b * hw + y * w + x
    RowMatrix<Scalar> pooled;  // n x channels.back()
    RowMatrix<Scalar> z;
  };

  std::size_t checked_layer(Eigen::Index layer) const {
    if (layer < 0 || layer >= layer_count()) {
      baypr::detail::throw_invalid(
          "baypr::meta::Conv", "layer",
          "must be in [0, " + std::to_string(layer_count()) + "), got " + std::to_string(layer));
    }
    return static_cast<std::size_t>(layer);
  }

  template <class Scalar>
  static Eigen::Map<const RowMatrix<Scalar>> kernel(const ParamVector<Scalar>& theta,
                                                    const Layer& L) {
    return Eigen::Map<const RowMatrix<Scalar>>(theta.data() + L.offset, L.out_c, 9 * L.in_c);
  }
  template <class Scalar>
  Eigen::Map<const RowMatrix<Scalar>> head_weights(const ParamVector<Scalar>& theta) const {
    return Eigen::Map<const RowMatrix<Scalar>>(theta.data() + head_offset_, opt_.output_dim,
                                               opt_.channels.back());
  }

  // im2col: row (b, oy, ox), column ci * 9 + ky * 3 + kx holds input (b, ci, iy, ix) with
  // iy = oy * stride + ky - 1, ix = ox * stride + kx - 1, and 0 outside the image (padding).
  // pixel(b, ci, iy, ix) reads the layer's input.
  template <class Scalar, class Pixel>
  static RowMatrix<Scalar> im2col(const Layer& L, Eigen::Index n, Pixel pixel) {
    RowMatrix<Scalar> p;
    im2col_into(L, n, pixel, p);
    return p;
  }

  template <class Scalar, class Pixel>
  static void im2col_into(const Layer& L, Eigen::Index n, Pixel pixel, RowMatrix<Scalar>& p) {
    const Eigen::Index out_hw = L.out_h * L.out_w;
    p.resize(n * out_hw, 9 * L.in_c);
    // Every entry is written (zeros for the padding), so no clearing pass over the whole matrix.
    for (Eigen::Index ci = 0; ci < L.in_c; ++ci) {
      for (Eigen::Index ky = 0; ky < 3; ++ky) {
        for (Eigen::Index kx = 0; kx < 3; ++kx) {
          Scalar* col = p.col(ci * 9 + ky * 3 + kx).data();
          for (Eigen::Index b = 0; b < n; ++b) {
            for (Eigen::Index oy = 0; oy < L.out_h; ++oy) {
              Scalar* dst = col + b * out_hw + oy * L.out_w;
              const Eigen::Index iy = oy * L.stride + ky - 1;
              if (iy < 0 || iy >= L.in_h) {
                for (Eigen::Index ox = 0; ox < L.out_w; ++ox) dst[ox] = Scalar(0);
                continue;
              }
              for (Eigen::Index ox = 0; ox < L.out_w; ++ox) {
                const Eigen::Index ix = ox * L.stride + kx - 1;
                dst[ox] = (ix < 0 || ix >= L.in_w) ? Scalar(0) : Scalar(pixel(b, ci, iy, ix));
              }
            }
          }
        }
      }
    }
  }

  // The adjoint of im2col for a layer whose input is an activation matrix: sums each patch
  // gradient back onto the input position it was read from.
  template <class Scalar>
  static RowMatrix<Scalar> col2im(const RowMatrix<Scalar>& d_patches, const Layer& L,
                                  Eigen::Index n) {
    RowMatrix<Scalar> d_in;
    col2im_into(d_patches, L, n, d_in);
    return d_in;
  }

  template <class Scalar>
  static void col2im_into(const RowMatrix<Scalar>& d_patches, const Layer& L, Eigen::Index n,
                          RowMatrix<Scalar>& d_in) {
    // A gather: each input position sums the (at most 9) patch entries that read it, in the
    // same tap order as a scatter over taps would, so one write per entry and no clearing pass.
    struct Taps {
      int count = 0;
      Eigen::Index k[3] = {0, 0, 0}, o[3] = {0, 0, 0};  // kernel tap and output position
    };
    const auto axis = [&](Eigen::Index in, Eigen::Index out) {
      std::vector<Taps> t(static_cast<std::size_t>(in));
      for (Eigen::Index k = 0; k < 3; ++k) {
        for (Eigen::Index o = 0; o < out; ++o) {
          const Eigen::Index i = o * L.stride + k - 1;
          if (i < 0 || i >= in) continue;
          Taps& e = t[static_cast<std::size_t>(i)];
          e.k[e.count] = k;
          e.o[e.count] = o;
          ++e.count;
        }
      }
      return t;
    };
    const std::vector<Taps> ys = axis(L.in_h, L.out_h), xs = axis(L.in_w, L.out_w);
    const Eigen::Index out_hw = L.out_h * L.out_w, in_hw = L.in_h * L.in_w, rows = d_patches.rows();
    d_in.resize(n * in_hw, L.in_c);
    for (Eigen::Index ci = 0; ci < L.in_c; ++ci) {
      Scalar* dst = d_in.col(ci).data();
      const Scalar* base = d_patches.col(ci * 9).data();
      for (Eigen::Index b = 0; b < n; ++b) {
        for (Eigen::Index iy = 0; iy < L.in_h; ++iy) {
          const Taps& ty = ys[static_cast<std::size_t>(iy)];
          for (Eigen::Index ix = 0; ix < L.in_w; ++ix) {
            const Taps& tx = xs[static_cast<std::size_t>(ix)];
            Scalar sum(0);
            for (int a = 0; a < ty.count; ++a) {
              for (int c = 0; c < tx.count; ++c) {
                sum +=
                    base[(ty.k[a] * 3 + tx.k[c]) * rows + b * out_hw + ty.o[a] * L.out_w + tx.o[c]];
              }
            }
            dst[b * in_hw + iy * L.in_w + ix] = sum;
          }
        }
      }
    }
  }

  // Tape helpers (double).
  static void activation_patches(const Eigen::MatrixXd& a, const Layer& L, Eigen::Index n,
                                 Eigen::MatrixXd& p) {
    const Eigen::Index hw = L.in_h * L.in_w, w = L.in_w;
    im2col_into(
        L, n,
        [&](Eigen::Index b, Eigen::Index ci, Eigen::Index iy, Eigen::Index ix) {
          return a(b * hw + iy * w + ix, ci);
        },
        p);
  }
  static void mask_in_place(Eigen::MatrixXd& grad, const Eigen::MatrixXd& a) {
    grad = (a.array() > 0.0).select(grad, 0.0);
  }
  // Global average pooling of the last activations (rows b * hw .. b * hw + hw - 1 are image b)
  // and its adjoint.
  void pool(const Eigen::MatrixXd& a, Eigen::Index n, Eigen::MatrixXd& pooled) const {
    const Layer& last = layers_.back();
    const Eigen::Index positions = last.out_h * last.out_w;
    const double inv_positions = 1.0 / static_cast<double>(positions);
    pooled.resize(n, last.out_c);
    for (Eigen::Index c = 0; c < last.out_c; ++c) {
      Eigen::Map<const Eigen::MatrixXd> block(a.col(c).data(), positions, n);
      pooled.col(c) = block.colwise().sum().transpose() * inv_positions;
    }
  }
  void unpool(const Eigen::MatrixXd& d_pooled, Eigen::Index n, Eigen::MatrixXd& grad) const {
    const Layer& last = layers_.back();
    const Eigen::Index positions = last.out_h * last.out_w;
    const double inv_positions = 1.0 / static_cast<double>(positions);
    grad.resize(n * positions, last.out_c);
    for (Eigen::Index c = 0; c < last.out_c; ++c) {
      Eigen::Map<Eigen::MatrixXd> block(grad.col(c).data(), positions, n);
      block = (d_pooled.col(c).transpose() * inv_positions).replicate(positions, 1);
    }
  }
  static Eigen::VectorBlock<const Eigen::VectorXd> layer_bias(const Eigen::VectorXd& theta,
                                                              const Layer& L) {
    return theta.segment(L.offset + L.out_c * 9 * L.in_c, L.out_c);
  }
  static Eigen::Map<Eigen::MatrixXd> kernel_block(Eigen::VectorXd& g, const Layer& L) {
    return Eigen::Map<Eigen::MatrixXd>(g.data() + L.offset, L.out_c, 9 * L.in_c);
  }
  Eigen::Map<Eigen::MatrixXd> head_weight_block(Eigen::VectorXd& g) const {
    return Eigen::Map<Eigen::MatrixXd>(g.data() + head_offset_, opt_.output_dim,
                                       opt_.channels.back());
  }

  template <class Scalar, class DX>
  Trace<Scalar> run(const ParamVector<Scalar>& theta, const Eigen::MatrixBase<DX>& x) const {
    Trace<Scalar> t;
    const Eigen::Index n = x.rows();
    const auto& xd = x.derived();
    const Eigen::Index in_hw = opt_.height * opt_.width, w0 = opt_.width;
    t.input_patches = im2col<double>(
        layers_.front(), n, [&](Eigen::Index b, Eigen::Index ci, Eigen::Index iy, Eigen::Index ix) {
          return static_cast<double>(xd.coeff(b, ci * in_hw + iy * w0 + ix));
        });
    t.activations.reserve(layers_.size());
    t.patches.reserve(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      RowMatrix<Scalar> h;
      if (l == 0) {
        h = detail::layer_product<Scalar>(t.input_patches, kernel(theta, L).transpose());
      } else {
        const RowMatrix<Scalar>& a = t.activations[l - 1];
        const Eigen::Index hw = L.in_h * L.in_w, w = L.in_w;
        t.patches.push_back(im2col<Scalar>(
            L, n, [&](Eigen::Index b, Eigen::Index ci, Eigen::Index iy, Eigen::Index ix) {
              return a(b * hw + iy * w + ix, ci);
            }));
        h = detail::layer_product<Scalar>(t.patches.back(), kernel(theta, L).transpose());
      }
      h.rowwise() += theta.segment(L.offset + L.out_c * 9 * L.in_c, L.out_c).transpose();
      detail::relu_in_place(h);
      t.activations.push_back(std::move(h));
    }

    // Global average pooling: image b's positions are the contiguous rows b * hw .. b * hw + hw
    // - 1.
    const Layer& last = layers_.back();
    const Eigen::Index positions = last.out_h * last.out_w, c_last = last.out_c;
    const Scalar inv_positions(1.0 / static_cast<double>(positions));
    t.pooled.resize(n, c_last);
    for (Eigen::Index c = 0; c < c_last; ++c) {
      Eigen::Map<const RowMatrix<Scalar>> block(t.activations.back().col(c).data(), positions, n);
      t.pooled.col(c) = block.colwise().sum().transpose() * inv_positions;
    }
    t.z = detail::layer_product<Scalar>(t.pooled, head_weights(theta).transpose());
    t.z.rowwise() += theta.segment(head_bias_offset(), opt_.output_dim).transpose();
    return t;
  }

  ConvOptions opt_;
  std::vector<Layer> layers_;
  Eigen::Index head_offset_ = 0, parameter_count_ = 0;
};

static_assert(TwiceDifferentiableEmbedding<Conv>);
static_assert(TangentTapedEmbedding<Conv> && RowIndependentEmbedding<Conv>);

}  // namespace baypr::meta
