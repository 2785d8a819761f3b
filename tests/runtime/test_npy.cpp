// kiln::read_npy / write_npy: round trips of every dtype and shape (bit-exact:
// i64 beyond 2^53, NaN payloads, -0.0, denormals), the exact bytes numpy.save
// writes, interchange with numpy itself (skipped when no python3 with numpy
// is found), and one clear error per kind of bad file.
#include "runtime/npy.h"

#include "ir/error.h"

#include "../support/files.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace kiln {
namespace {

using testing::read_bytes;
using testing::write_bytes;

const std::string &numpy_python() { return testing::python_with("numpy"); }

// The numbers the tests store: exact in every dtype, different per element.
std::vector<double> sample_values(const std::string &dtype, size_t n) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    double k = static_cast<double>(i);
    if (dtype == "f32")
      v[i] = (k - 3) * 0.375;
    else if (dtype == "f64")
      v[i] = (k - 3) * 0.1;
    else if (dtype == "i32")
      v[i] = k * 1000003 - 7;
    else if (dtype == "i64")
      v[i] = k * 4398046511104.0 - 5; // k * 2^42 - 5
    else
      v[i] = static_cast<double>(i % 3 == 1);
  }
  return v;
}

// An Array of `dtype` and `shape` holding `values` (each exact in the dtype).
Array make(const std::string &dtype, const std::vector<int64_t> &shape,
           const std::vector<double> &values) {
  Array a(Type{*parse_dtype(dtype), shape});
  EXPECT_EQ(static_cast<size_t>(a.numel()), values.size());
  for (size_t i = 0; i < values.size(); ++i)
    a.set(static_cast<int64_t>(i), values[i]);
  return a;
}

// An Array whose elements are exactly these bit patterns.
template <typename T> Array from_bits(DType dtype, const std::vector<T> &bits) {
  Array a(Type{dtype, {static_cast<int64_t>(bits.size())}});
  std::memcpy(a.data(), bits.data(), bits.size() * sizeof(T));
  return a;
}

const std::vector<std::string> kDtypes = {"f32", "f64", "i32", "i64", "bool"};
const std::vector<std::vector<int64_t>> kShapes = {
    {}, {0}, {5}, {2, 3}, {2, 0, 3}, {2, 3, 4}, {1, 1, 1, 1, 7}};

class NpyTest : public testing::TempDirTest {
protected:
  NpyTest() : TempDirTest("kiln-npy-test") {}

  // Runs a python script with numpy; returns its exit status.
  int run_python(const std::string &script) {
    return TempDirTest::run_python(numpy_python(), script);
  }

  // Expects read_npy(p) to throw a kiln::Error naming p and saying `what`.
  static void expect_read_error(const std::string &p, const std::string &what) {
    try {
      read_npy(p);
      ADD_FAILURE() << "no error reading " << p << " (expected '" << what
                    << "')";
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos)
          << "message: " << msg << "\nexpected to contain: " << what;
    }
  }

  // Expects write_npy(p, a) to throw naming p, and to create no file.
  void expect_write_error(const Array &a, const std::string &what) {
    std::string p = path("bad-write.npy");
    try {
      write_npy(p, a);
      ADD_FAILURE() << "no error writing (expected '" << what << "')";
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos)
          << "message: " << msg << "\nexpected to contain: " << what;
    }
    EXPECT_FALSE(fs::exists(p));
    EXPECT_TRUE(only_files_are({})) << "a temporary file was left behind";
  }

  // An .npy file with this header dict, padded as numpy pads it.
  static std::string raw_npy(const std::string &dict, const std::string &data,
                             int major = 1, int minor = 0) {
    size_t len_bytes = major == 1 ? 2 : 4;
    size_t prefix = 8 + len_bytes;
    size_t hlen = dict.size() + 1;
    size_t pad = 64 - (prefix + hlen) % 64;
    std::string out("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += static_cast<char>(minor);
    for (size_t i = 0; i < len_bytes; ++i)
      out += static_cast<char>(((hlen + pad) >> (8 * i)) & 0xff);
    out += dict + std::string(pad, ' ') + "\n" + data;
    return out;
  }
};

// Same dtype, shape and bytes (so NaN payloads and -0.0 count).
void expect_same_array(const Array &got, const Array &want) {
  ASSERT_TRUE(got.defined());
  ASSERT_EQ(got.type().str(), want.type().str());
  size_t elem = dtype_size(want.type().dtype);
  const auto *g = static_cast<const unsigned char *>(got.data());
  const auto *w = static_cast<const unsigned char *>(want.data());
  for (int64_t i = 0; i < want.numel(); ++i)
    EXPECT_EQ(std::memcmp(g + i * elem, w + i * elem, elem), 0)
        << "element " << i << ": " << got.get(i) << " against " << want.get(i);
}

TEST_F(NpyTest, RoundTripsEveryDtypeAndShape) {
  int cases = 0;
  for (const std::string &dtype : kDtypes)
    for (const auto &shape : kShapes) {
      SCOPED_TRACE(fmt::format("{}[{}]", dtype, fmt::join(shape, ",")));
      size_t n = 1;
      for (int64_t d : shape)
        n *= static_cast<size_t>(d);
      Array a = make(dtype, shape, sample_values(dtype, n));
      std::string p = path(fmt::format("a{}.npy", cases++));
      write_npy(p, a);
      expect_same_array(read_npy(p), a);
      // The data starts at a multiple of 64 bytes, after a '\n'.
      std::string bytes = read_bytes(p);
      size_t elem = dtype == "bool"                      ? 1
                    : (dtype == "f32" || dtype == "i32") ? 4
                                                         : 8;
      size_t data_start = bytes.size() - n * elem;
      EXPECT_EQ(data_start % 64, 0u);
      EXPECT_EQ(bytes[data_start - 1], '\n');
    }
  EXPECT_EQ(cases, 35);
}

TEST_F(NpyTest, RoundTripsExtremeValues) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<Array> arrays = {
      make("f32", {6}, {inf, -inf, nan, -0.0, 0x1p-149, 3.4028234663852886e38}),
      make("f64", {6},
           {inf, -inf, nan, -0.0, 0x1p-1074, 1.7976931348623157e308}),
      make("i32", {3}, {-2147483648.0, 2147483647.0, 0}),
      make("i64", {4}, {-0x1p63, 0x1p53, -0x1p53, 9223372036854774784.0}),
      make("bool", {2}, {0, 1}),
  };
  for (const Array &a : arrays) {
    SCOPED_TRACE(a.type().str());
    write_npy(path("x.npy"), a);
    expect_same_array(read_npy(path("x.npy")), a);
  }
  // -0.0 keeps its sign.
  write_npy(path("z.npy"), make("f64", {}, {-0.0}));
  EXPECT_TRUE(std::signbit(read_npy(path("z.npy")).get(0)));
}

TEST_F(NpyTest, WritesTheBytesNumpySaveWrites) {
  // The headers numpy 1.24's numpy.save wrote for these arrays: version 1.0,
  // 118 header bytes (0x76 'v'), growth-axis room, data at byte 128.
  struct Case {
    Array array;
    std::string dict;
  };
  std::vector<Case> cases = {
      {make("f32", {2, 3}, sample_values("f32", 6)),
       "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
      {make("f64", {}, {2.5}),
       "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"},
      {make("i64", {5}, sample_values("i64", 5)),
       "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"},
      {make("bool", {0}, {}),
       "{'descr': '|b1', 'fortran_order': False, 'shape': (0,), }"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.dict);
    write_npy(path("h.npy"), c.array);
    std::string bytes = read_bytes(path("h.npy"));
    std::string want = std::string("\x93NUMPY\x01\x00v\x00", 10) + c.dict;
    want += std::string(127 - want.size(), ' ') + "\n";
    ASSERT_GE(bytes.size(), 128u);
    EXPECT_EQ(bytes.substr(0, 128), want);
  }
  // The data itself is plain little-endian: f64 2.5 is 0x4004000000000000.
  write_npy(path("s.npy"), make("f64", {}, {2.5}));
  std::string bytes = read_bytes(path("s.npy"));
  ASSERT_EQ(bytes.size(), 136u);
  EXPECT_EQ(bytes.substr(128), std::string("\0\0\0\0\0\0\x04\x40", 8));
}

TEST_F(NpyTest, AlignsDataForManyDimensions) {
  for (size_t rank = 0; rank <= 12; ++rank) {
    std::vector<int64_t> shape(rank, 1);
    if (rank > 0)
      shape[0] = 1234567;
    if (rank > 1)
      shape[0] = 0;
    size_t n = rank == 1 ? 1234567 : rank == 0 ? 1 : 0;
    write_npy(path("r.npy"), make("bool", shape, std::vector<double>(n, 1.0)));
    std::string bytes = read_bytes(path("r.npy"));
    size_t start = bytes.size() - n;
    EXPECT_EQ(start % 64, 0u) << "rank " << rank;
    EXPECT_EQ(bytes[start - 1], '\n');
    EXPECT_EQ(read_npy(path("r.npy")).type().shape, shape);
  }
}

TEST_F(NpyTest, NumpyReadsWhatKilnWrites) {
  if (numpy_python().empty())
    GTEST_SKIP() << "no python3 with numpy found (tried $KILN_PYTHON, "
                    "python3, /usr/bin/python3)";
  std::string script = "import io, sys, numpy as np\n"
                       "def values(dtype, n):\n"
                       "    k = np.arange(n, dtype=np.float64)\n"
                       "    if dtype == 'f32': return (k - 3) * 0.375\n"
                       "    if dtype == 'f64': return (k - 3) * 0.1\n"
                       "    if dtype == 'i32': return k * 1000003 - 7\n"
                       "    if dtype == 'i64': return k * 2.0**42 - 5\n"
                       "    return k % 3 == 1\n"
                       "np_type = dict(f32=np.float32, f64=np.float64, "
                       "i32=np.int32, i64=np.int64, bool=np.bool_)\n"
                       "bad = 0\n";
  int count = 0;
  for (const std::string &dtype : kDtypes)
    for (const auto &shape : kShapes) {
      size_t n = 1;
      for (int64_t d : shape)
        n *= static_cast<size_t>(d);
      std::string p = path(fmt::format("k{}.npy", count++));
      write_npy(p, make(dtype, shape, sample_values(dtype, n)));
      std::string shape_tuple =
          shape.size() == 1 ? fmt::format("({},)", shape[0])
                            : fmt::format("({})", fmt::join(shape, ", "));
      script += fmt::format(
          "want = values('{0}', {1}).astype(np_type['{0}']).reshape({2})\n"
          "got = np.load('{3}')\n"
          "if got.dtype != want.dtype or got.shape != want.shape or not "
          "np.array_equal(got, want):\n"
          "    print('{3}: numpy read', got.dtype, got.shape, got); bad += 1\n"
          "buf = io.BytesIO(); np.save(buf, want)\n"
          "if buf.getvalue() != open('{3}', 'rb').read():\n"
          "    print('{3}: bytes differ from numpy.save'); bad += 1\n",
          dtype, n, shape_tuple, p);
    }
  script += "sys.exit(1 if bad else 0)\n";
  EXPECT_EQ(run_python(script), 0);
}

TEST_F(NpyTest, KilnReadsWhatNumpyWrites) {
  if (numpy_python().empty())
    GTEST_SKIP() << "no python3 with numpy found (tried $KILN_PYTHON, "
                    "python3, /usr/bin/python3)";
  std::string d = dir_.string();
  std::string script = fmt::format(
      "import numpy as np\n"
      "d = '{}'\n"
      "np.save(d + '/f32.npy', np.arange(24, dtype=np.float32).reshape(2, 3, "
      "4) / 8)\n"
      "np.save(d + '/f64.npy', np.array([[0.1, -2.5], [1e300, -1e-300]]))\n"
      "np.save(d + '/i32.npy', np.array([-2**31, 2**31 - 1, 7], "
      "dtype=np.int32))\n"
      "np.save(d + '/i64.npy', np.array([-2**53, 2**53, 3], dtype=np.int64))\n"
      "np.save(d + '/bool.npy', np.array([[True, False, True]]))\n"
      "np.save(d + '/scalar.npy', np.float64(-4.25))\n"
      "np.save(d + '/empty.npy', np.zeros((3, 0), dtype=np.int32))\n"
      "np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3))))\n"
      "np.save(d + '/big_endian.npy', np.ones(3, dtype='>f4'))\n"
      "np.save(d + '/f16.npy', np.ones(3, dtype=np.float16))\n"
      "for v in [(2, 0), (3, 0)]:\n"
      "    with open(d + '/v%d.npy' % v[0], 'wb') as f:\n"
      "        np.lib.format.write_array(f, np.arange(6, "
      "dtype=np.int64).reshape(3, 2), version=v)\n",
      d);
  ASSERT_EQ(run_python(script), 0);

  std::vector<double> f32(24);
  for (int i = 0; i < 24; ++i)
    f32[i] = i / 8.0;
  expect_same_array(read_npy(path("f32.npy")), make("f32", {2, 3, 4}, f32));
  expect_same_array(read_npy(path("f64.npy")),
                    make("f64", {2, 2}, {0.1, -2.5, 1e300, -1e-300}));
  expect_same_array(read_npy(path("i32.npy")),
                    make("i32", {3}, {-2147483648.0, 2147483647.0, 7}));
  expect_same_array(read_npy(path("i64.npy")),
                    make("i64", {3}, {-0x1p53, 0x1p53, 3}));
  expect_same_array(read_npy(path("bool.npy")),
                    make("bool", {1, 3}, {1, 0, 1}));
  expect_same_array(read_npy(path("scalar.npy")), make("f64", {}, {-4.25}));
  expect_same_array(read_npy(path("empty.npy")), make("i32", {3, 0}, {}));
  expect_same_array(read_npy(path("v2.npy")),
                    make("i64", {3, 2}, {0, 1, 2, 3, 4, 5}));
  expect_same_array(read_npy(path("v3.npy")),
                    make("i64", {3, 2}, {0, 1, 2, 3, 4, 5}));
  expect_read_error(path("fortran.npy"), "fortran_order is True");
  expect_read_error(path("big_endian.npy"), "unsupported npy dtype '>f4'");
  expect_read_error(path("f16.npy"), "unsupported npy dtype '<f2'");
}

TEST_F(NpyTest, ReadsOtherwiseSpelledHeaders) {
  // Key order, double quotes, no trailing comma, Python 2 longs, no padding.
  std::string data(8, '\0');
  write_bytes(path("a.npy"),
              raw_npy("{\"shape\": (1L, 2L), \"fortran_order\": False, "
                      "\"descr\": \"<i4\"}",
                      data));
  expect_same_array(read_npy(path("a.npy")), make("i32", {1, 2}, {0, 0}));
  std::string tight =
      std::string("\x93NUMPY\x01\x00", 8) + std::string("\x33\x00", 2) +
      "{'descr':'<i4','fortran_order':False,'shape':(2,)}\n" + data;
  ASSERT_EQ(tight.size(), 10u + 0x33 + 8);
  write_bytes(path("b.npy"), tight);
  expect_same_array(read_npy(path("b.npy")), make("i32", {2}, {0, 0}));
}

TEST_F(NpyTest, MissingFileNamesThePath) {
  expect_read_error(path("nope.npy"), "cannot open npy file");
  expect_read_error(dir_.string(), "not a regular file");
}

TEST_F(NpyTest, BadMagicIsReported) {
  std::string good =
      raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
              std::string(4, '\0'));
  write_bytes(path("empty.npy"), "");
  expect_read_error(path("empty.npy"), "bad magic");
  std::string text = good;
  text[1] = 'P';
  write_bytes(path("bad.npy"), text);
  expect_read_error(path("bad.npy"), "bad magic");
  write_bytes(path("zip.npy"), "PK\x03\x04 this is an npz archive");
  expect_read_error(path("zip.npy"), "bad magic");
}

TEST_F(NpyTest, UnsupportedVersionsAreReported) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
  write_bytes(path("v4.npy"), raw_npy(dict, std::string(4, '\0'), 4, 0));
  expect_read_error(path("v4.npy"), "unsupported npy format version 4.0");
  write_bytes(path("v11.npy"), raw_npy(dict, std::string(4, '\0'), 1, 1));
  expect_read_error(path("v11.npy"), "unsupported npy format version 1.1");
  write_bytes(path("v0.npy"), raw_npy(dict, std::string(4, '\0'), 0, 0));
  expect_read_error(path("v0.npy"), "unsupported npy format version 0.0");
}

TEST_F(NpyTest, UnsupportedDtypesAreReported) {
  for (std::string descr : {">f4", "<f2", "<u4", "|u1", "<c8", "|b2", "f4"}) {
    std::string p = path("d.npy");
    write_bytes(p, raw_npy(fmt::format("{{'descr': '{}', 'fortran_order': "
                                       "False, 'shape': (1,), }}",
                                       descr),
                           std::string(8, '\0')));
    expect_read_error(p, fmt::format("unsupported npy dtype '{}'", descr));
  }
  write_bytes(path("s.npy"), raw_npy("{'descr': [('a', '<f4'), ('b', '<i4')], "
                                     "'fortran_order': False, 'shape': (1,), }",
                                     std::string(8, '\0')));
  expect_read_error(path("s.npy"), "structured arrays are not supported");
}

TEST_F(NpyTest, FortranOrderIsReported) {
  write_bytes(path("f.npy"),
              raw_npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, "
                      "2), }",
                      std::string(32, '\0')));
  expect_read_error(path("f.npy"), "fortran_order is True");
}

TEST_F(NpyTest, EveryTruncationIsReported) {
  write_npy(path("full.npy"), make("f32", {2, 3}, sample_values("f32", 6)));
  std::string full = read_bytes(path("full.npy"));
  ASSERT_EQ(full.size(), 128u + 24u);
  for (size_t cut = 0; cut < full.size(); ++cut) {
    SCOPED_TRACE(fmt::format("cut at {}", cut));
    write_bytes(path("cut.npy"), full.substr(0, cut));
    std::string what = cut == 0    ? "bad magic"
                       : cut < 128 ? "truncated npy header"
                                   : "truncated npy data";
    expect_read_error(path("cut.npy"), what);
  }
  write_bytes(path("long.npy"), full + "x");
  expect_read_error(path("long.npy"), "1 unexpected bytes after the npy data");
}

TEST_F(NpyTest, MalformedHeadersAreReported) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "expected '{'"},
      {"[1, 2, 3]", "expected '{'"},
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'fortran_order': False, 'shape': (2,)}", "missing key 'descr'"},
      {"{'descr': '<f4', 'shape': (2,)}", "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }",
       "a one-element shape needs a trailing comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
       "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }",
       "expected '('"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3), }",
       "expected a dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': "
       "(99999999999999999999,), }",
       "dimension too large"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }",
       "expected True or False"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }",
       "expected '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
       "unexpected key 'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': "
       "(2,)}",
       "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } extra",
       "text after the closing '}'"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}",
       "expected '}'"},
      {"{'descr': 'a\\'b', 'fortran_order': False, 'shape': (2,)}",
       "escapes in strings are not supported"},
      {"{'descr: '<f4'}", "expected ':'"},
      {"{'descr': \"<f4", "unterminated string"},
  };
  for (const auto &[dict, what] : cases) {
    SCOPED_TRACE(dict);
    write_bytes(path("m.npy"), raw_npy(dict, std::string(8, '\0')));
    expect_read_error(path("m.npy"), "malformed npy header: " + what);
  }
  // A shape whose size overflows is caught before any allocation.
  write_bytes(path("huge.npy"),
              raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(4294967296, 4294967296), }",
                      std::string(8, '\0')));
  expect_read_error(path("huge.npy"), "is too large");
  write_bytes(path("big.npy"),
              raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(1000000000000,), }",
                      std::string(8, '\0')));
  expect_read_error(path("big.npy"), "truncated npy data");
  // A header length beyond the end of the file.
  std::string text = std::string("\x93NUMPY\x02\x00", 8) +
                     std::string("\xff\xff\xff\x7f", 4) + "{'descr'";
  write_bytes(path("len.npy"), text);
  expect_read_error(path("len.npy"), "truncated npy header");
}

// An Array always matches its dtype and shape, so the only array write_npy
// refuses is an undefined one.
TEST_F(NpyTest, BadArraysAreRefusedBeforeWriting) {
  expect_write_error(Array(), "the array is undefined");
}

TEST_F(NpyTest, OverwritesAtomically) {
  std::string p = path("w.npy");
  write_npy(p, make("f32", {2}, {1, 2}));
  write_npy(p, make("i64", {3}, {4, 5, 6}));
  expect_same_array(read_npy(p), make("i64", {3}, {4, 5, 6}));
  EXPECT_TRUE(only_files_are({"w.npy"}));
}

TEST_F(NpyTest, FailedWriteLeavesTheOldFile) {
  std::string p = path("w.npy");
  write_npy(p, make("f32", {2}, {1, 2}));
  std::string before = read_bytes(p);

  // Limit the size of files this process may write, so that write(2) fails
  // midway (EFBIG) even for root; SIGXFSZ would otherwise kill the process.
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg;
  try {
    write_npy(p, make("f64", {1000}, std::vector<double>(1000, 1.0)));
  } catch (const Error &e) {
    msg = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg;
  EXPECT_NE(msg.find("cannot write npy file"), std::string::npos) << msg;
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_TRUE(only_files_are({"w.npy"}));

  // A missing directory is reported with the path.
  std::string missing = path("no/such/dir/x.npy");
  try {
    write_npy(missing, make("f32", {}, {1}));
    ADD_FAILURE() << "no error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos);
  }
}

// i64 values beyond 2^53 round-trip exactly, INT64_MAX and INT64_MIN
// included: the elements never pass through a double.
TEST_F(NpyTest, I64RoundTripsExactly) {
  const int64_t big = (int64_t{1} << 62) + 1; // 4611686018427387905
  const std::vector<int64_t> v = {big,
                                  std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min(),
                                  -big,
                                  (int64_t{1} << 53) + 1,
                                  std::numeric_limits<int64_t>::max() - 1};
  write_npy(path("i.npy"), from_bits(DType::i64, v));
  Array r = read_npy(path("i.npy"));
  ASSERT_EQ(r.type().str(), "i64[6]");
  EXPECT_EQ(std::vector<int64_t>(r.as<int64_t>(), r.as<int64_t>() + 6), v);
  // The file holds the values themselves.
  std::string bytes = read_bytes(path("i.npy"));
  ASSERT_EQ(bytes.size(), 128u + 48u);
  std::vector<int64_t> stored(6);
  std::memcpy(stored.data(), bytes.data() + 128, 48);
  EXPECT_EQ(stored, v);
}

// Every f32 and f64 bit pattern round-trips: NaN payloads (signalling ones
// too, which a trip through double would quiet), NaN signs, -0.0, the
// smallest and largest denormals, the largest finite values.
TEST_F(NpyTest, FloatBitsRoundTripExactly) {
  const std::vector<uint32_t> f32 = {
      0x7f800001u, // signalling NaN, payload 1
      0x7fc12345u, // quiet NaN with a payload
      0xffa00000u, // negative signalling NaN
      0x80000000u, // -0.0
      0x00000001u, // smallest denormal
      0x807fffffu, // largest negative denormal
      0x7f7fffffu, // FLT_MAX
      0xff800000u, // -inf
  };
  const std::vector<uint64_t> f64 = {
      0x7ff0000000000001u, 0x7ff8dead0000beefu, 0xfff4000000000000u,
      0x8000000000000000u, 0x0000000000000001u, 0x800fffffffffffffu,
      0x7fefffffffffffffu, 0x7ff0000000000000u,
  };
  write_npy(path("f.npy"), from_bits(DType::f32, f32));
  Array r = read_npy(path("f.npy"));
  ASSERT_EQ(r.type().str(), "f32[8]");
  std::vector<uint32_t> got(8);
  std::memcpy(got.data(), r.data(), 32);
  EXPECT_EQ(got, f32);
  std::string bytes = read_bytes(path("f.npy"));
  ASSERT_EQ(bytes.size(), 128u + 32u);
  EXPECT_EQ(std::memcmp(bytes.data() + 128, f32.data(), 32), 0);

  write_npy(path("d.npy"), from_bits(DType::f64, f64));
  Array d = read_npy(path("d.npy"));
  ASSERT_EQ(d.type().str(), "f64[8]");
  std::vector<uint64_t> got64(8);
  std::memcpy(got64.data(), d.data(), 64);
  EXPECT_EQ(got64, f64);
}

// numpy's True is the byte 1: a bool byte other than 0 reads and writes as
// 1, as numpy reads it.
TEST_F(NpyTest, BoolBytesAreZeroOrOne) {
  write_bytes(path("b.npy"),
              raw_npy("{'descr': '|b1', 'fortran_order': False, 'shape': "
                      "(3,), }",
                      std::string("\0\x02\xff", 3)));
  Array r = read_npy(path("b.npy"));
  ASSERT_EQ(r.type().str(), "bool[3]");
  EXPECT_EQ(r.as<uint8_t>()[0], 0);
  EXPECT_EQ(r.as<uint8_t>()[1], 1);
  EXPECT_EQ(r.as<uint8_t>()[2], 1);
  Array w = from_bits(DType::boolean, std::vector<uint8_t>{0, 7, 1});
  write_npy(path("w.npy"), w);
  std::string bytes = read_bytes(path("w.npy"));
  EXPECT_EQ(bytes.substr(bytes.size() - 3), std::string("\0\x01\x01", 3));
}

// A FIFO is refused before it is opened: open() would block until a writer
// comes. The read runs on another thread so that a regression fails the
// test instead of hanging it.
TEST_F(NpyTest, FifoIsRefusedWithoutBlocking) {
  std::string p = path("fifo.npy");
  EXPECT_EQ(
      testing::error_reading_fifo(p, [](const std::string &f) { read_npy(f); }),
      p + ": cannot read npy file: not a regular file");
}

} // namespace
} // namespace kiln
