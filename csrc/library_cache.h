// Process-wide cache of dlopen'ed kernel libraries, keyed by content hash.
#ifndef JAX_TRITON_CPU_LIBRARY_CACHE_H_
#define JAX_TRITON_CPU_LIBRARY_CACHE_H_

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace jtc {

// Thread-safe.  Each content hash is dlopen'ed once (RTLD_NOW | RTLD_LOCAL) and
// never dlclose'd: compiled executables keep function pointers into it, and
// XLA gives no signal when the last of them is gone.
// Errors come back as messages (empty string = success); nothing aborts.
class LibraryCache {
 public:
  // The cache shared by every handler in the process.
  static LibraryCache& Global();

  // Sets *handle to the library with content `hash`, loading `path` the first
  // time that hash is seen.
  std::string Load(std::string_view path, std::string_view hash,
                   void** handle);

  // Sets *address to `symbol` in a loaded library (`path` is for messages).
  static std::string FindSymbol(void* handle, std::string_view path,
                                std::string_view symbol, void** address);

  // Number of dlopen calls so far (for tests).
  int64_t dlopen_calls() const { return dlopen_calls_.load(); }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, void*> handle_by_hash_;
  // Path -> hash it was loaded with: dlopen returns the already-loaded object
  // for a path it has seen, so a path must not come back with new contents.
  std::unordered_map<std::string, std::string> hash_by_path_;
  std::atomic<int64_t> dlopen_calls_{0};
};

}  // namespace jtc

#endif  // JAX_TRITON_CPU_LIBRARY_CACHE_H_
