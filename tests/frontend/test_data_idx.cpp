// IDX reader: round trips through plain and gzip files, a hand-written file
// checked byte for byte, and every kind of bad file rejected with an error
// that names the path.
#include "frontend/idx.h"
#include "ir/error.h"

#include "../support/files.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

class IdxTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("kiln_idx_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

public:
  std::string path(const std::string &name) const {
    return (dir_ / name).string();
  }

protected:
  std::string write_raw(const std::string &name,
                        const std::vector<uint8_t> &bytes) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char *>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  std::string write_gz(const std::string &name,
                       const std::vector<uint8_t> &bytes) const {
    std::string p = path(name);
    gzFile f = gzopen(p.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return p;
  }

  static std::vector<uint8_t> read_bytes(const std::string &p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  fs::path dir_;
};

// Runs `read_idx(p)` and checks that it throws kiln::Error whose message
// names the path and contains `what`.
void expect_rejected(const std::string &p, const std::string &what) {
  try {
    read_idx(p);
    FAIL() << "expected read_idx to reject " << p;
  } catch (const Error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

// A [2,3] u8 array: 00 00 08 02, dims 2 and 3, then 6 bytes.
std::vector<uint8_t> small_u8_file() {
  return {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 255};
}

TEST_F(IdxTest, ReadsHandWrittenPlainAndGzipFiles) {
  for (bool gz : {false, true}) {
    std::string p = gz ? write_gz("a.gz", small_u8_file())
                       : write_raw("a", small_u8_file());
    IdxArray a = read_idx(p);
    EXPECT_EQ(a.type, IdxType::u8);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.data, (std::vector<uint8_t>{1, 2, 3, 250, 251, 255}));
    EXPECT_EQ(idx_to_floats(a), (std::vector<float>{1, 2, 3, 250, 251, 255}));
  }
}

TEST_F(IdxTest, WriterProducesTheDocumentedBytes) {
  IdxArray a{IdxType::u8, {2, 3}, {1, 2, 3, 250, 251, 255}};
  write_idx(path("w"), a, /*gzip=*/false);
  EXPECT_EQ(read_bytes(path("w")), small_u8_file());
}

TEST_F(IdxTest, RoundTripsEveryTypePlainAndGzip) {
  // Each value is stored big-endian; idx_to_floats must undo that.
  struct Case {
    IdxType type;
    std::vector<uint8_t> bytes;
    std::vector<float> values;
  };
  std::vector<Case> cases = {
      {IdxType::u8, {0, 7, 255}, {0, 7, 255}},
      {IdxType::i8, {0x80, 0xFF, 5}, {-128, -1, 5}},
      {IdxType::i16, {0x01, 0x02, 0xFF, 0xFE, 0, 0}, {258, -2, 0}},
      {IdxType::i32,
       {0, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 9},
       {65536, -1, 9}},
      // 1.0f = 3f800000, -2.5f = c0200000, 0.
      {IdxType::f32,
       {0x3F, 0x80, 0, 0, 0xC0, 0x20, 0, 0, 0, 0, 0, 0},
       {1.0f, -2.5f, 0.0f}},
      // 0.5 = 3fe0000000000000, -4 = c010000000000000, 0.
      {IdxType::f64,
       {0x3F, 0xE0, 0, 0, 0, 0, 0, 0, 0xC0, 0x10, 0, 0,
        0,    0,    0, 0, 0, 0, 0, 0, 0,    0,    0, 0},
       {0.5f, -4.0f, 0.0f}},
  };
  for (const Case &c : cases) {
    for (bool gz : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << "type 0x" << std::hex << int(c.type) << " gzip " << gz);
      IdxArray a{c.type, {3, 1}, c.bytes};
      std::string p = path(gz ? "t.gz" : "t");
      write_idx(p, a, gz);
      IdxArray b = read_idx(p);
      EXPECT_EQ(b.type, c.type);
      EXPECT_EQ(b.dims, a.dims);
      EXPECT_EQ(b.data, c.bytes);
      EXPECT_EQ(idx_to_floats(b), c.values);
    }
  }
}

TEST_F(IdxTest, RoundTripsALargeGzipArray) {
  IdxArray a{IdxType::u8, {1000, 28, 28}, {}};
  a.data.resize(1000 * 28 * 28);
  for (size_t i = 0; i < a.data.size(); ++i)
    a.data[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  write_idx(path("big.gz"), a, /*gzip=*/true);
  EXPECT_LT(fs::file_size(path("big.gz")), a.data.size() + 16);
  IdxArray b = read_idx(path("big.gz"));
  EXPECT_EQ(b.dims, a.dims);
  EXPECT_EQ(b.data, a.data);
}

TEST_F(IdxTest, RejectsMissingFileAndDirectory) {
  expect_rejected(path("nope.gz"), "no such file");
  expect_rejected(dir_.string(), "is a directory");
}

TEST_F(IdxTest, RejectsBadMagic) {
  expect_rejected(write_raw("magic", {1, 0, 8, 1, 0, 0, 0, 1, 5}),
                  "not an IDX file");
  expect_rejected(write_gz("magic.gz", {0, 9, 8, 1, 0, 0, 0, 1, 5}),
                  "not an IDX file");
  expect_rejected(write_raw("empty", {}), "not an IDX file");
  expect_rejected(write_raw("short", {0, 0}), "not an IDX file");
}

TEST_F(IdxTest, RejectsUnsupportedTypeCode) {
  expect_rejected(write_raw("type", {0, 0, 0x0A, 1, 0, 0, 0, 1, 5}),
                  "unsupported IDX type code 0x0a");
}

TEST_F(IdxTest, RejectsZeroRankAndTruncatedHeader) {
  expect_rejected(write_raw("rank0", {0, 0, 8, 0}), "rank is 0");
  expect_rejected(write_raw("hdr", {0, 0, 8, 2, 0, 0, 0, 1, 0}),
                  "truncated header");
}

TEST_F(IdxTest, RejectsTruncatedPayload) {
  std::vector<uint8_t> bytes = small_u8_file();
  bytes.pop_back();
  expect_rejected(write_raw("trunc", bytes), "truncated");
  expect_rejected(write_gz("trunc.gz", bytes), "need 6 bytes");
  // i32 elements: 3 of them need 12 bytes.
  expect_rejected(write_raw("trunc32", {0, 0, 0x0C, 1, 0, 0, 0, 3, 0, 0, 0, 1,
                                        0, 0, 0, 2, 0, 0}),
                  "need 12 bytes of data, the file has 10");
}

TEST_F(IdxTest, RejectsTrailingBytes) {
  std::vector<uint8_t> bytes = small_u8_file();
  bytes.push_back(42);
  bytes.push_back(43);
  expect_rejected(write_raw("trail", bytes), "2 trailing bytes");
  expect_rejected(write_gz("trail.gz", bytes), "2 trailing bytes");
}

TEST_F(IdxTest, RejectsCorruptGzip) {
  IdxArray a{IdxType::u8, {4000}, {}};
  for (int i = 0; i < 4000; ++i)
    a.data.push_back(static_cast<uint8_t>((i * 7919) % 251));
  write_idx(path("ok.gz"), a, /*gzip=*/true);
  std::vector<uint8_t> gz = read_bytes(path("ok.gz"));
  ASSERT_GT(gz.size(), 64u);

  // Damaged deflate data in the middle of the stream.
  std::vector<uint8_t> flipped = gz;
  for (size_t i = gz.size() / 2; i < gz.size() / 2 + 8; ++i)
    flipped[i] ^= 0xFF;
  expect_rejected(write_raw("flipped.gz", flipped), "corrupt gzip");

  // A stream cut off halfway.
  std::vector<uint8_t> cut(gz.begin(), gz.begin() + gz.size() / 2);
  expect_rejected(write_raw("cut.gz", cut), "corrupt gzip");

  // A damaged CRC in the trailer: the data decompresses but does not check.
  std::vector<uint8_t> crc = gz;
  crc[crc.size() - 6] ^= 0x01;
  expect_rejected(write_raw("crc.gz", crc), "corrupt gzip");

  // A gzip magic followed by an unknown compression method.
  expect_rejected(write_raw("method.gz", {0x1F, 0x8B, 0x07, 0, 0, 0, 0, 0, 0, 3,
                                          1, 2, 3, 4}),
                  "corrupt gzip");
}

// A gzip IDX file of `n` u8 elements whose bytes compress only partly, so
// that the deflate data is long and a flipped byte lands in real data.
std::vector<uint8_t> gzip_idx_bytes(IdxTest &t, const std::string &name,
                                    int n) {
  IdxArray a{IdxType::u8, {n}, {}};
  for (int i = 0; i < n; ++i)
    a.data.push_back(static_cast<uint8_t>((i * 2654435761u) >> 27));
  std::string p = t.path(name);
  write_idx(p, a, /*gzip=*/true);
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST_F(IdxTest, RejectsGzipCutInsideTheTrailer) {
  // zlib's gzread took a stream ending inside (or right before) the
  // CRC32/ISIZE trailer for a normal end of file: a download cut short by a
  // few bytes loaded without complaint, depending on where zlib's buffers
  // happened to end: the old reader caught these cuts with 3000 elements
  // and missed them with 2^20 (and with Fashion-MNIST's training images).
  for (int n : {3000, 1 << 20}) {
    std::vector<uint8_t> gz = gzip_idx_bytes(*this, "whole.gz", n);
    ASSERT_NO_THROW(read_idx(path("whole.gz")));
    for (size_t cut : {1, 4, 8}) {
      SCOPED_TRACE(::testing::Message() << n << " elements, cut " << cut);
      std::vector<uint8_t> bytes(gz.begin(), gz.end() - cut);
      std::string p = write_raw("cut.gz", bytes);
      expect_rejected(p, "corrupt gzip stream: truncated: the CRC32/ISIZE "
                         "trailer has " +
                             std::to_string(8 - cut) + " of its 8 bytes");
    }
    // Cut inside the deflate data: also truncated, not a short payload.
    std::vector<uint8_t> bytes(gz.begin(), gz.end() - 20);
    expect_rejected(write_raw("cut20.gz", bytes),
                    "corrupt gzip stream: truncated");
  }
}

TEST_F(IdxTest, RejectsGzipWithAFlippedByte) {
  std::vector<uint8_t> gz = gzip_idx_bytes(*this, "whole.gz", 200000);
  // One byte in the middle of the deflate data: either the data no longer
  // decodes or it decodes to something else, which the CRC catches.
  std::vector<uint8_t> body = gz;
  body[body.size() / 2] ^= 0x10;
  expect_rejected(write_raw("body.gz", body), "corrupt gzip stream");
  // A byte of the CRC32 (the trailer's first four bytes).
  std::vector<uint8_t> crc = gz;
  crc[crc.size() - 7] ^= 0x01;
  expect_rejected(write_raw("crc.gz", crc), "CRC32 mismatch");
  // A byte of ISIZE (the uncompressed length mod 2^32).
  std::vector<uint8_t> isize = gz;
  isize[isize.size() - 2] ^= 0x01;
  expect_rejected(write_raw("isize.gz", isize), "length mismatch");
}

TEST_F(IdxTest, RejectsGarbageAfterTheGzipStream) {
  std::vector<uint8_t> gz = gzip_idx_bytes(*this, "whole.gz", 3000);
  gz.push_back(0);
  gz.push_back(0);
  expect_rejected(write_raw("garbage.gz", gz),
                  "unexpected byte 0x00 at byte " +
                      std::to_string(gz.size() - 2) +
                      " after the end of the gzip data");
}

TEST_F(IdxTest, ReadsConcatenatedGzipMembersAndHeaderFields) {
  // gzip(1) and others write a file name and may concatenate members; the
  // stream is valid and decodes to the concatenated data. Split the small
  // file into two members, the first with a file name, extra field and
  // comment.
  std::vector<uint8_t> all = small_u8_file();
  std::vector<uint8_t> out;
  for (int part = 0; part < 2; ++part) {
    std::vector<uint8_t> in(part == 0 ? all.begin() : all.begin() + 7,
                            part == 0 ? all.begin() + 7 : all.end());
    z_stream z{};
    ASSERT_EQ(
        deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
        Z_OK);
    gz_header h{};
    Bytef name[] = "train-images-idx3-ubyte", comment[] = "c";
    Bytef extra[] = {'A', 'B', 2, 0, 7, 7};
    if (part == 0) {
      h.name = name;
      h.comment = comment;
      h.extra = extra;
      h.extra_len = sizeof extra;
      h.hcrc = 1;
      ASSERT_EQ(deflateSetHeader(&z, &h), Z_OK);
    }
    std::vector<uint8_t> buf(256);
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = buf.data();
    z.avail_out = static_cast<uInt>(buf.size());
    ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.insert(out.end(), buf.begin(), buf.begin() + z.total_out);
    deflateEnd(&z);
  }
  IdxArray a = read_idx(write_raw("two.gz", out));
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data, (std::vector<uint8_t>{1, 2, 3, 250, 251, 255}));
}

TEST_F(IdxTest, RejectsAFifoWithoutBlocking) {
  // Opening a FIFO for reading waits for a writer: read_idx used to block
  // there forever.
  std::string p = path("fifo");
  std::string msg =
      testing::error_reading_fifo(p, [](const std::string &f) { read_idx(f); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a regular file (a FIFO)"), std::string::npos) << msg;
}

TEST_F(IdxTest, RejectsACharacterDevice) {
  // /dev/zero would read as an endless stream of zeros.
  expect_rejected("/dev/zero", "not a regular file (a character device)");
}

TEST_F(IdxTest, RejectionsCloseTheFile) {
  // An error thrown while the reader was still being set up (a FIFO, a bad
  // gzip header) used to leak its file descriptor and zlib state.
  auto open_fds = [] {
    return std::distance(fs::directory_iterator("/proc/self/fd"),
                         fs::directory_iterator{});
  };
  std::string fifo = path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  std::string method = write_raw(
      "method.gz", {0x1F, 0x8B, 0x07, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4});
  std::string header = write_raw(
      "header.gz", {0x1F, 0x8B, 8, 0x08, 0, 0, 0, 0, 0, 3, 'n', 'a', 'm', 'e'});
  std::vector<uint8_t> gz = gzip_idx_bytes(*this, "whole.gz", 3000);
  std::string cut = write_raw("cut.gz", {gz.begin(), gz.end() - 4});
  auto before = open_fds();
  for (int i = 0; i < 20; ++i)
    for (const std::string &p : {fifo, method, header, cut, dir_.string()})
      EXPECT_THROW(read_idx(p), Error) << p;
  EXPECT_EQ(open_fds(), before);
}

TEST_F(IdxTest, WriterRejectsMismatchedData) {
  IdxArray a{IdxType::i32, {2}, {1, 2, 3}};
  EXPECT_THROW(write_idx(path("bad"), a, false), Error);
  EXPECT_THROW(write_idx((dir_ / "no" / "such" / "dir").string(),
                         IdxArray{IdxType::u8, {1}, {1}}, false),
               Error);
}

} // namespace
} // namespace kiln
