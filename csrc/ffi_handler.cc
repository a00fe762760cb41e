#include "ffi_handler.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernel_abi.h"
#include "launcher.h"
#include "library_cache.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jtc {
namespace {

// Everything EXECUTE needs, built once per call site at INSTANTIATE so that
// the per-call path only binds buffers and launches.
struct KernelState {
  static ffi::TypeId id;

  KernelLaunchFn launch = nullptr;
  KernelMessageFn message = nullptr;  // optional: describes a failed program
  std::string kernel_name;
  Grid grid;
  int32_t num_threads = 0;
  std::vector<int64_t> arg_map;         // b >= 0: buffer b; -(k+1): scalar k
  std::vector<uint64_t> scalars;        // the slots scalar params point at
  std::vector<int64_t> zeroed_outputs;  // result indices
  size_t min_buffers = 0;  // 1 + largest buffer index in arg_map
  size_t min_results = 0;  // 1 + largest index in zeroed_outputs
};

// jaxlib <= 0.10.2 registers queued FFI targets before queued types when the
// CPU client is created, so a state type whose id XLA would assign later is
// still 0 when the handler is registered and the backend fails to start.
// A fixed non-zero id (XLA checks it is unique; its own ids count up from 1)
// makes the order irrelevant.
ffi::TypeId KernelState::id = {0x4A54435354000001LL};

std::atomic<int64_t> g_instantiate_calls{0};
std::atomic<int64_t> g_execute_calls{0};

ffi::Error Invalid(std::string message) {
  return ffi::Error::InvalidArgument(std::move(message));
}

// Decodes one attribute; the message names it when it is missing or mistyped.
template <typename T>
ffi::Error GetAttr(const ffi::Dictionary& attrs, std::string_view name,
                   T* out) {
  if (!attrs.contains(name)) {
    return Invalid("missing attribute '" + std::string(name) + "'");
  }
  ffi::ErrorOr<T> value = attrs.get<T>(name);
  if (value.has_error()) {
    return Invalid("attribute '" + std::string(name) +
                   "': " + value.error().message());
  }
  *out = *value;
  return ffi::Error::Success();
}

#define JTC_RETURN_IF_ERROR(expr)               \
  do {                                          \
    if (ffi::Error e = (expr); e.failure()) {   \
      return e;                                 \
    }                                           \
  } while (0)

ffi::Error CheckArgMap(ffi::Span<const int64_t> arg_map, size_t num_scalars,
                       KernelState* state) {
  if (arg_map.size() > static_cast<size_t>(kMaxKernelParams)) {
    return Invalid("the kernel has " + std::to_string(arg_map.size()) +
                   " parameters; at most " + std::to_string(kMaxKernelParams) +
                   " are supported");
  }
  for (size_t i = 0; i < arg_map.size(); ++i) {
    const int64_t m = arg_map[i];
    if (m >= 0) {
      state->min_buffers = std::max(state->min_buffers, size_t(m) + 1);
    } else if (uint64_t(-(m + 1)) >= num_scalars) {
      return Invalid("arg_map[" + std::to_string(i) + "] = " +
                     std::to_string(m) + " refers to scalar " +
                     std::to_string(-(m + 1)) + " but only " +
                     std::to_string(num_scalars) + " scalars were given");
    }
  }
  state->arg_map.assign(arg_map.begin(), arg_map.end());
  return ffi::Error::Success();
}

ffi::Error CheckZeroedOutputs(ffi::Span<const int64_t> zeroed,
                              KernelState* state) {
  for (int64_t r : zeroed) {
    if (r < 0) {
      return Invalid("zeroed_outputs has a negative result index " +
                     std::to_string(r));
    }
    state->min_results = std::max(state->min_results, size_t(r) + 1);
  }
  state->zeroed_outputs.assign(zeroed.begin(), zeroed.end());
  return ffi::Error::Success();
}

ffi::Error LoadKernel(std::string_view library, std::string_view hash,
                      std::string_view symbol, KernelState* state) {
  if (hash.empty()) return Invalid("attribute 'library_hash' is empty");
  void* handle = nullptr;
  void* address = nullptr;
  std::string err = LibraryCache::Global().Load(library, hash, &handle);
  if (err.empty()) {
    err = LibraryCache::FindSymbol(handle, library, symbol, &address);
  }
  if (!err.empty()) return Invalid(std::move(err));
  state->launch = reinterpret_cast<KernelLaunchFn>(address);
  void* message = nullptr;
  if (LibraryCache::FindSymbol(handle, library, std::string(symbol) + "_message",
                               &message)
          .empty()) {
    state->message = reinterpret_cast<KernelMessageFn>(message);
  }
  return ffi::Error::Success();
}

ffi::Error BuildState(const ffi::Dictionary& attrs, KernelState* state) {
  std::string_view library, hash, symbol;
  ffi::Span<const int64_t> grid, arg_map, scalars, zeroed;
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "library", &library));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "library_hash", &hash));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "symbol", &symbol));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "grid", &grid));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "arg_map", &arg_map));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "scalars", &scalars));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "zeroed_outputs", &zeroed));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, "num_threads", &state->num_threads));

  if (std::string err = MakeGrid(grid.begin(), grid.size(), &state->grid);
      !err.empty()) {
    return Invalid(std::move(err));
  }
  if (state->num_threads < 0) {
    return Invalid("num_threads must be >= 0, got " +
                   std::to_string(state->num_threads));
  }
  JTC_RETURN_IF_ERROR(CheckArgMap(arg_map, scalars.size(), state));
  JTC_RETURN_IF_ERROR(CheckZeroedOutputs(zeroed, state));
  state->scalars.assign(scalars.begin(), scalars.end());
  return LoadKernel(library, hash, symbol, state);
}

ffi::ErrorOr<std::unique_ptr<KernelState>> Instantiate(ffi::Dictionary attrs) {
  g_instantiate_calls.fetch_add(1, std::memory_order_relaxed);
  std::string_view kernel_name;
  if (ffi::Error e = GetAttr(attrs, "kernel_name", &kernel_name);
      e.failure()) {
    return ffi::Unexpected(std::move(e));
  }
  auto state = std::make_unique<KernelState>();
  state->kernel_name = kernel_name;
  if (ffi::Error e = BuildState(attrs, state.get()); e.failure()) {
    return ffi::Unexpected(ffi::Error(
        *e.errc(), "kernel " + state->kernel_name + ": " + e.message()));
  }
  return state;
}

// Buffers are numbered operands first, then results.
ffi::ErrorOr<void*> BufferData(const ffi::RemainingArgs& args,
                               const ffi::RemainingRets& rets, size_t index) {
  if (index < args.size()) {
    ffi::ErrorOr<ffi::AnyBuffer> buffer = args.get<ffi::AnyBuffer>(index);
    if (buffer.has_error()) return ffi::Unexpected(buffer.error());
    return buffer->untyped_data();
  }
  auto buffer = rets.get<ffi::AnyBuffer>(index - args.size());
  if (buffer.has_error()) return ffi::Unexpected(buffer.error());
  return (*buffer)->untyped_data();
}

// The per-call path: no allocation (except on errors), no lock.
ffi::Error Execute(KernelState* state, ffi::RemainingArgs args,
                   ffi::RemainingRets rets) {
  g_execute_calls.fetch_add(1, std::memory_order_relaxed);
  if (args.size() + rets.size() < state->min_buffers ||
      rets.size() < state->min_results) {
    return Invalid("kernel " + state->kernel_name + ": the call has " +
                   std::to_string(args.size()) + " operands and " +
                   std::to_string(rets.size()) +
                   " results, but arg_map needs at least " +
                   std::to_string(state->min_buffers) +
                   " buffers and zeroed_outputs at least " +
                   std::to_string(state->min_results) + " results");
  }
  void* pointers[kMaxKernelParams];  // values of pointer parameters
  void* params[kMaxKernelParams];    // args[i] of the trampoline
  for (size_t i = 0; i < state->arg_map.size(); ++i) {
    const int64_t m = state->arg_map[i];
    if (m < 0) {
      params[i] = &state->scalars[-(m + 1)];
      continue;
    }
    ffi::ErrorOr<void*> data = BufferData(args, rets, size_t(m));
    if (data.has_error()) return data.error();
    pointers[i] = *data;
    params[i] = &pointers[i];
  }
  for (int64_t r : state->zeroed_outputs) {
    auto buffer = rets.get<ffi::AnyBuffer>(size_t(r));
    if (buffer.has_error()) return buffer.error();
    std::memset((*buffer)->untyped_data(), 0, (*buffer)->size_bytes());
  }
  std::string message;
  int32_t status = LaunchGrid(state->launch, params, state->grid,
                              state->num_threads, state->message, &message);
  if (status != 0) {
    return ffi::Error::Internal(
        !message.empty() ? message
                         : "kernel " + state->kernel_name +
                               " failed with status " + std::to_string(status));
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_TypeId* KernelStateTypeId() { return &KernelState::id; }

const XLA_FFI_TypeInfo* KernelStateTypeInfo() {
  static const XLA_FFI_TypeInfo info = ffi::MakeTypeInfo<KernelState>();
  return &info;
}

Counters GetCounters() {
  return {g_instantiate_calls.load(), g_execute_calls.load(),
          LibraryCache::Global().dlopen_calls()};
}

}  // namespace jtc

// .Attrs() takes every attribute as a dictionary, so extra ones (for example
// cost_estimate_json) are accepted and ignored.
XLA_FFI_DEFINE_HANDLER_SYMBOL(TritonCpuKernelCallInstantiate,
                              jtc::Instantiate,
                              xla::ffi::Ffi::BindInstantiate().Attrs());

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    TritonCpuKernelCallExecute, jtc::Execute,
    xla::ffi::Ffi::Bind()
        .Ctx<xla::ffi::State<jtc::KernelState>>()
        .RemainingArgs()
        .RemainingRets());
