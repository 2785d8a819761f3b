#include "codegen/cuda_kernel_cache.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <system_error>
#include <unistd.h>

namespace kiln::cuda {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'K', 'C', '0', '1'};
constexpr size_t kHeader = 8 + 16 + 8 + 8; // magic, key hash, size, checksum

uint64_t fnv1a(std::string_view d, uint64_t h) {
  for (unsigned char c : d) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t mix(uint64_t z) { // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void put64(std::string &s, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::pair<uint64_t, uint64_t> hash128(std::string_view d) {
  uint64_t a = fnv1a(d, 0xcbf29ce484222325ull);
  uint64_t b = fnv1a(d, 0x84222325cbf29ce4ull ^ d.size());
  return {mix(a ^ (b << 1)), mix(b + 0x9e3779b97f4a7c15ull * a)};
}

} // namespace

std::string hash_hex(std::string_view data) {
  auto [a, b] = hash128(data);
  return fmt::format("{:016x}{:016x}", a, b);
}

uint64_t checksum64(std::string_view data) {
  return mix(fnv1a(data, 0x6c62272e07bb0142ull) ^ data.size());
}

KernelCache::KernelCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

std::filesystem::path KernelCache::default_dir() {
  if (const char *off = std::getenv("KILN_KERNEL_CACHE");
      off && std::string_view(off) == "0")
    return {};
  std::filesystem::path root;
  if (const char *d = std::getenv("KILN_CACHE_DIR"); d && *d)
    root = d;
  else if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
    root = std::filesystem::path(x) / "kiln";
  else if (const char *h = std::getenv("HOME"); h && *h)
    root = std::filesystem::path(h) / ".cache" / "kiln";
  else
    return {};
  return root / "cuda";
}

KernelCache &KernelCache::instance() {
  static KernelCache cache(default_dir());
  return cache;
}

std::string KernelCache::make_key(std::string_view source,
                                  std::string_view options,
                                  std::string_view arch,
                                  std::string_view compiler_version) {
  // Length-prefixed fields, so that no two different inputs concatenate to
  // the same text.
  std::string all = "kiln-kernel-cache-v1";
  for (std::string_view f : {source, options, arch, compiler_version}) {
    all += fmt::format("|{}:", f.size());
    all += f;
  }
  return hash_hex(all);
}

std::filesystem::path KernelCache::path_of(const std::string &key) const {
  return dir_ / (key + ".bin");
}

std::optional<std::string> KernelCache::load(const std::string &key) const {
  if (!enabled())
    return std::nullopt;
  std::filesystem::path p = path_of(key);
  std::ifstream f(p, std::ios::binary);
  if (!f)
    return std::nullopt;
  std::string data((std::istreambuf_iterator<char>(f)),
                   std::istreambuf_iterator<char>());
  f.close();
  auto corrupt = [&]() -> std::optional<std::string> {
    ++corrupt_;
    std::error_code ec;
    std::filesystem::remove(p, ec);
    return std::nullopt;
  };
  if (data.size() < kHeader || std::memcmp(data.data(), kMagic, 8) != 0)
    return corrupt();
  std::string want_key;
  auto [a, b] = hash128(key);
  put64(want_key, a);
  put64(want_key, b);
  if (data.compare(8, 16, want_key) != 0)
    return corrupt();
  uint64_t size = get64(data.data() + 24), sum = get64(data.data() + 32);
  if (size != data.size() - kHeader)
    return corrupt();
  std::string payload = data.substr(kHeader);
  if (checksum64(payload) != sum)
    return corrupt();
  ++hits_;
  return payload;
}

void KernelCache::store(const std::string &key,
                        std::string_view payload) const {
  if (!enabled())
    return;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec)
    return;
  std::string data(kMagic, 8);
  auto [a, b] = hash128(key);
  put64(data, a);
  put64(data, b);
  put64(data, payload.size());
  put64(data, checksum64(payload));
  data += payload;
  static std::atomic<uint64_t> counter{0};
  std::filesystem::path final_path = path_of(key);
  std::filesystem::path tmp =
      final_path.string() +
      fmt::format(".tmp.{}.{}", static_cast<long>(getpid()), counter++);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f)
      return;
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f) {
      f.close();
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  // rename(2) replaces the target atomically within one file system.
  std::filesystem::rename(tmp, final_path, ec);
  if (ec)
    std::filesystem::remove(tmp, ec);
}

} // namespace kiln::cuda
