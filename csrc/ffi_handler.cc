#include "ffi_handler.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "autotune.h"
#include "huge_pages.h"
#include "kernel_abi.h"
#include "launcher.h"
#include "library_cache.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace jtc {
namespace {

// One compiled config: everything one launch needs.
struct LaunchConfig {
  KernelLaunchFn launch = nullptr;
  KernelMessageFn message = nullptr;  // optional: describes a failed program
  KernelCode code;                    // where a fault is the kernel's
  Grid grid;
  int32_t num_threads = 0;
  std::vector<int64_t> arg_map;         // b >= 0: buffer b; -(k+1): scalar k
  std::vector<uint64_t> scalars;        // the slots scalar params point at
  std::vector<int64_t> zeroed_outputs;  // result indices
};

// Everything EXECUTE needs, built once per call site at INSTANTIATE so that
// the per-call path only binds buffers and launches.
struct KernelState {
  static ffi::TypeId id;

  std::string kernel_name;
  // One config, or several of an autotuned kernel: the fastest on the real
  // inputs of the first execution runs from then on.
  std::vector<LaunchConfig> configs;
  size_t min_buffers = 0;  // 1 + largest buffer index in any arg_map
  size_t min_results = 0;  // 1 + largest index in any zeroed_outputs
  std::atomic<int64_t> chosen{-1};  // the config that runs; -1: not tuned yet
  std::mutex tune_mu;               // held while tuning
};

// jaxlib <= 0.10.2 registers queued FFI targets before queued types when the
// CPU client is created, so a state type whose id XLA would assign later is
// still 0 when the handler is registered and the backend fails to start.
// A fixed non-zero id (XLA checks it is unique; its own ids count up from 1)
// makes the order irrelevant.
ffi::TypeId KernelState::id = {0x4A54435354000001LL};

std::atomic<LibraryResolver> g_resolver{nullptr};

std::atomic<int64_t> g_instantiate_calls{0};
std::atomic<int64_t> g_execute_calls{0};
std::atomic<int64_t> g_autotune_runs{0};

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

// The attribute `name` of config `k`: config 0 uses the plain names, config
// k >= 1 the names with the suffix "_k" (docs/abi.md).
std::string ConfigAttr(std::string_view name, size_t k) {
  std::string full(name);
  if (k > 0) full += "_" + std::to_string(k);
  return full;
}

ffi::Error CheckArgMap(ffi::Span<const int64_t> arg_map, size_t num_scalars,
                       const std::string& attr, LaunchConfig* config,
                       size_t* min_buffers) {
  if (arg_map.size() > static_cast<size_t>(kMaxKernelParams)) {
    return Invalid("the kernel has " + std::to_string(arg_map.size()) +
                   " parameters; at most " + std::to_string(kMaxKernelParams) +
                   " are supported");
  }
  for (size_t i = 0; i < arg_map.size(); ++i) {
    const int64_t m = arg_map[i];
    if (m >= 0) {
      *min_buffers = std::max(*min_buffers, size_t(m) + 1);
    } else if (uint64_t(-(m + 1)) >= num_scalars) {
      return Invalid(attr + "[" + std::to_string(i) + "] = " +
                     std::to_string(m) + " refers to scalar " +
                     std::to_string(-(m + 1)) + " but only " +
                     std::to_string(num_scalars) + " scalars were given");
    }
  }
  config->arg_map.assign(arg_map.begin(), arg_map.end());
  return ffi::Error::Success();
}

ffi::Error CheckZeroedOutputs(ffi::Span<const int64_t> zeroed,
                              const std::string& attr, LaunchConfig* config,
                              size_t* min_results) {
  for (int64_t r : zeroed) {
    if (r < 0) {
      return Invalid(attr + " has a negative result index " +
                     std::to_string(r));
    }
    *min_results = std::max(*min_results, size_t(r) + 1);
  }
  config->zeroed_outputs.assign(zeroed.begin(), zeroed.end());
  return ffi::Error::Success();
}

// An exported call (one with `ttir`) asks the resolver for a library built
// for this host; the strings it returns back `library` and `hash`.
ffi::Error ResolvePortable(const ffi::Dictionary& attrs, size_t k,
                           std::string_view kernel_name,
                           std::string_view* library, std::string_view* hash,
                           std::string* library_storage,
                           std::string* hash_storage) {
  LibraryResolver resolver = g_resolver.load();
  if (resolver == nullptr || !attrs.contains(ConfigAttr("ttir", k))) {
    return ffi::Error::Success();
  }
  PortableLibrary portable;
  portable.kernel_name = kernel_name;
  portable.library = *library;
  portable.library_hash = *hash;
  JTC_RETURN_IF_ERROR(GetAttr(attrs, ConfigAttr("ttir", k), &portable.ttir));
  JTC_RETURN_IF_ERROR(
      GetAttr(attrs, ConfigAttr("target", k), &portable.target));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, ConfigAttr("library_bytes", k),
                              &portable.library_bytes));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, ConfigAttr("compile_options", k),
                              &portable.compile_options));
  std::string err = resolver(portable, library_storage, hash_storage);
  if (!err.empty()) return Invalid(std::move(err));
  *library = *library_storage;
  *hash = *hash_storage;
  return ffi::Error::Success();
}

ffi::Error LoadKernel(std::string_view library, std::string_view hash,
                      std::string_view symbol, const std::string& hash_attr,
                      LaunchConfig* config) {
  if (hash.empty()) return Invalid("attribute '" + hash_attr + "' is empty");
  void* handle = nullptr;
  void* address = nullptr;
  std::string err = LibraryCache::Global().Load(library, hash, &handle);
  if (err.empty()) {
    err = LibraryCache::FindSymbol(handle, library, symbol, &address);
  }
  if (!err.empty()) return Invalid(std::move(err));
  config->launch = reinterpret_cast<KernelLaunchFn>(address);
  void* message = nullptr;
  if (LibraryCache::FindSymbol(handle, library, std::string(symbol) + "_message",
                               &message)
          .empty()) {
    config->message = reinterpret_cast<KernelMessageFn>(message);
  }
  void* program = nullptr;
  if (!LibraryCache::FindSymbol(handle, library, std::string(symbol) + "_program",
                                &program)
           .empty()) {
    program = nullptr;
  }
  config->code = CodeOf(address, reinterpret_cast<KernelProgramFn>(program));
  return ffi::Error::Success();
}

// Decodes and checks the attributes of config k.
ffi::Error BuildConfig(const ffi::Dictionary& attrs, size_t k,
                       KernelState* state, LaunchConfig* config) {
  std::string_view library, hash, symbol;
  ffi::Span<const int64_t> grid, arg_map, scalars, zeroed;
  const std::string hash_attr = ConfigAttr("library_hash", k);
  const std::string arg_map_attr = ConfigAttr("arg_map", k);
  const std::string zeroed_attr = ConfigAttr("zeroed_outputs", k);
  const std::string threads_attr = ConfigAttr("num_threads", k);
  JTC_RETURN_IF_ERROR(GetAttr(attrs, ConfigAttr("library", k), &library));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, hash_attr, &hash));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, ConfigAttr("symbol", k), &symbol));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, ConfigAttr("grid", k), &grid));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, arg_map_attr, &arg_map));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, ConfigAttr("scalars", k), &scalars));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, zeroed_attr, &zeroed));
  JTC_RETURN_IF_ERROR(GetAttr(attrs, threads_attr, &config->num_threads));

  if (std::string err = MakeGrid(grid.begin(), grid.size(), &config->grid);
      !err.empty()) {
    return Invalid(k > 0 ? ConfigAttr("grid", k) + ": " + err : err);
  }
  if (config->num_threads < 0) {
    return Invalid(threads_attr + " must be >= 0, got " +
                   std::to_string(config->num_threads));
  }
  JTC_RETURN_IF_ERROR(CheckArgMap(arg_map, scalars.size(), arg_map_attr, config,
                                  &state->min_buffers));
  JTC_RETURN_IF_ERROR(
      CheckZeroedOutputs(zeroed, zeroed_attr, config, &state->min_results));
  config->scalars.assign(scalars.begin(), scalars.end());
  std::string library_storage, hash_storage;
  JTC_RETURN_IF_ERROR(ResolvePortable(attrs, k, state->kernel_name, &library,
                                      &hash, &library_storage, &hash_storage));
  return LoadKernel(library, hash, symbol, hash_attr, config);
}

ffi::Error BuildState(const ffi::Dictionary& attrs, KernelState* state) {
  int32_t num_configs = 1;  // absent: a call with one config
  if (attrs.contains("num_configs")) {
    JTC_RETURN_IF_ERROR(GetAttr(attrs, "num_configs", &num_configs));
    if (num_configs < 1) {
      return Invalid("num_configs must be >= 1, got " +
                     std::to_string(num_configs));
    }
  }
  // One at a time: a bogus count fails at the first missing attribute.
  for (size_t k = 0; k < size_t(num_configs); ++k) {
    LaunchConfig config;
    JTC_RETURN_IF_ERROR(BuildConfig(attrs, k, state, &config));
    state->configs.push_back(std::move(config));
  }
  if (state->configs.size() == 1) state->chosen = 0;
  return ffi::Error::Success();
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

struct BufferView {
  void* data;
  uint64_t size_bytes;
};

// Buffers are numbered operands first, then results.
ffi::ErrorOr<BufferView> GetBuffer(const ffi::RemainingArgs& args,
                                   const ffi::RemainingRets& rets, size_t index) {
  if (index < args.size()) {
    ffi::ErrorOr<ffi::AnyBuffer> buffer = args.get<ffi::AnyBuffer>(index);
    if (buffer.has_error()) return ffi::Unexpected(buffer.error());
    return BufferView{buffer->untyped_data(), buffer->size_bytes()};
  }
  auto buffer = rets.get<ffi::AnyBuffer>(index - args.size());
  if (buffer.has_error()) return ffi::Unexpected(buffer.error());
  return BufferView{(*buffer)->untyped_data(), (*buffer)->size_bytes()};
}

ffi::ErrorOr<void*> BufferData(const ffi::RemainingArgs& args,
                               const ffi::RemainingRets& rets, size_t index) {
  ffi::ErrorOr<BufferView> buffer = GetBuffer(args, rets, index);
  if (buffer.has_error()) return ffi::Unexpected(buffer.error());
  return buffer->data;
}

// Advises huge pages for large results (huge_pages.h), zeroes the config's
// zeroed outputs and launches it over its grid.
// No allocation (except on errors), no lock.
ffi::Error RunConfig(const KernelState& state, const LaunchConfig& config,
                     const ffi::RemainingArgs& args,
                     const ffi::RemainingRets& rets) {
  void* pointers[kMaxKernelParams];   // values of pointer parameters
  uint64_t extents[kMaxKernelParams];  // their buffers' sizes in bytes
  // args of the trampoline: args[i] for parameter i, args[P + i] its buffer's
  // size, which kernels compiled in checked mode read (docs/abi.md).
  void* params[2 * kMaxKernelParams];
  const size_t num_params = config.arg_map.size();
  for (size_t i = 0; i < num_params; ++i) {
    const int64_t m = config.arg_map[i];
    if (m < 0) {
      // The trampoline only reads through args; the slot is never written.
      params[i] = const_cast<uint64_t*>(&config.scalars[-(m + 1)]);
      extents[i] = 0;
      params[num_params + i] = &extents[i];
      continue;
    }
    ffi::ErrorOr<BufferView> buffer = GetBuffer(args, rets, size_t(m));
    if (buffer.has_error()) return buffer.error();
    pointers[i] = buffer->data;
    extents[i] = buffer->size_bytes;
    params[i] = &pointers[i];
    params[num_params + i] = &extents[i];
  }
  for (size_t r = 0; r < rets.size(); ++r) {
    auto buffer = rets.get<ffi::AnyBuffer>(r);
    if (buffer.has_error()) return buffer.error();
    AdviseHugePages((*buffer)->untyped_data(), (*buffer)->size_bytes());
  }
  for (int64_t r : config.zeroed_outputs) {
    auto buffer = rets.get<ffi::AnyBuffer>(size_t(r));
    if (buffer.has_error()) return buffer.error();
    std::memset((*buffer)->untyped_data(), 0, (*buffer)->size_bytes());
  }
  std::string message;
  int32_t status = LaunchGrid(config.launch, params, config.grid,
                              config.num_threads, config.message, &message,
                              &config.code);
  if (status == kFaultStatus) {
    return ffi::Error::Internal("kernel " + state.kernel_name + " faulted: " +
                                message);
  }
  if (status != 0) {
    return ffi::Error::Internal(
        !message.empty() ? message
                         : "kernel " + state.kernel_name +
                               " failed with status " + std::to_string(status));
  }
  return ffi::Error::Success();
}

// The results that share their buffer with an operand (in-place Refs and
// input_output_aliases): the buffers a trial may overwrite.
ffi::ErrorOr<BufferSnapshot> SnapshotAliasedResults(
    const ffi::RemainingArgs& args, const ffi::RemainingRets& rets) {
  BufferSnapshot snapshot;
  for (size_t r = 0; r < rets.size(); ++r) {
    auto result = rets.get<ffi::AnyBuffer>(r);
    if (result.has_error()) return ffi::Unexpected(result.error());
    void* data = (*result)->untyped_data();
    for (size_t a = 0; a < args.size(); ++a) {
      ffi::ErrorOr<void*> operand = BufferData(args, rets, a);
      if (operand.has_error()) return ffi::Unexpected(operand.error());
      if (*operand == data) {
        snapshot.Add(data, (*result)->size_bytes());
        break;
      }
    }
  }
  return snapshot;
}

// Times every config on this call's buffers, remembers the fastest for the
// call site, and runs it: the buffers end as if only the winner had run.
// Called with state->tune_mu held.
ffi::Error TuneAndRun(KernelState* state, const ffi::RemainingArgs& args,
                      const ffi::RemainingRets& rets) {
  ffi::ErrorOr<BufferSnapshot> snapshot = SnapshotAliasedResults(args, rets);
  if (snapshot.has_error()) return snapshot.error();
  ffi::Error error;
  auto run = [&](size_t c) {
    error = RunConfig(*state, state->configs[c], args, rets);
    return error.success();
  };
  TuneResult tuned = Autotune(state->configs.size(), run, *snapshot);
  if (!tuned.ok) return error;  // not remembered: the next call tunes again
  g_autotune_runs.fetch_add(1, std::memory_order_relaxed);
  JTC_RETURN_IF_ERROR(
      RunConfig(*state, state->configs[tuned.best], args, rets));
  state->chosen.store(int64_t(tuned.best), std::memory_order_release);
  return ffi::Error::Success();
}

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
  int64_t chosen = state->chosen.load(std::memory_order_acquire);
  if (chosen < 0) {
    // Other threads executing this call site wait for the first tuning.
    std::lock_guard<std::mutex> lock(state->tune_mu);
    chosen = state->chosen.load(std::memory_order_acquire);
    if (chosen < 0) return TuneAndRun(state, args, rets);
  }
  return RunConfig(*state, state->configs[chosen], args, rets);
}

}  // namespace

void SetLibraryResolver(LibraryResolver resolver) { g_resolver = resolver; }

XLA_FFI_TypeId* KernelStateTypeId() { return &KernelState::id; }

const XLA_FFI_TypeInfo* KernelStateTypeInfo() {
  static const XLA_FFI_TypeInfo info = ffi::MakeTypeInfo<KernelState>();
  return &info;
}

Counters GetCounters() {
  return {g_instantiate_calls.load(), g_execute_calls.load(),
          LibraryCache::Global().dlopen_calls(), g_autotune_runs.load()};
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
