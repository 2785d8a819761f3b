#include "runtime/atomic_file.h"

#include "ir/error.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace kiln {

AtomicFile::AtomicFile(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)),
      tmp_(fmt::format("{}.tmp.{}", path_, ::getpid())) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0)
    fail("{}: {}: cannot create {}: {}", path_, what_, tmp_,
         std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (committed_)
    return;
  if (fd_ >= 0)
    ::close(fd_);
  ::unlink(tmp_.c_str());
}

void AtomicFile::give_up(const char *step, int err) {
  fail("{}: {}: {} {}: {}", path_, what_, step, tmp_, std::strerror(err));
}

void AtomicFile::write(const void *src, size_t n) {
  const auto *p = static_cast<const char *>(src);
  while (n > 0) {
    ssize_t put = ::write(fd_, p, n);
    if (put < 0 && errno == EINTR)
      continue;
    if (put <= 0)
      give_up("writing", put < 0 ? errno : EIO);
    p += put;
    n -= static_cast<size_t>(put);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0)
    give_up("flushing", errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0)
    give_up("closing", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    fail("{}: {}: renaming {} over it: {}", path_, what_, tmp_,
         std::strerror(errno));
  committed_ = true;
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(),
                   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

} // namespace kiln
