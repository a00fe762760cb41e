// Calls the real handler symbols with hand-built XLA_FFI_CallFrames and a fake
// XLA_FFI_Api (errors and state only), so no jaxlib is needed at run time.
#include "ffi_handler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <new>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "test_kernels.h"
#include "xla/ffi/api/c_api.h"

// The opaque C API types, defined by the fake runtime below.
struct XLA_FFI_Error {
  XLA_FFI_Error_Code code;
  std::string message;
};
struct XLA_FFI_ExecutionContext {
  void* state = nullptr;
};

// Counts C++ heap allocations, to check that EXECUTE makes none.
std::atomic<int64_t> g_allocations{0};
void* operator new(size_t size) {
  g_allocations.fetch_add(1);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
// g++ takes the free() below for a mismatch with inlined operator new calls.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace jtc {
namespace {

using testing::kTestKernels;

XLA_FFI_Error* ErrorCreate(XLA_FFI_Error_Create_Args* a) {
  return new XLA_FFI_Error{a->errc, a->message};
}
void ErrorGetMessage(XLA_FFI_Error_GetMessage_Args* a) {
  a->message = a->error->message.c_str();
}
void ErrorDestroy(XLA_FFI_Error_Destroy_Args* a) { delete a->error; }
XLA_FFI_Error* StateSet(XLA_FFI_State_Set_Args* a) {
  a->ctx->state = a->state;
  return nullptr;
}
XLA_FFI_Error* StateGet(XLA_FFI_State_Get_Args* a) {
  if (a->ctx->state == nullptr) {
    return new XLA_FFI_Error{XLA_FFI_Error_Code_NOT_FOUND, "no state"};
  }
  a->state = a->ctx->state;
  return nullptr;
}

const XLA_FFI_Api* FakeApi() {
  static const XLA_FFI_Api api = [] {
    XLA_FFI_Api a;
    std::memset(&a, 0, sizeof(a));
    a.struct_size = XLA_FFI_Api_STRUCT_SIZE;
    a.XLA_FFI_Error_Create = ErrorCreate;
    a.XLA_FFI_Error_GetMessage = ErrorGetMessage;
    a.XLA_FFI_Error_Destroy = ErrorDestroy;
    a.XLA_FFI_State_Set = StateSet;
    a.XLA_FFI_State_Get = StateGet;
    return a;
  }();
  return &api;
}

// Owns a call frame and everything it points to; attributes are kept sorted
// by name, as XLA passes them.
class Call {
 public:
  ~Call() {
    if (ctx_.state && owns_state_) KernelStateTypeInfo()->deleter(ctx_.state);
  }

  // Executes with `owner`'s state, as XLA does when several threads run one
  // executable (owner must be instantiated and outlive this call).
  void ShareStateOf(const Call& owner) {
    ctx_.state = owner.ctx_.state;
    owns_state_ = false;
  }

  template <typename T>
  void Buffer(bool is_result, std::vector<T>& data) {
    dims_.push_back(static_cast<int64_t>(data.size()));
    buffers_.push_back({XLA_FFI_Buffer_STRUCT_SIZE, nullptr, DataType<T>(),
                        data.data(), 1, &dims_.back()});
    if (is_result) {
      ret_types_.push_back(XLA_FFI_RetType_BUFFER);
      rets_.push_back(&buffers_.back());
    } else {
      arg_types_.push_back(XLA_FFI_ArgType_BUFFER);
      args_.push_back(&buffers_.back());
    }
  }
  void Str(const std::string& name, const std::string& value) {
    strings_.push_back(value);
    spans_.push_back({strings_.back().data(), strings_.back().size()});
    attrs_[name] = {XLA_FFI_AttrType_STRING, &spans_.back()};
  }
  void I64s(const std::string& name, std::vector<int64_t> values) {
    int64s_.push_back(std::move(values));
    arrays_.push_back({XLA_FFI_DataType_S64, int64s_.back().size(),
                       int64s_.back().data()});
    attrs_[name] = {XLA_FFI_AttrType_ARRAY, &arrays_.back()};
  }
  void I32(const std::string& name, int32_t value) {
    int32s_.push_back(value);
    scalars_.push_back({XLA_FFI_DataType_S32, &int32s_.back()});
    attrs_[name] = {XLA_FFI_AttrType_SCALAR, &scalars_.back()};
  }
  void Erase(const std::string& name) { attrs_.erase(name); }

  // A well-formed call of `symbol` from the test library.
  void Kernel(const std::string& symbol, std::vector<int64_t> grid,
              std::vector<int64_t> arg_map, std::vector<int64_t> scalars = {},
              std::vector<int64_t> zeroed = {}, int32_t num_threads = 0) {
    Str("kernel_name", symbol.substr(0, symbol.rfind("_launch")));
    Config(0, symbol, std::move(grid), std::move(arg_map), std::move(scalars),
           std::move(zeroed), num_threads);
  }

  // The attributes of autotune config k (names suffixed "_k" for k >= 1).
  void Config(size_t k, const std::string& symbol, std::vector<int64_t> grid,
              std::vector<int64_t> arg_map, std::vector<int64_t> scalars = {},
              std::vector<int64_t> zeroed = {}, int32_t num_threads = 0) {
    const std::string suffix = k > 0 ? "_" + std::to_string(k) : "";
    Str("library" + suffix, kTestKernels);
    Str("library_hash" + suffix, "test-kernels");
    Str("symbol" + suffix, symbol);
    I64s("grid" + suffix, std::move(grid));
    I64s("arg_map" + suffix, std::move(arg_map));
    I64s("scalars" + suffix, std::move(scalars));
    I64s("zeroed_outputs" + suffix, std::move(zeroed));
    I32("num_threads" + suffix, num_threads);
  }

  // Runs the stage's handler; returns "" or "<code>: <message>".
  std::string Run(XLA_FFI_ExecutionStage stage) {
    names_.clear();
    name_ptrs_.clear();
    types_.clear();
    values_.clear();
    for (auto& [name, attr] : attrs_) {
      names_.push_back({name.data(), name.size()});
      types_.push_back(attr.first);
      values_.push_back(attr.second);
    }
    for (auto& span : names_) name_ptrs_.push_back(&span);
    XLA_FFI_CallFrame frame;
    std::memset(&frame, 0, sizeof(frame));
    frame.struct_size = XLA_FFI_CallFrame_STRUCT_SIZE;
    frame.api = FakeApi();
    frame.ctx = &ctx_;
    frame.stage = stage;
    frame.args = {XLA_FFI_Args_STRUCT_SIZE, nullptr, int64_t(args_.size()),
                  arg_types_.data(), args_.data()};
    frame.rets = {XLA_FFI_Rets_STRUCT_SIZE, nullptr, int64_t(rets_.size()),
                  ret_types_.data(), rets_.data()};
    frame.attrs = {XLA_FFI_Attrs_STRUCT_SIZE, nullptr, int64_t(names_.size()),
                   types_.data(), name_ptrs_.data(), values_.data()};
    XLA_FFI_Error* err = stage == XLA_FFI_ExecutionStage_INSTANTIATE
                             ? TritonCpuKernelCallInstantiate(&frame)
                             : TritonCpuKernelCallExecute(&frame);
    if (err == nullptr) return "";
    std::string text = std::to_string(err->code) + ": " + err->message;
    delete err;
    return text;
  }
  std::string Instantiate() { return Run(XLA_FFI_ExecutionStage_INSTANTIATE); }
  std::string Execute() { return Run(XLA_FFI_ExecutionStage_EXECUTE); }

 private:
  template <typename T>
  static XLA_FFI_DataType DataType() {
    if constexpr (std::is_same_v<T, float>) return XLA_FFI_DataType_F32;
    if constexpr (std::is_same_v<T, int32_t>) return XLA_FFI_DataType_S32;
    if constexpr (std::is_same_v<T, uint32_t>) return XLA_FFI_DataType_U32;
    return XLA_FFI_DataType_S64;
  }

  XLA_FFI_ExecutionContext ctx_;
  bool owns_state_ = true;
  // deques: push_back keeps earlier elements where they are.
  std::deque<int64_t> dims_;
  std::deque<XLA_FFI_Buffer> buffers_;
  std::vector<XLA_FFI_ArgType> arg_types_;
  std::vector<XLA_FFI_RetType> ret_types_;
  std::vector<void*> args_, rets_;
  std::deque<std::string> strings_;
  std::deque<XLA_FFI_ByteSpan> spans_;
  std::deque<std::vector<int64_t>> int64s_;
  std::deque<XLA_FFI_Array> arrays_;
  std::deque<int32_t> int32s_;
  std::deque<XLA_FFI_Scalar> scalars_;
  std::map<std::string, std::pair<XLA_FFI_AttrType, void*>> attrs_;
  std::vector<XLA_FFI_ByteSpan> names_;
  std::vector<XLA_FFI_ByteSpan*> name_ptrs_;
  std::vector<XLA_FFI_AttrType> types_;
  std::vector<void*> values_;
};

const std::string kInvalid = std::to_string(XLA_FFI_Error_Code_INVALID_ARGUMENT) + ": ";

int64_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
int64_t Bits(double d) {
  int64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}

TEST(FfiHandler, AxpyWithInterleavedScalars) {
  for (int32_t num_threads : {1, 2, 0}) {
    const int64_t n = 100;
    std::vector<float> x(n), y(n), out(n, -1.f);
    for (int i = 0; i < n; ++i) x[i] = float(i), y[i] = 0.5f;
    Call call;
    call.Buffer(false, x);
    call.Buffer(false, y);
    call.Buffer(true, out);
    // axpy(out, alpha, x, n, y, beta): buffers 2, 0, 1; scalars 0, 1, 2.
    call.Kernel("axpy_launch", {(n + 15) / 16, 1, 1}, {2, -1, 0, -2, 1, -3},
                {Bits(3.0f), n, Bits(0.25)}, {}, num_threads);
    call.Str("cost_estimate_json", "{\"flops\": 1}");  // ignored
    ASSERT_EQ(call.Instantiate(), "");
    ASSERT_EQ(call.Execute(), "");
    for (int i = 0; i < n; ++i) ASSERT_FLOAT_EQ(out[i], 3.0f * i + 0.75f);
  }
}

TEST(FfiHandler, ZeroedOutputsAnd3DGrid) {
  for (int32_t num_threads : {1, 2, 0}) {
    const int64_t gx = 4, gy = 3, gz = 5, n = gx * gy * gz;
    std::vector<int32_t> visits(n, 7);
    std::vector<uint32_t> seen(6 * n, 0);
    std::vector<int64_t> calls(1, 99);
    Call call;
    call.Buffer(true, visits);
    call.Buffer(true, seen);
    call.Buffer(true, calls);
    call.Kernel("record_launch", {gx, gy, gz}, {0, 1, 2}, {}, {0, 2},
                num_threads);
    ASSERT_EQ(call.Instantiate(), "");
    ASSERT_EQ(call.Execute(), "");
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(visits[i], 1) << i;
      ASSERT_EQ(seen[6 * i + 0], i % gx);
      ASSERT_EQ(seen[6 * i + 1], i / gx % gy);
      ASSERT_EQ(seen[6 * i + 2], i / gx / gy);
    }
    EXPECT_GE(calls[0], 1);
    EXPECT_LE(calls[0], n);
  }
}

TEST(FfiHandler, StateIsReusedAcrossExecutes) {
  Call first;  // loads the test library
  first.Kernel("record_launch", {8, 1, 1}, {0, 1, 2});
  ASSERT_EQ(first.Instantiate(), "");

  const Counters before = GetCounters();
  std::vector<int32_t> visits(8, 0);
  std::vector<uint32_t> seen(48, 0);
  std::vector<int64_t> calls(1, 0);
  Call call;
  call.Buffer(false, visits);
  call.Buffer(false, seen);
  call.Buffer(false, calls);
  call.Kernel("record_launch", {8, 1, 1}, {0, 1, 2});
  ASSERT_EQ(call.Instantiate(), "");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(call.Execute(), "");
  for (int32_t v : visits) EXPECT_EQ(v, 3);
  const Counters after = GetCounters();
  EXPECT_EQ(after.instantiate_calls - before.instantiate_calls, 1);
  EXPECT_EQ(after.execute_calls - before.execute_calls, 3);
  EXPECT_EQ(after.dlopen_calls, before.dlopen_calls);
}

TEST(FfiHandler, ExecuteAllocatesNothing) {
  const int64_t n = 64;
  std::vector<float> x(n, 1.f), y(n, 2.f), out(n, 0.f);
  Call call;
  call.Buffer(false, x);
  call.Buffer(false, y);
  call.Buffer(true, out);
  call.Kernel("axpy_launch", {n / 16, 1, 1}, {2, -1, 0, -2, 1, -3},
              {Bits(1.0f), n, Bits(0.0)}, {0}, 2);
  ASSERT_EQ(call.Instantiate(), "");
  ASSERT_EQ(call.Execute(), "");  // warms up the OpenMP team
  const int64_t before = g_allocations.load();
  ASSERT_EQ(call.Execute(), "");
  EXPECT_EQ(g_allocations.load() - before, 0);
  for (float v : out) ASSERT_FLOAT_EQ(v, 3.f);
}

// Instantiates `symbol` with attributes edited by `edit`; returns the error.
template <typename Edit>
std::string InstantiateError(Edit edit) {
  Call call;
  call.Kernel("axpy_launch", {1, 1, 1}, {0, -1}, {5});
  edit(call);
  return call.Instantiate();
}

TEST(FfiHandler, AttributeErrors) {
  EXPECT_EQ(InstantiateError([](Call& c) { c.Erase("grid"); }),
            kInvalid + "kernel axpy: missing attribute 'grid'");
  EXPECT_EQ(InstantiateError([](Call& c) { c.Erase("kernel_name"); }),
            kInvalid + "missing attribute 'kernel_name'");
  std::string err = InstantiateError([](Call& c) { c.I32("grid", 3); });
  EXPECT_EQ(err.rfind(kInvalid + "kernel axpy: attribute 'grid': Wrong", 0), 0u)
      << err;
  err = InstantiateError([](Call& c) { c.Str("num_threads", "4"); });
  EXPECT_EQ(err.rfind(kInvalid + "kernel axpy: attribute 'num_threads': ", 0),
            0u)
      << err;
  EXPECT_EQ(InstantiateError([](Call& c) { c.I32("num_threads", -1); }),
            kInvalid + "kernel axpy: num_threads must be >= 0, got -1");
  EXPECT_EQ(InstantiateError([](Call& c) { c.Str("library_hash", ""); }),
            kInvalid + "kernel axpy: attribute 'library_hash' is empty");
  EXPECT_EQ(InstantiateError([](Call& c) { c.I64s("arg_map", {0, -2}); }),
            kInvalid +
                "kernel axpy: arg_map[1] = -2 refers to scalar 1 but only 1 "
                "scalars were given");
  EXPECT_EQ(InstantiateError([](Call& c) { c.I64s("zeroed_outputs", {-1}); }),
            kInvalid +
                "kernel axpy: zeroed_outputs has a negative result index -1");
}

TEST(FfiHandler, GridErrors) {
  auto grid_error = [](std::vector<int64_t> grid) {
    return InstantiateError([&](Call& c) { c.I64s("grid", grid); });
  };
  EXPECT_EQ(grid_error({0, 1, 1}),
            kInvalid + "kernel axpy: grid[0] = 0 is out of range [1, 2^31)");
  EXPECT_EQ(grid_error({1, -1, 1}),
            kInvalid + "kernel axpy: grid[1] = -1 is out of range [1, 2^31)");
  EXPECT_EQ(grid_error({1, 1, int64_t{1} << 31}),
            kInvalid +
                "kernel axpy: grid[2] = 2147483648 is out of range [1, 2^31)");
  EXPECT_EQ(grid_error({1, 1}),
            kInvalid + "kernel axpy: grid must have 3 entries, got 2");
  const int64_t big = (int64_t{1} << 31) - 1;
  EXPECT_EQ(grid_error({big, big, 3}),
            kInvalid +
                "kernel axpy: grid (2147483647, 2147483647, 3) has 2^63 or "
                "more programs");
}

TEST(FfiHandler, LibraryErrors) {
  EXPECT_EQ(InstantiateError([](Call& c) {
              c.Str("library", "/nonexistent/k.so");
              c.Str("library_hash", "missing");
            }),
            kInvalid +
                "kernel axpy: cannot read kernel library /nonexistent/k.so: No "
                "such file or directory");
  EXPECT_EQ(InstantiateError([](Call& c) { c.Str("symbol", "nope_launch"); }),
            kInvalid + "kernel axpy: symbol 'nope_launch' not found in kernel "
                       "library " + kTestKernels);
}

TEST(FfiHandler, TooManyParams) {
  EXPECT_EQ(InstantiateError([](Call& c) {
              c.I64s("arg_map", std::vector<int64_t>(kMaxKernelParams + 1, 0));
            }),
            kInvalid +
                "kernel axpy: the kernel has 257 parameters; at most 256 are "
                "supported");
  EXPECT_EQ(InstantiateError([](Call& c) {
              c.I64s("arg_map", std::vector<int64_t>(kMaxKernelParams, 0));
            }),
            "");
}

TEST(FfiHandler, WrongBufferCount) {
  std::vector<float> out(16);
  Call call;
  call.Buffer(true, out);
  call.Kernel("axpy_launch", {1, 1, 1}, {2, -1, 0, -2, 1, -3}, {0, 16, 0},
              {1});
  ASSERT_EQ(call.Instantiate(), "");
  EXPECT_EQ(call.Execute(),
            kInvalid +
                "kernel axpy: the call has 0 operands and 1 results, but "
                "arg_map needs at least 3 buffers and zeroed_outputs at least "
                "2 results");
}

TEST(FfiHandler, BufferSizesFollowTheArguments) {
  std::vector<uint64_t> out(3, 99);
  std::vector<float> x(10);
  Call call;
  call.Buffer(false, x);
  call.Buffer(true, out);
  call.Kernel("extents_launch", {1, 1, 1}, {1, 0, -1}, {5});
  ASSERT_EQ(call.Instantiate(), "");
  ASSERT_EQ(call.Execute(), "");
  EXPECT_EQ(out, (std::vector<uint64_t>{24, 40, 0}));
}

// Sends calls with a `ttir` attribute (exported ones) to the test library.
std::string g_resolved_from;
std::string RedirectToTestKernels(const PortableLibrary& p, std::string* library,
                                  std::string* hash) {
  g_resolved_from = std::string(p.library) + " " + std::string(p.target) + " " +
                    std::string(p.library_bytes) + " " + std::string(p.ttir) +
                    " " + std::string(p.compile_options);
  if (p.target == "bad") return "no library for this host";
  *library = kTestKernels;
  *hash = "test-kernels";
  return "";
}

TEST(FfiHandler, ExportedCallsAskTheResolverForALibrary) {
  SetLibraryResolver(RedirectToTestKernels);
  auto exported = [](Call& c, const std::string& target) {
    c.Str("library", "/elsewhere/libaxpy.so");
    c.Str("library_hash", "h");
    c.Str("target", target);
    c.Str("library_bytes", "Ynl0ZXM=");
    c.Str("ttir", "module");
    c.Str("compile_options", "{}");
  };
  EXPECT_EQ(InstantiateError([&](Call& c) { exported(c, "cpu"); }), "");
  EXPECT_EQ(g_resolved_from, "/elsewhere/libaxpy.so cpu Ynl0ZXM= module {}");
  EXPECT_EQ(InstantiateError([&](Call& c) { exported(c, "bad"); }),
            kInvalid + "kernel axpy: no library for this host");
  // Without `ttir` the path is used as it is.
  EXPECT_EQ(InstantiateError([](Call& c) {
              c.Str("library", "/elsewhere/libaxpy.so");
              c.Str("library_hash", "h");
            }),
            kInvalid + "kernel axpy: cannot read kernel library "
                       "/elsewhere/libaxpy.so: No such file or directory");
  SetLibraryResolver(nullptr);
}

TEST(FfiHandler, KernelStatusBecomesError) {
  for (int32_t num_threads : {1, 2}) {
    Call call;
    call.Kernel("fail_at_launch", {10, 1, 1}, {-1, -2}, {7, 42}, {},
                num_threads);
    ASSERT_EQ(call.Instantiate(), "");
    EXPECT_EQ(call.Execute(),
              std::to_string(XLA_FFI_Error_Code_INTERNAL) +
                  ": kernel fail_at failed with status 42");
  }
}

TEST(FfiHandler, KernelMessageBecomesError) {
  for (int32_t num_threads : {1, 2}) {
    Call call;
    call.Kernel("fail_with_message_launch", {10, 1, 1}, {-1, -2}, {7, 42}, {},
                num_threads);
    ASSERT_EQ(call.Instantiate(), "");
    EXPECT_EQ(call.Execute(), std::to_string(XLA_FFI_Error_Code_INTERNAL) +
                                  ": program 7 failed");
  }
}

TEST(FfiHandler, ExecuteWithoutStateFails) {
  Call call;
  call.Kernel("axpy_launch", {1, 1, 1}, {});
  std::string err = call.Execute();
  EXPECT_NE(err.find("no state"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------
// Autotuned calls: several configs, the fastest chosen at the first EXECUTE.
// ---------------------------------------------------------------------------

constexpr int64_t kSlowSpin = 200000;  // busy-wait iterations per program

// An autotuned tagged_inc over `data` (8 elements), aliased in place as
// operand 0 and result 0 (a Ref), with `tag` as result 1: config c has tag c
// and is slow unless c == fastest.
void AutotunedIncrement(Call& call, std::vector<int32_t>& data,
                        std::vector<int32_t>& tag, size_t num_configs,
                        size_t fastest) {
  call.Buffer(false, data);
  call.Buffer(true, data);  // the same memory: XLA's in-place aliasing
  call.Buffer(true, tag);   // buffer 2 (1 operand, then results 0 and 1)
  call.Str("kernel_name", "tagged_inc");
  call.I32("num_configs", int32_t(num_configs));
  for (size_t c = 0; c < num_configs; ++c) {
    const int64_t spin = c == fastest ? 0 : kSlowSpin;
    call.Config(c, "tagged_inc_launch", {int64_t(data.size()), 1, 1},
                {0, -1, 2, -2}, {spin, int64_t(c)}, {}, 1);
  }
}

std::vector<int32_t> Plus(std::vector<int32_t> v, int32_t d) {
  for (int32_t& x : v) x += d;
  return v;
}

TEST(FfiHandlerAutotune, PicksTheFastestAndRunsItOnceInPlace) {
  for (size_t fastest : {0u, 1u, 2u}) {
    const std::vector<int32_t> original = {10, 11, 12, 13, 14, 15, 16, 17};
    std::vector<int32_t> data = original, tag = {-1};
    Call call;
    AutotunedIncrement(call, data, tag, 3, fastest);
    ASSERT_EQ(call.Instantiate(), "");
    const Counters before = GetCounters();
    ASSERT_EQ(call.Execute(), "");
    EXPECT_EQ(GetCounters().autotune_runs - before.autotune_runs, 1);
    EXPECT_EQ(tag[0], int32_t(fastest));
    // Every trial started from the original contents, and only the winner's
    // run is left: +1, not +1 per trial.
    EXPECT_EQ(data, Plus(original, 1));

    // The choice is kept for the call site: no second tuning.
    tag[0] = -1;
    ASSERT_EQ(call.Execute(), "");
    EXPECT_EQ(tag[0], int32_t(fastest));
    EXPECT_EQ(data, Plus(original, 2));
    EXPECT_EQ(GetCounters().autotune_runs - before.autotune_runs, 1);
  }
}

TEST(FfiHandlerAutotune, ExecuteAfterTuningAllocatesNothing) {
  std::vector<int32_t> data(8, 0), tag = {-1};
  Call call;
  AutotunedIncrement(call, data, tag, 2, 1);
  ASSERT_EQ(call.Instantiate(), "");
  ASSERT_EQ(call.Execute(), "");  // tunes
  const int64_t before = g_allocations.load();
  ASSERT_EQ(call.Execute(), "");
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(data, std::vector<int32_t>(8, 2));
}

TEST(FfiHandlerAutotune, ConcurrentFirstExecutesTuneOnce) {
  const std::vector<int32_t> original = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<int32_t> owner_data = original, owner_tag = {-1};
  Call owner;
  AutotunedIncrement(owner, owner_data, owner_tag, 3, 2);
  ASSERT_EQ(owner.Instantiate(), "");

  constexpr int kThreads = 4;
  std::vector<std::vector<int32_t>> data(kThreads, original);
  std::vector<std::vector<int32_t>> tags(kThreads, {-1});
  std::vector<std::string> errors(kThreads);
  std::deque<Call> calls(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    AutotunedIncrement(calls[t], data[t], tags[t], 3, 2);
    calls[t].ShareStateOf(owner);
  }
  const Counters before = GetCounters();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { errors[t] = calls[t].Execute(); });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(GetCounters().autotune_runs - before.autotune_runs, 1);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(errors[t], "") << t;
    EXPECT_EQ(tags[t][0], 2) << t;
    EXPECT_EQ(data[t], Plus(original, 1)) << t;
  }
}

TEST(FfiHandlerAutotune, AFailingConfigFailsTheCallAndRestoresBuffers) {
  const std::vector<int32_t> original = {4, 5, 6, 7};
  std::vector<int32_t> data = original, tag = {-1};
  Call call;
  call.Buffer(false, data);
  call.Buffer(true, data);
  call.Buffer(true, tag);
  call.Str("kernel_name", "tagged_inc");
  call.I32("num_configs", 2);
  call.Config(0, "tagged_inc_launch", {4, 1, 1}, {0, -1, 2, -2}, {0, 0});
  call.Config(1, "fail_at_launch", {4, 1, 1}, {-1, -2}, {0, 42});
  ASSERT_EQ(call.Instantiate(), "");
  const Counters before = GetCounters();
  for (int attempt = 0; attempt < 2; ++attempt) {  // not remembered: retried
    EXPECT_EQ(call.Execute(), std::to_string(XLA_FFI_Error_Code_INTERNAL) +
                                  ": kernel tagged_inc failed with status 42");
    EXPECT_EQ(data, original);
  }
  EXPECT_EQ(GetCounters().autotune_runs, before.autotune_runs);
}

TEST(FfiHandlerAutotune, BufferCountsCoverEveryConfig) {
  // Config 1 refers to buffer 3 and zeroes result 1: checked at EXECUTE.
  std::vector<int32_t> data(4, 0), tag = {-1};
  Call call;
  call.Buffer(false, data);
  call.Buffer(true, data);
  call.Buffer(true, tag);
  call.Str("kernel_name", "tagged_inc");
  call.I32("num_configs", 2);
  call.Config(0, "tagged_inc_launch", {4, 1, 1}, {0, -1, 2, -2},
              {kSlowSpin, 7});
  call.Config(1, "tagged_inc_launch", {4, 1, 1}, {0, -1, 3, -2}, {0, 8}, {1});
  ASSERT_EQ(call.Instantiate(), "");
  EXPECT_EQ(call.Execute(),
            kInvalid +
                "kernel tagged_inc: the call has 1 operands and 2 results, "
                "but arg_map needs at least 4 buffers and zeroed_outputs at "
                "least 2 results");
}

TEST(FfiHandlerAutotune, SingleConfigWithNumConfigs1) {
  std::vector<int32_t> data(4, 0), tag = {-1};
  Call call;
  call.Buffer(false, data);
  call.Buffer(true, data);
  call.Buffer(true, tag);
  call.Str("kernel_name", "tagged_inc");
  call.I32("num_configs", 1);
  call.Config(0, "tagged_inc_launch", {4, 1, 1}, {0, -1, 2, -2}, {0, 3});
  ASSERT_EQ(call.Instantiate(), "");
  const Counters before = GetCounters();
  ASSERT_EQ(call.Execute(), "");
  EXPECT_EQ(GetCounters().autotune_runs, before.autotune_runs);
  EXPECT_EQ(data, std::vector<int32_t>(4, 1));
  EXPECT_EQ(tag[0], 3);
}

TEST(FfiHandlerAutotune, ConfigAttributeErrors) {
  auto error = [](auto edit) {
    Call call;
    call.Kernel("axpy_launch", {1, 1, 1}, {0, -1}, {5});
    call.I32("num_configs", 2);
    call.Config(1, "axpy_launch", {1, 1, 1}, {0, -1}, {5});
    edit(call);
    return call.Instantiate();
  };
  EXPECT_EQ(error([](Call&) {}), "");
  EXPECT_EQ(error([](Call& c) { c.I32("num_configs", 0); }),
            kInvalid + "kernel axpy: num_configs must be >= 1, got 0");
  EXPECT_EQ(error([](Call& c) { c.I32("num_configs", 3); }),
            kInvalid + "kernel axpy: missing attribute 'library_2'");
  EXPECT_EQ(error([](Call& c) { c.I32("num_configs", 2147483647); }),
            kInvalid + "kernel axpy: missing attribute 'library_2'");
  EXPECT_EQ(error([](Call& c) { c.Erase("scalars_1"); }),
            kInvalid + "kernel axpy: missing attribute 'scalars_1'");
  EXPECT_EQ(error([](Call& c) { c.Str("library_hash_1", ""); }),
            kInvalid + "kernel axpy: attribute 'library_hash_1' is empty");
  EXPECT_EQ(error([](Call& c) { c.I64s("grid_1", {1, 0, 1}); }),
            kInvalid +
                "kernel axpy: grid_1: grid[1] = 0 is out of range [1, 2^31)");
  EXPECT_EQ(error([](Call& c) { c.I64s("arg_map_1", {0, -3}); }),
            kInvalid +
                "kernel axpy: arg_map_1[1] = -3 refers to scalar 2 but only 1 "
                "scalars were given");
  EXPECT_EQ(error([](Call& c) { c.I32("num_threads_1", -2); }),
            kInvalid + "kernel axpy: num_threads_1 must be >= 0, got -2");
  EXPECT_EQ(error([](Call& c) { c.Str("symbol_1", "nope_launch"); }),
            kInvalid + "kernel axpy: symbol 'nope_launch' not found in kernel "
                       "library " + kTestKernels);
}

}  // namespace
}  // namespace jtc
