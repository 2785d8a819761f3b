// The on-disk kernel cache: compiled kernels (cubin or PTX) keyed by a hash
// of what determines them (source, compiler options, architecture, NVRTC
// version), under $XDG_CACHE_HOME/kiln/cuda (default ~/.cache/kiln/cuda;
// KILN_CACHE_DIR overrides the root, KILN_KERNEL_CACHE=0 turns it off).
//
// An entry is one file, written to a temporary name and renamed into place
// so that concurrent writers and crashes never leave a half-written entry
// under the real name. It starts with a header (magic, the key's hash, the
// payload size and a checksum of the payload); a load that finds a bad
// header, a wrong key, a short file or a checksum mismatch reports a miss,
// deletes the entry and counts it in corrupt_entries(), so the caller
// rebuilds and a corrupt kernel is never loaded.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::cuda {

// A 128-bit hash as 32 hex digits (two independent 64-bit FNV-1a streams,
// finalized with a 64-bit mixer); not cryptographic, ample for a cache key.
std::string hash_hex(std::string_view data);
// A 64-bit checksum of bytes.
uint64_t checksum64(std::string_view data);

class KernelCache {
public:
  // `dir` empty: a disabled cache (every load misses, stores do nothing).
  explicit KernelCache(std::filesystem::path dir);

  // The process-wide cache in the default place (see above).
  static KernelCache &instance();
  static std::filesystem::path default_dir();

  bool enabled() const { return !dir_.empty(); }
  const std::filesystem::path &dir() const { return dir_; }

  // The key of a compilation: every input that changes the output.
  static std::string make_key(std::string_view source, std::string_view options,
                              std::string_view arch,
                              std::string_view compiler_version);
  // The file that holds the entry of `key`.
  std::filesystem::path path_of(const std::string &key) const;

  std::optional<std::string> load(const std::string &key) const;
  // Best effort: a cache that cannot be written is not an error.
  void store(const std::string &key, std::string_view payload) const;

  int64_t hits() const { return hits_; }
  int64_t corrupt_entries() const { return corrupt_; }

private:
  std::filesystem::path dir_;
  mutable std::atomic<int64_t> hits_{0}, corrupt_{0};
};

} // namespace kiln::cuda
