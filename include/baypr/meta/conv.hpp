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
// meta-gradients). ReLU's derivative at exactly 0 is taken as 0.
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
        theta(L.offset + i) = detail::uniform_symmetric(rng, bound);
      }
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(opt_.channels.back()));
    for (Eigen::Index i = head_offset_; i < parameter_count_; ++i)
      theta(i) = detail::uniform_symmetric(rng, bound);
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
    const Eigen::Index out_hw = L.out_h * L.out_w;
    RowMatrix<Scalar> p = RowMatrix<Scalar>::Zero(n * out_hw, 9 * L.in_c);
    for (Eigen::Index ci = 0; ci < L.in_c; ++ci) {
      for (Eigen::Index ky = 0; ky < 3; ++ky) {
        for (Eigen::Index kx = 0; kx < 3; ++kx) {
          Scalar* col = p.col(ci * 9 + ky * 3 + kx).data();
          for (Eigen::Index b = 0; b < n; ++b) {
            for (Eigen::Index oy = 0; oy < L.out_h; ++oy) {
              const Eigen::Index iy = oy * L.stride + ky - 1;
              if (iy < 0 || iy >= L.in_h) continue;
              for (Eigen::Index ox = 0; ox < L.out_w; ++ox) {
                const Eigen::Index ix = ox * L.stride + kx - 1;
                if (ix < 0 || ix >= L.in_w) continue;
                col[b * out_hw + oy * L.out_w + ox] = pixel(b, ci, iy, ix);
              }
            }
          }
        }
      }
    }
    return p;
  }

  // The adjoint of im2col for a layer whose input is an activation matrix: sums each patch
  // gradient back onto the input position it was read from.
  template <class Scalar>
  static RowMatrix<Scalar> col2im(const RowMatrix<Scalar>& d_patches, const Layer& L,
                                  Eigen::Index n) {
    const Eigen::Index out_hw = L.out_h * L.out_w, in_hw = L.in_h * L.in_w;
    RowMatrix<Scalar> d_in = RowMatrix<Scalar>::Zero(n * in_hw, L.in_c);
    for (Eigen::Index ci = 0; ci < L.in_c; ++ci) {
      Scalar* dst = d_in.col(ci).data();
      for (Eigen::Index ky = 0; ky < 3; ++ky) {
        for (Eigen::Index kx = 0; kx < 3; ++kx) {
          const Scalar* src = d_patches.col(ci * 9 + ky * 3 + kx).data();
          for (Eigen::Index b = 0; b < n; ++b) {
            for (Eigen::Index oy = 0; oy < L.out_h; ++oy) {
              const Eigen::Index iy = oy * L.stride + ky - 1;
              if (iy < 0 || iy >= L.in_h) continue;
              for (Eigen::Index ox = 0; ox < L.out_w; ++ox) {
                const Eigen::Index ix = ox * L.stride + kx - 1;
                if (ix < 0 || ix >= L.in_w) continue;
                dst[b * in_hw + iy * L.in_w + ix] += src[b * out_hw + oy * L.out_w + ox];
              }
            }
          }
        }
      }
    }
    return d_in;
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

}  // namespace baypr::meta
