// src/cuda/context.cu: devices, the Context, device memory and copies.
#include <string>

#include "context.cuh"

namespace baypr::cuda {

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device / no driver" status
    return 0;
  }
  return n;
}

std::string device_description(int device) {
  int n = 0;
  const cudaError_t s = cudaGetDeviceCount(&n);
  if (s != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorName(s) + " (" + cudaGetErrorString(s) +
           ")";
  }
  if (device < 0 || device >= n) {
    return "no CUDA device " + std::to_string(device) + " (" + std::to_string(n) + " present)";
  }
  cudaDeviceProp prop{};
  BAYPR_CUDA_CHECK("baypr::cuda::device_description", cudaGetDeviceProperties(&prop, device));
  return std::string(prop.name) + " (compute capability " + std::to_string(prop.major) + "." +
         std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 20) + " MiB)";
}

Context::Context(int device) : impl_(std::make_unique<Impl>()) {
  constexpr const char* fn = "baypr::cuda::Context::Context";
  const int n = device_count();
  if (device < 0 || device >= n) {
    baypr::detail::throw_numerical(
        fn, "no CUDA device " + std::to_string(device) + ": " + device_description(device));
  }
  Impl& c = *impl_;
  c.device = device;
  BAYPR_CUDA_CHECK(fn, cudaSetDevice(device));
  // A failure below leaves impl_ to Impl's destructor, which releases what was made.
  BAYPR_CUDA_CHECK(fn, cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  BAYPR_CUDA_CHECK(fn, cublasCreate(&c.blas));
  BAYPR_CUDA_CHECK(fn, cublasSetStream(c.blas, c.stream));
  BAYPR_CUDA_CHECK(fn, cusolverDnCreate(&c.solver));
  BAYPR_CUDA_CHECK(fn, cusolverDnSetStream(c.solver, c.stream));
}

Context::~Context() = default;
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;

int Context::device() const {
  return impl_->device;
}

void* Context::native_stream() const {
  return impl_->stream;
}

void Context::synchronize() const {
  BAYPR_CUDA_CHECK("baypr::cuda::Context::synchronize", cudaStreamSynchronize(impl_->stream));
}

namespace detail {

void* device_allocate(std::size_t bytes) {
  void* p = nullptr;
  BAYPR_CUDA_CHECK("baypr::cuda::DeviceArray", cudaMalloc(&p, bytes));
  return p;
}

void device_free(void* p) noexcept {
  if (p != nullptr) cudaFree(p);
}

namespace {
void copy(const Context& ctx, void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
          const char* fn) {
  if (bytes == 0) return;
  BAYPR_CUDA_CHECK(fn, cudaMemcpyAsync(dst, src, bytes, kind, ctx.impl().stream));
  BAYPR_CUDA_CHECK(fn, cudaStreamSynchronize(ctx.impl().stream));
}
}  // namespace

void copy_to_device(const Context& ctx, void* dst, const void* src, std::size_t bytes) {
  copy(ctx, dst, src, bytes, cudaMemcpyHostToDevice, "baypr::cuda::DeviceArray::upload");
}
void copy_to_host(const Context& ctx, void* dst, const void* src, std::size_t bytes) {
  copy(ctx, dst, src, bytes, cudaMemcpyDeviceToHost, "baypr::cuda::DeviceArray::download");
}
void copy_on_device(const Context& ctx, void* dst, const void* src, std::size_t bytes) {
  copy(ctx, dst, src, bytes, cudaMemcpyDeviceToDevice, "baypr::cuda::copy_on_device");
}

}  // namespace detail
}  // namespace baypr::cuda
