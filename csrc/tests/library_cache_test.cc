#include "library_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_kernels.h"

namespace jtc {
namespace {

namespace fs = std::filesystem;
using testing::kTestKernels;

// A copy of the test library at a path of its own (dlopen keys on the path).
class LibraryCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("jtc_cache_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Copy(const std::string& name) {
    fs::path path = dir_ / name;
    fs::copy_file(kTestKernels, path, fs::copy_options::overwrite_existing);
    return path.string();
  }

  fs::path dir_;
};

TEST_F(LibraryCacheTest, LoadsOncePerContentHash) {
  LibraryCache cache;
  const std::string a = Copy("a.so"), b = Copy("b.so");
  void* h1 = nullptr;
  void* h2 = nullptr;
  void* h3 = nullptr;
  ASSERT_EQ(cache.Load(a, "hash-1", &h1), "");
  ASSERT_EQ(cache.Load(a, "hash-1", &h2), "");
  ASSERT_EQ(cache.Load(b, "hash-1", &h3), "");  // same content elsewhere
  EXPECT_NE(h1, nullptr);
  EXPECT_EQ(h1, h2);
  EXPECT_EQ(h1, h3);
  EXPECT_EQ(cache.dlopen_calls(), 1);

  void* h4 = nullptr;
  ASSERT_EQ(cache.Load(b, "hash-2", &h4), "");
  EXPECT_NE(h4, h1);
  EXPECT_EQ(cache.dlopen_calls(), 2);
}

TEST_F(LibraryCacheTest, SafeUnderConcurrentLoads) {
  LibraryCache cache;
  const std::string path = Copy("shared.so");
  constexpr int kThreads = 8;
  std::vector<void*> handles(kThreads * 50, nullptr);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string err = cache.Load(path, "same-hash", &handles[t * 50 + i]);
        if (!err.empty()) errors[t] = err;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& err : errors) EXPECT_EQ(err, "");
  EXPECT_EQ(std::set<void*>(handles.begin(), handles.end()).size(), 1u);
  EXPECT_NE(handles[0], nullptr);
  EXPECT_EQ(cache.dlopen_calls(), 1);
}

TEST_F(LibraryCacheTest, FindsSymbols) {
  LibraryCache cache;
  const std::string path = Copy("sym.so");
  void* handle = nullptr;
  ASSERT_EQ(cache.Load(path, "h", &handle), "");
  void* address = nullptr;
  EXPECT_EQ(LibraryCache::FindSymbol(handle, path, "axpy_launch", &address),
            "");
  EXPECT_NE(address, nullptr);
  EXPECT_EQ(LibraryCache::FindSymbol(handle, path, "nope_launch", &address),
            "symbol 'nope_launch' not found in kernel library " + path);
}

TEST_F(LibraryCacheTest, MissingLibrary) {
  LibraryCache cache;
  const std::string path = (dir_ / "missing.so").string();
  void* handle = nullptr;
  EXPECT_EQ(cache.Load(path, "h", &handle),
            "cannot read kernel library " + path + ": No such file or directory");
  EXPECT_EQ(cache.dlopen_calls(), 0);
}

TEST_F(LibraryCacheTest, NotALibrary) {
  LibraryCache cache;
  const std::string path = (dir_ / "junk.so").string();
  FILE* f = fopen(path.c_str(), "w");
  fputs("not an ELF file", f);
  fclose(f);
  void* handle = nullptr;
  std::string err = cache.Load(path, "junk", &handle);
  EXPECT_EQ(err.rfind("dlopen failed for kernel library " + path + ": ", 0), 0u)
      << err;
  // Failures are not cached: a fixed file loads later.
  Copy("junk.so");
  EXPECT_EQ(cache.Load(path, "junk", &handle), "");
}

TEST_F(LibraryCacheTest, RejectsNewContentAtLoadedPath) {
  LibraryCache cache;
  const std::string path = Copy("rebuilt.so");
  void* handle = nullptr;
  ASSERT_EQ(cache.Load(path, "old", &handle), "");
  EXPECT_EQ(cache.Load(path, "new", &handle),
            "kernel library " + path +
                " was loaded with content hash old and is now given with hash "
                "new; a rebuilt library must be written to a new path");
}

}  // namespace
}  // namespace jtc
