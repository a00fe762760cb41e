#include "library_cache.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace jtc {

LibraryCache& LibraryCache::Global() {
  // Leaked on purpose: handles must outlive every executable, even at exit.
  static LibraryCache* cache = new LibraryCache();
  return *cache;
}

std::string LibraryCache::Load(std::string_view path, std::string_view hash,
                               void** handle) {
  std::string path_str(path), hash_str(hash);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = handle_by_hash_.find(hash_str); it != handle_by_hash_.end()) {
    *handle = it->second;
    return "";
  }
  // dlopen would hand back the object already loaded from this path.
  if (auto it = hash_by_path_.find(path_str); it != hash_by_path_.end()) {
    return "kernel library " + path_str + " was loaded with content hash " +
           it->second + " and is now given with hash " + hash_str +
           "; a rebuilt library must be written to a new path";
  }
  if (access(path_str.c_str(), R_OK) != 0) {
    return "cannot read kernel library " + path_str + ": " +
           std::strerror(errno);
  }
  // A name without '/' would make dlopen search the system library path.
  std::string open_path =
      path_str.find('/') == std::string::npos ? "./" + path_str : path_str;
  dlopen_calls_.fetch_add(1);
  void* h = dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* err = dlerror();
    return "dlopen failed for kernel library " + path_str + ": " +
           (err ? err : "unknown error");
  }
  handle_by_hash_.emplace(hash_str, h);
  hash_by_path_.emplace(path_str, hash_str);
  *handle = h;
  return "";
}

std::string LibraryCache::FindSymbol(void* handle, std::string_view path,
                                     std::string_view symbol, void** address) {
  std::string name(symbol);
  dlerror();  // clear a stale error so the one below is ours
  void* sym = dlsym(handle, name.c_str());
  if (sym == nullptr) {
    return "symbol '" + name + "' not found in kernel library " +
           std::string(path);
  }
  *address = sym;
  return "";
}

}  // namespace jtc
