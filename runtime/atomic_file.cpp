#include "runtime/atomic_file.h"

#include "ir/error.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

namespace kiln {

namespace {

// Removes `path.tmp.<pid>` files left by writers that died before commit()
// or their destructor could run (kill -9, a power cut): each one would
// otherwise stay next to the checkpoint forever. Only files whose pid names
// no running process go; a live writer's temporary is never touched, and a
// pid reused by an unrelated process keeps its file (the safe mistake).
// Best effort: a directory that cannot be listed leaves everything as is.
void remove_stale_temporaries(const std::string &path) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.parent_path();
  std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  fs::directory_iterator it(dir.empty() ? fs::path(".") : dir, ec);
  if (ec)
    return;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec)
      return;
    std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix))
      continue;
    const char *first = name.data() + prefix.size();
    const char *last = name.data() + name.size();
    pid_t pid = 0;
    auto [end, err] = std::from_chars(first, last, pid);
    if (err != std::errc() || end != last || pid <= 0 || *first == '0' ||
        pid == ::getpid())
      continue;
    // ESRCH: no such process. EPERM means it exists under another user.
    if (::kill(pid, 0) == -1 && errno == ESRCH && it->is_regular_file(ec))
      ::unlink(it->path().c_str());
  }
}

} // namespace

AtomicFile::AtomicFile(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)),
      tmp_(fmt::format("{}.tmp.{}", path_, ::getpid())) {
  remove_stale_temporaries(path_);
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
