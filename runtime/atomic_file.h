// AtomicFile: a file written next to its destination and renamed over it by
// commit(), so that a reader sees the old file or the whole new one and an
// error (a full disk, an exception) loses nothing. Destroying an
// uncommitted AtomicFile removes the temporary. Used for checkpoints
// (safetensors) and `kiln run`'s .npy outputs.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

class AtomicFile {
public:
  // Creates `path.tmp.<pid>`, first removing the `path.tmp.<pid>` files of
  // writers that no longer run (killed before they could clean up; a live
  // writer's file is left alone). Errors read "<path>: <what>: <step> <tmp>:
  // <reason>", e.g. "out.npy: cannot write npy file: writing ...".
  AtomicFile(std::string path, std::string what);
  AtomicFile(const AtomicFile &) = delete;
  AtomicFile &operator=(const AtomicFile &) = delete;
  ~AtomicFile();

  void write(const void *src, size_t n);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // Flushes the temporary to disk and renames it over the destination,
  // then flushes the directory (best effort: the file is in place).
  void commit();

private:
  [[noreturn]] void give_up(const char *step, int err);

  std::string path_, what_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

} // namespace kiln
