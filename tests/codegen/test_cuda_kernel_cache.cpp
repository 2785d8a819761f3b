// The on-disk kernel cache: round trip, keys, atomic writes, and corrupt
// entries detected, removed and never returned.
#include "codegen/cuda_kernel_cache.h"
#include "codegen/cuda_nvrtc.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <unistd.h>

namespace kiln::cuda {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path p = fs::temp_directory_path() /
               ("kiln_cache_test_" + std::to_string(::getpid()) + "_" +
                std::to_string(reinterpret_cast<uintptr_t>(this)));
  TempDir() { fs::create_directories(p); }
  ~TempDir() { fs::remove_all(p); }
};

TEST(CudaKernelCache, RoundTripAndNoTemporaries) {
  TempDir d;
  KernelCache c(d.p);
  std::string key = KernelCache::make_key("src", "-O3", "sm_90", "13.0");
  EXPECT_FALSE(c.load(key));
  std::string payload("\x7f"
                      "ELF binary\0with nul",
                      20);
  c.store(key, payload);
  auto got = c.load(key);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, payload);
  EXPECT_EQ(c.hits(), 1);
  int files = 0;
  for (auto &e : fs::directory_iterator(d.p)) {
    ++files;
    EXPECT_EQ(e.path().extension(), ".bin") << e.path();
  }
  EXPECT_EQ(files, 1);
}

TEST(CudaKernelCache, KeyCoversEveryInput) {
  std::string k = KernelCache::make_key("a", "b", "sm_90", "13.0");
  EXPECT_EQ(k.size(), 32u);
  EXPECT_EQ(k, KernelCache::make_key("a", "b", "sm_90", "13.0"));
  EXPECT_NE(k, KernelCache::make_key("a ", "b", "sm_90", "13.0"));
  EXPECT_NE(k,
            KernelCache::make_key("a", "b --use_fast_math", "sm_90", "13.0"));
  EXPECT_NE(k, KernelCache::make_key("a", "b", "sm_100", "13.0"));
  EXPECT_NE(k, KernelCache::make_key("a", "b", "sm_90", "13.1"));
  // Field boundaries matter: "ab"+"" differs from "a"+"b".
  EXPECT_NE(KernelCache::make_key("ab", "", "x", "y"),
            KernelCache::make_key("a", "b", "x", "y"));
}

TEST(CudaKernelCache, CorruptEntriesAreDetectedAndRemoved) {
  TempDir d;
  KernelCache c(d.p);
  std::string payload(1000, 'k');
  auto corrupt = [&](const std::string &key, auto mutate) {
    c.store(key, payload);
    fs::path p = c.path_of(key);
    std::string data;
    {
      std::ifstream f(p, std::ios::binary);
      data.assign(std::istreambuf_iterator<char>(f), {});
    }
    mutate(data);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
    EXPECT_FALSE(c.load(key));
    EXPECT_FALSE(fs::exists(p));
  };
  corrupt("k1", [](std::string &s) { s[s.size() - 10] ^= 1; });  // payload bit
  corrupt("k2", [](std::string &s) { s.resize(s.size() - 1); }); // truncated
  corrupt("k3", [](std::string &s) { s[0] = 'X'; });             // magic
  corrupt("k4", [](std::string &s) { s[10] ^= 0x40; });          // key hash
  corrupt("k5", [](std::string &s) { s.clear(); });              // empty
  EXPECT_EQ(c.corrupt_entries(), 5);
  // A rebuilt entry loads again.
  c.store("k1", payload);
  EXPECT_EQ(c.load("k1").value_or(""), payload);
}

TEST(CudaKernelCache, DisabledCacheDoesNothing) {
  KernelCache c{fs::path()};
  EXPECT_FALSE(c.enabled());
  c.store("k", "v");
  EXPECT_FALSE(c.load("k"));
}

TEST(CudaKernelCache, NvrtcUsesTheCache) {
  std::string why;
  if (!nvrtc_available(&why))
    GTEST_SKIP() << "no NVRTC: " << why;
  TempDir d;
  KernelCache c(d.p);
  std::string src = "extern \"C\" __global__ void k(float *p) { p[0] = 1; }";
  NvrtcOptions o;
  NvrtcResult a = nvrtc_compile(src, "k", o, &c);
  EXPECT_FALSE(a.from_cache);
  NvrtcResult b = nvrtc_compile(src, "k", o, &c);
  EXPECT_TRUE(b.from_cache);
  EXPECT_EQ(a.binary, b.binary);
  o.ptx = true; // other options: a miss
  EXPECT_FALSE(nvrtc_compile(src, "k", o, &c).from_cache);
  // A corrupt cubin entry is rebuilt, not loaded.
  std::string key = KernelCache::make_key(
      src, fmt::format("{}", fmt::join(NvrtcOptions{}.args(), " ")), "sm_90",
      nvrtc_version());
  ASSERT_TRUE(fs::exists(c.path_of(key)));
  {
    std::fstream f(c.path_of(key),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(60);
    f.put('\xff');
  }
  NvrtcResult r = nvrtc_compile(src, "k", NvrtcOptions{}, &c);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.binary, a.binary);
  EXPECT_EQ(c.corrupt_entries(), 1);
}

} // namespace
} // namespace kiln::cuda
