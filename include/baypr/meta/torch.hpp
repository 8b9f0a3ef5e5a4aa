// baypr/meta/torch.hpp: LibTorch networks as baypr embeddings, so a network written in PyTorch
// can be meta-trained and adapted here (needs LibTorch: link baypr::torch, BAYPR_WITH_TORCH=ON).
//
//   TorchScriptEmbedding(path, input_dim, output_dim, sample_shape = {})    torch::jit::load(path)
//   TorchScriptEmbedding(torch::jit::Module, input_dim, output_dim, sample_shape = {})
//   TorchModuleEmbedding<M>(M module, input_dim, output_dim, sample_shape = {})
//       M a torch::nn module handle: a ModuleHolder (torch::nn::Sequential, a TORCH_MODULE type)
//       or a std::shared_ptr to a torch::nn::Module subclass with forward(Tensor) -> Tensor
//   .initial_parameters()   the module's parameters when the embedding was built, as theta
//
// Both are DifferentiableEmbeddings (meta/embedding.hpp): forward by the module, vjp by torch's
// autograd (torch::autograd::grad, so no .grad is accumulated anywhere). They work in double
// only, so meta-gradients through them are first order (MetaGradient::first_order).
//
// theta is every parameter of module.parameters(), in that order, each flattened in C order (a
// Linear weight out x in row by row; note meta::Mlp stores W column-major). Each call copies theta
// into the parameters and runs the module on X (n x input_dim) viewed as (n, sample_shape...)
// (sample_shape defaults to {input_dim}; e.g. {1, 28, 28} for images stored one per row); the
// output must have n rows and output_dim values per row (extra dimensions are flattened).
// Parameters with requires_grad == false stay fixed in effect: their gradient is reported as 0.
//
// The constructor converts the module in place to float64 on the CPU and puts it in eval mode
// (dropout off, batch norm on its running statistics), so forward is a deterministic function of
// theta and X; it then validates output_dim with a forward of one zero sample (the dimensions and
// sample_shape are checked before the module is touched).
//
// State and threads: the module is a handle and is shared with the caller and with copies of the
// embedding; every call overwrites its parameters with theta, so nothing carries from one call to
// the next, but concurrent calls on the same module race. Use one module (and embedding) per
// thread. After a call the module holds the last theta used.
//
// Note: LibTorch's headers bring glog's CHECK macro, which clashes with Catch2's CHECK; in a
// Catch2 test include this header first and #undef CHECK after it.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <Eigen/Core>
#include <concepts>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "baypr/core/errors.hpp"
#include "baypr/meta/embedding.hpp"

namespace baypr::meta {

namespace detail {

// A torch::nn module handle whose forward maps one tensor to one tensor.
template <class M>
concept TorchModuleHandle = requires(M& m, const torch::Tensor& t) {
  { m->forward(t) } -> std::convertible_to<torch::Tensor>;
  { m->parameters() } -> std::convertible_to<std::vector<torch::Tensor>>;
  m->eval();
  m->to(torch::kCPU, torch::kDouble);
};

// The useful part of a torch error: a c10::Error without its C++ backtrace; for TorchScript
// interpreter errors (a TorchScript traceback, then the Python-style error) the last line.
inline std::string torch_message(const std::exception& e) {
  std::string s;
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
    s = c10->what_without_backtrace();
  } else {
    s = e.what();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    const auto nl = s.rfind('\n');
    if (nl != std::string::npos) s.erase(0, nl + 1);
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// What both adapters share: the parameter list and its layout in theta, the input shape, the
// tensor <-> Eigen copies. Run is a callable (const torch::Tensor&) -> torch::Tensor.
class TorchEmbeddingCore {
 public:
  TorchEmbeddingCore(const char* fn, std::vector<torch::Tensor> parameters, Eigen::Index input_dim,
                     Eigen::Index output_dim, std::vector<std::int64_t> sample_shape)
      : parameters_(std::move(parameters)),
        shape_(batch_shape(fn, input_dim, output_dim, std::move(sample_shape))),
        in_(input_dim),
        out_(output_dim) {
    offsets_.reserve(parameters_.size() + 1);
    Eigen::Index off = 0;
    for (const torch::Tensor& p : parameters_) {
      offsets_.push_back(off);
      off += static_cast<Eigen::Index>(p.numel());
    }
    offsets_.push_back(off);
    initial_ = Eigen::VectorXd(off);
    for (std::size_t i = 0; i < parameters_.size(); ++i) copy_out(parameters_[i], i, initial_);
  }

  // Checks the dimensions; returns (0, sample_shape...), sample_shape defaulting to {input_dim}.
  static std::vector<std::int64_t> batch_shape(const char* fn, Eigen::Index input_dim,
                                               Eigen::Index output_dim,
                                               std::vector<std::int64_t> sample_shape) {
    if (input_dim < 1) {
      baypr::detail::throw_invalid(fn, "input_dim",
                                   "must be >= 1, got " + std::to_string(input_dim));
    }
    if (output_dim < 1) {
      baypr::detail::throw_invalid(fn, "output_dim",
                                   "must be >= 1, got " + std::to_string(output_dim));
    }
    if (sample_shape.empty()) sample_shape.push_back(input_dim);
    std::int64_t product = 1;
    std::string shown;
    for (const std::int64_t d : sample_shape) {
      shown += (shown.empty() ? "" : ", ") + std::to_string(d);
      if (d < 1)
        baypr::detail::throw_invalid(fn, "sample_shape",
                                     "must have entries >= 1, got (" + shown + ")");
      product *= d;
    }
    if (product != input_dim) {
      baypr::detail::throw_invalid(fn, "sample_shape",
                                   "must have input_dim = " + std::to_string(input_dim) +
                                       " elements, got (" + shown + ") with " +
                                       std::to_string(product));
    }
    sample_shape.insert(sample_shape.begin(), 0);  // the batch dimension, set per call
    return sample_shape;
  }

  [[nodiscard]] Eigen::Index input_dim() const { return in_; }
  [[nodiscard]] Eigen::Index output_dim() const { return out_; }
  [[nodiscard]] Eigen::Index parameter_count() const { return offsets_.back(); }
  [[nodiscard]] const Eigen::VectorXd& initial_parameters() const { return initial_; }

  // One zero sample through the module: the output must have output_dim values.
  template <class Run>
  void probe(const char* fn, const Run& run) const {
    torch::NoGradGuard no_grad;
    torch::Tensor z;
    try {
      z = run(input(Eigen::MatrixXd::Zero(1, in_)));
    } catch (const std::exception& e) {  // c10::Error, or torch::jit::JITException from TorchScript
      baypr::detail::throw_invalid(
          fn, "module",
          "fails on one zero sample of shape " + shape_string(1) + ": " + torch_message(e));
    }
    if (z.dim() < 1 || z.size(0) != 1 || z.numel() != out_) {
      baypr::detail::throw_invalid(fn, "output_dim",
                                   "is " + std::to_string(out_) +
                                       ", but the module maps a sample of shape " +
                                       shape_string(1) + " to shape " + sizes_string(z));
    }
  }

  template <class Run>
  Eigen::MatrixXd forward(const char* fn, const Run& run, const Eigen::VectorXd& theta,
                          const Eigen::MatrixXd& x) const {
    torch::NoGradGuard no_grad;
    load(theta);
    return output(fn, run(input(x)), x.rows());
  }

  template <class Run>
  Eigen::VectorXd vjp(const char* fn, const Run& run, const Eigen::VectorXd& theta,
                      const Eigen::MatrixXd& x, const Eigen::MatrixXd& dz) const {
    {
      torch::NoGradGuard no_grad;
      load(theta);
    }
    std::vector<torch::Tensor> trainable;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      if (parameters_[i].requires_grad()) {
        trainable.push_back(parameters_[i]);
        which.push_back(i);
      }
    }
    Eigen::VectorXd g = Eigen::VectorXd::Zero(parameter_count());
    torch::AutoGradMode grad_on(true);
    torch::Tensor z = run(input(x));
    check_output(fn, z, x.rows());
    z = z.reshape({x.rows(), out_});
    if (trainable.empty() || !z.requires_grad()) return g;  // nothing depends on theta
    const std::vector<torch::Tensor> grads =
        torch::autograd::grad({z}, trainable, {tensor(dz)}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t k = 0; k < grads.size(); ++k) {
      if (grads[k].defined()) copy_out(grads[k], which[k], g);
    }
    return g;
  }

 private:
  // A row-major n x m float64 tensor holding m (an Eigen matrix, column-major).
  static torch::Tensor tensor(const Eigen::MatrixXd& m) {
    torch::Tensor t = torch::empty({m.rows(), m.cols()}, torch::kDouble);
    Eigen::Map<Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        t.data_ptr<double>(), m.rows(), m.cols()) = m;
    return t;
  }

  torch::Tensor input(const Eigen::MatrixXd& x) const {
    std::vector<std::int64_t> shape = shape_;
    shape[0] = x.rows();
    return tensor(x).view(shape);
  }

  void load(const Eigen::VectorXd& theta) const {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      torch::Tensor p = parameters_[i];
      // from_blob only reads here (copy_ source); it never writes through the pointer.
      p.copy_(torch::from_blob(const_cast<double*>(theta.data() + offsets_[i]), p.sizes(),
                               torch::kDouble));
    }
  }

  void copy_out(const torch::Tensor& t, std::size_t i, Eigen::VectorXd& into) const {
    const torch::Tensor c = t.detach().to(torch::kDouble).contiguous();
    into.segment(offsets_[i], offsets_[i + 1] - offsets_[i]) =
        Eigen::Map<const Eigen::VectorXd>(c.data_ptr<double>(), offsets_[i + 1] - offsets_[i]);
  }

  void check_output(const char* fn, const torch::Tensor& z, Eigen::Index n) const {
    if (z.dim() < 1 || z.size(0) != n || z.numel() != n * out_) {
      baypr::detail::throw_invalid(fn, "module",
                                   "must map inputs of shape " + shape_string(n) + " to " +
                                       std::to_string(n) + " rows of " + std::to_string(out_) +
                                       " values, got shape " + sizes_string(z));
    }
  }

  Eigen::MatrixXd output(const char* fn, const torch::Tensor& z, Eigen::Index n) const {
    check_output(fn, z, n);
    const torch::Tensor c = z.reshape({n, out_}).to(torch::kDouble).contiguous();
    return Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
        c.data_ptr<double>(), n, out_);
  }

  std::string shape_string(Eigen::Index n) const {
    std::string s = "(" + std::to_string(n);
    for (std::size_t i = 1; i < shape_.size(); ++i) s += ", " + std::to_string(shape_[i]);
    return s + ")";
  }

  static std::string sizes_string(const torch::Tensor& t) {
    std::string s = "(";
    for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + ")";
  }

  std::vector<torch::Tensor> parameters_;  // handles sharing the module's storage
  std::vector<std::int64_t> shape_;        // (batch, sample_shape...)
  std::vector<Eigen::Index> offsets_;      // start of each parameter in theta, then the total
  Eigen::Index in_, out_;
  Eigen::VectorXd initial_;
};

inline torch::jit::Module load_torchscript(const std::filesystem::path& path) {
  try {
    return torch::jit::load(path.string());
  } catch (const std::exception& e) {
    throw baypr::io_error("baypr::meta::TorchScriptEmbedding: file '" + path.string() +
                          "': cannot load TorchScript module: " + torch_message(e));
  }
}

inline std::vector<torch::Tensor> parameter_list(const torch::jit::Module& m) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : m.parameters()) out.push_back(p);
  return out;
}

// module(x) for the two kinds of module (the module pointer outlives every call).
struct JitRunner {
  torch::jit::Module* module;
  torch::Tensor operator()(const torch::Tensor& x) const { return module->forward({x}).toTensor(); }
};

template <class M>
struct ModuleRunner {
  M* module;
  torch::Tensor operator()(const torch::Tensor& x) const { return (*module)->forward(x); }
};

}  // namespace detail

// A TorchScript module (torch.jit.script / torch.jit.trace, saved with .save(path)).
class TorchScriptEmbedding {
 public:
  TorchScriptEmbedding(const std::filesystem::path& path, Eigen::Index input_dim,
                       Eigen::Index output_dim, std::vector<std::int64_t> sample_shape = {})
      : TorchScriptEmbedding(detail::load_torchscript(path), input_dim, output_dim,
                             std::move(sample_shape)) {}

  TorchScriptEmbedding(torch::jit::Module module, Eigen::Index input_dim, Eigen::Index output_dim,
                       std::vector<std::int64_t> sample_shape = {})
      : module_(prepare(std::move(module), input_dim, output_dim, sample_shape)),
        core_(fn_ctor, detail::parameter_list(module_), input_dim, output_dim,
              std::move(sample_shape)) {
    core_.probe(fn_ctor, runner());
  }

  [[nodiscard]] Eigen::Index input_dim() const { return core_.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return core_.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return core_.parameter_count(); }
  [[nodiscard]] Eigen::VectorXd initial_parameters() const { return core_.initial_parameters(); }
  [[nodiscard]] torch::jit::Module module() const { return module_; }

  template <class Scalar, class DX>
  requires std::same_as<Scalar, double>
  [[nodiscard]] Eigen::MatrixXd forward(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x) const {
    constexpr const char* fn = "baypr::meta::TorchScriptEmbedding::forward";
    detail::check_embedding_call(fn, parameter_count(), input_dim(), theta, x);
    return core_.forward(fn, runner(), theta, x.derived());
  }

  template <class Scalar, class DX, class DG>
  requires std::same_as<Scalar, double>
  [[nodiscard]] Eigen::VectorXd vjp(const ParamVector<Scalar>& theta,
                                    const Eigen::MatrixBase<DX>& x,
                                    const Eigen::MatrixBase<DG>& dz) const {
    constexpr const char* fn = "baypr::meta::TorchScriptEmbedding::vjp";
    detail::check_embedding_call(fn, parameter_count(), input_dim(), theta, x);
    detail::check_output_gradient<Scalar>(fn, x.rows(), output_dim(), dz);
    baypr::detail::check_finite(fn, "d_embeddings", dz);
    return core_.vjp(fn, runner(), theta, x.derived(), dz.derived());
  }

 private:
  static constexpr const char* fn_ctor = "baypr::meta::TorchScriptEmbedding";

  // Arguments are checked before the (shared) module is converted.
  static torch::jit::Module prepare(torch::jit::Module m, Eigen::Index input_dim,
                                    Eigen::Index output_dim,
                                    const std::vector<std::int64_t>& sample_shape) {
    (void)detail::TorchEmbeddingCore::batch_shape(fn_ctor, input_dim, output_dim, sample_shape);
    m.to(torch::kCPU, torch::kDouble);
    m.eval();
    return m;
  }

  detail::JitRunner runner() const { return {&module_}; }

  mutable torch::jit::Module module_;  // a handle; forward is non-const in the jit API
  detail::TorchEmbeddingCore core_;
};

// A torch::nn module built in C++ (see detail::TorchModuleHandle for what M must offer).
template <detail::TorchModuleHandle M>
class TorchModuleEmbedding {
 public:
  TorchModuleEmbedding(M module, Eigen::Index input_dim, Eigen::Index output_dim,
                       std::vector<std::int64_t> sample_shape = {})
      : module_(prepare(std::move(module), input_dim, output_dim, sample_shape)),
        core_(fn_ctor, module_->parameters(), input_dim, output_dim, std::move(sample_shape)) {
    core_.probe(fn_ctor, runner());
  }

  [[nodiscard]] Eigen::Index input_dim() const { return core_.input_dim(); }
  [[nodiscard]] Eigen::Index output_dim() const { return core_.output_dim(); }
  [[nodiscard]] Eigen::Index parameter_count() const { return core_.parameter_count(); }
  [[nodiscard]] Eigen::VectorXd initial_parameters() const { return core_.initial_parameters(); }
  [[nodiscard]] const M& module() const { return module_; }

  template <class Scalar, class DX>
  requires std::same_as<Scalar, double>
  [[nodiscard]] Eigen::MatrixXd forward(const ParamVector<Scalar>& theta,
                                        const Eigen::MatrixBase<DX>& x) const {
    constexpr const char* fn = "baypr::meta::TorchModuleEmbedding::forward";
    detail::check_embedding_call(fn, parameter_count(), input_dim(), theta, x);
    return core_.forward(fn, runner(), theta, x.derived());
  }

  template <class Scalar, class DX, class DG>
  requires std::same_as<Scalar, double>
  [[nodiscard]] Eigen::VectorXd vjp(const ParamVector<Scalar>& theta,
                                    const Eigen::MatrixBase<DX>& x,
                                    const Eigen::MatrixBase<DG>& dz) const {
    constexpr const char* fn = "baypr::meta::TorchModuleEmbedding::vjp";
    detail::check_embedding_call(fn, parameter_count(), input_dim(), theta, x);
    detail::check_output_gradient<Scalar>(fn, x.rows(), output_dim(), dz);
    baypr::detail::check_finite(fn, "d_embeddings", dz);
    return core_.vjp(fn, runner(), theta, x.derived(), dz.derived());
  }

 private:
  static constexpr const char* fn_ctor = "baypr::meta::TorchModuleEmbedding";

  static M prepare(M m, Eigen::Index input_dim, Eigen::Index output_dim,
                   const std::vector<std::int64_t>& sample_shape) {
    (void)detail::TorchEmbeddingCore::batch_shape(fn_ctor, input_dim, output_dim, sample_shape);
    m->to(torch::kCPU, torch::kDouble);
    m->eval();
    return m;
  }

  detail::ModuleRunner<M> runner() const { return {&module_}; }

  mutable M module_;
  detail::TorchEmbeddingCore core_;
};

static_assert(DifferentiableEmbedding<TorchScriptEmbedding>);
static_assert(!TwiceDifferentiableEmbedding<TorchScriptEmbedding>);
static_assert(DifferentiableEmbedding<TorchModuleEmbedding<torch::nn::Sequential>>);
static_assert(!TwiceDifferentiableEmbedding<TorchModuleEmbedding<torch::nn::Sequential>>);

}  // namespace baypr::meta
