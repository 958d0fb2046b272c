//===- NpyTest.cpp - Tests of the .npy reader and writer ------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "support/Npy.h"
#include "support/Random.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include <sys/stat.h>

namespace {

namespace fs = std::filesystem;
using femc::npy::Array;

/// A path in the test temporary directory, unique per test.
std::string tempPath(const std::string &suffix) {
  const ::testing::TestInfo *info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  return (fs::path(::testing::TempDir()) /
          (std::string("femref_npy_") + info->name() + "_" + suffix + ".npy"))
      .string();
}

/// A .npy image of format `major`.0 with the given header dict text and
/// payload, the header padded like NumPy does.
std::vector<uint8_t> makeImage(unsigned major, std::string dict,
                               const std::vector<uint8_t> &payload) {
  size_t lengthBytes = major == 1 ? 2 : 4;
  size_t prefix = 8 + lengthBytes;
  dict.append((64 - (prefix + dict.size() + 1) % 64) % 64, ' ');
  dict += '\n';
  std::vector<uint8_t> image = {
      0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  for (size_t i = 0; i < lengthBytes; ++i)
    image.push_back(static_cast<uint8_t>((dict.size() >> (8 * i)) & 0xff));
  image.insert(image.end(), dict.begin(), dict.end());
  image.insert(image.end(), payload.begin(), payload.end());
  return image;
}

template <typename T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(T));
  if (!v.empty())
    std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

void writeFile(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char *>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(file.good()) << "cannot write " << path;
}

std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(file)),
                              std::istreambuf_iterator<char>());
}

/// Parses `image` as if read from a file called "x.npy"; expects failure and
/// returns the error.
std::string parseError(const std::vector<uint8_t> &image) {
  std::string error;
  std::optional<Array> array =
      femc::npy::parseNpy(image.data(), image.size(), "x.npy", error);
  EXPECT_FALSE(array) << "parsed an invalid image";
  return error;
}

const char *kF4Dict = "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (2, 3), }";

TEST(NpyTest, Float32RoundTrip) {
  femc::Rng rng(7);
  std::vector<float> values(2 * 3 * 5);
  rng.fillNormal(values);
  values[3] = std::numeric_limits<float>::infinity();
  values[4] = -0.0f;
  std::string path = tempPath("f32"), error;
  ASSERT_TRUE(femc::npy::writeFloat32(path, {2, 3, 5}, values.data(), error))
      << error;

  std::optional<Array> array = femc::npy::readNpy(path, error);
  ASSERT_TRUE(array) << error;
  EXPECT_EQ(array->dtype, "f32");
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3, 5}));
  EXPECT_EQ(array->numElements(), 30);
  std::vector<float> back;
  ASSERT_TRUE(femc::npy::toFloat32(*array, back, error)) << error;
  ASSERT_EQ(back.size(), values.size());
  EXPECT_EQ(std::memcmp(back.data(), values.data(), 30 * sizeof(float)), 0);

  // Version 1.0, header padded so the data starts at a multiple of 64.
  std::vector<uint8_t> image = readFile(path);
  ASSERT_GE(image.size(), 10u);
  EXPECT_EQ(image[6], 1);
  EXPECT_EQ(image[7], 0);
  size_t dataStart = 10 + (image[8] | (image[9] << 8));
  EXPECT_EQ(dataStart % 64, 0u);
  EXPECT_EQ(image[dataStart - 1], '\n');
  EXPECT_EQ(image.size(), dataStart + 30 * sizeof(float));
}

TEST(NpyTest, WritesTheBytesNumPyWrites) {
  // The authors' vectors were written by NumPy; serialising the same data
  // must give the same file.
  fs::path file = fs::path(FEMC_SHARED_DIR) / "vectors" / "ssm" / "D.npy";
  if (!fs::exists(file))
    GTEST_SKIP() << "reference vectors not found at " << file.string();
  std::string error;
  std::optional<Array> array = femc::npy::readNpy(file.string(), error);
  ASSERT_TRUE(array) << error;
  std::optional<std::vector<uint8_t>> image =
      femc::npy::serializeNpy(*array, error);
  ASSERT_TRUE(image) << error;
  EXPECT_EQ(*image, readFile(file.string()));
}

TEST(NpyTest, Float64RoundTripAndRounding) {
  std::vector<double> values = {0.1, -1.0 / 3.0, 1e300, 1e-320};
  std::string path = tempPath("f64"), error;
  ASSERT_TRUE(femc::npy::writeFloat64(path, {4}, values.data(), error))
      << error;
  std::optional<Array> array = femc::npy::readNpy(path, error);
  ASSERT_TRUE(array) << error;
  EXPECT_EQ(array->dtype, "f64");
  EXPECT_EQ(array->shape, std::vector<int64_t>{4});
  std::vector<double> wide;
  ASSERT_TRUE(femc::npy::toFloat64(*array, wide, error)) << error;
  EXPECT_EQ(wide, values);
  std::vector<float> narrow;
  ASSERT_TRUE(femc::npy::toFloat32(*array, narrow, error)) << error;
  ASSERT_EQ(narrow.size(), 4u);
  EXPECT_EQ(narrow[0], 0.1f); // Round to nearest, not truncation.
  EXPECT_EQ(narrow[1], -1.0f / 3.0f);
  EXPECT_EQ(narrow[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(narrow[3], 0.0f);
}

TEST(NpyTest, BoolRoundTrip) {
  std::vector<uint8_t> mask = {0, 1, 7, 0, 255, 1};
  std::string path = tempPath("bool"), error;
  ASSERT_TRUE(femc::npy::writeBool(path, {2, 3}, mask.data(), error)) << error;
  std::optional<Array> array = femc::npy::readNpy(path, error);
  ASSERT_TRUE(array) << error;
  EXPECT_EQ(array->dtype, "bool");
  EXPECT_EQ(array->bytes, (std::vector<uint8_t>{0, 1, 1, 0, 1, 1}));
  std::vector<uint8_t> back;
  ASSERT_TRUE(femc::npy::toBool(*array, back, error)) << error;
  EXPECT_EQ(back, (std::vector<uint8_t>{0, 1, 1, 0, 1, 1}));
  // A bool array is not floating point.
  std::vector<float> floats;
  EXPECT_FALSE(femc::npy::toFloat32(*array, floats, error));
  EXPECT_NE(error.find("cannot convert dtype 'bool'"), std::string::npos)
      << error;
}

TEST(NpyTest, ScalarAndEmptyShapes) {
  float scalar = 2.5f;
  std::string path = tempPath("scalar"), error;
  ASSERT_TRUE(femc::npy::writeFloat32(path, {}, &scalar, error)) << error;
  std::optional<Array> array = femc::npy::readNpy(path, error);
  ASSERT_TRUE(array) << error;
  EXPECT_TRUE(array->shape.empty());
  EXPECT_EQ(array->numElements(), 1);

  path = tempPath("empty");
  ASSERT_TRUE(femc::npy::writeFloat32(path, {0, 3}, nullptr, error)) << error;
  array = femc::npy::readNpy(path, error);
  ASSERT_TRUE(array) << error;
  EXPECT_EQ(array->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(array->bytes.empty());
}

TEST(NpyTest, FormatShape) {
  EXPECT_EQ(femc::npy::formatShape({}), "()");
  EXPECT_EQ(femc::npy::formatShape({3}), "(3,)");
  EXPECT_EQ(femc::npy::formatShape({2, 64, 4}), "(2, 64, 4)");
}

TEST(NpyTest, ReadsVersions2And3) {
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  for (unsigned major : {2u, 3u}) {
    std::vector<uint8_t> image = makeImage(major, kF4Dict, bytesOf(values));
    std::string error;
    std::optional<Array> array =
        femc::npy::parseNpy(image.data(), image.size(), "v.npy", error);
    ASSERT_TRUE(array) << "version " << major << ": " << error;
    EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3}));
    std::vector<float> back;
    ASSERT_TRUE(femc::npy::toFloat32(*array, back, error));
    EXPECT_EQ(back, values);
  }
}

TEST(NpyTest, ReadsFloat16) {
  // 1, -2, 0.5, +inf, the smallest subnormal 2^-24, NaN, 65504 (max).
  std::vector<uint16_t> halves = {0x3c00, 0xc000, 0x3800, 0x7c00,
                                  0x0001, 0x7e00, 0x7bff};
  std::vector<uint8_t> image =
      makeImage(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }",
                bytesOf(halves));
  std::string error;
  std::optional<Array> array =
      femc::npy::parseNpy(image.data(), image.size(), "h.npy", error);
  ASSERT_TRUE(array) << error;
  EXPECT_EQ(array->dtype, "f16");
  std::vector<float> values;
  ASSERT_TRUE(femc::npy::toFloat32(*array, values, error)) << error;
  ASSERT_EQ(values.size(), 7u);
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], -2.0f);
  EXPECT_EQ(values[2], 0.5f);
  EXPECT_EQ(values[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(values[4], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isnan(values[5]));
  EXPECT_EQ(values[6], 65504.0f);
}

TEST(NpyTest, ReadsIntegerTypes) {
  struct Case {
    const char *descr;
    const char *dtype;
    std::vector<uint8_t> payload;
  };
  std::vector<Case> cases = {
      {"|b1", "bool", {1, 0, 1}},
      {"|i1", "i8", {0xff, 0, 2}},
      {"|u1", "u8", {200, 0, 2}},
      {"<i4", "i32", bytesOf(std::vector<int32_t>{-1, 0, 1 << 20})},
      {"<i8", "i64", bytesOf(std::vector<int64_t>{int64_t(1) << 40, 0, -5})},
  };
  for (const Case &c : cases) {
    std::vector<uint8_t> image =
        makeImage(1,
                  std::string("{'descr': '") + c.descr +
                      "', 'fortran_order': False, 'shape': (3,), }",
                  c.payload);
    std::string error;
    std::optional<Array> array =
        femc::npy::parseNpy(image.data(), image.size(), "i.npy", error);
    ASSERT_TRUE(array) << c.descr << ": " << error;
    EXPECT_EQ(array->dtype, c.dtype);
    EXPECT_EQ(array->bytes, c.payload);
    std::vector<uint8_t> mask;
    ASSERT_TRUE(femc::npy::toBool(*array, mask, error)) << error;
    EXPECT_EQ(mask, (std::vector<uint8_t>{1, 0, 1})) << c.descr;
  }
}

TEST(NpyTest, MissingFile) {
  std::string path = tempPath("missing"), error;
  fs::remove(path);
  EXPECT_FALSE(femc::npy::readNpy(path, error));
  EXPECT_EQ(error, path + ": cannot open for reading: No such file or "
                          "directory");
}

TEST(NpyTest, TruncatedFile) {
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  std::vector<uint8_t> image = makeImage(1, kF4Dict, bytesOf(values));

  // Cut inside the data: reported through readNpy with the file's path.
  std::string path = tempPath("truncated"), error;
  writeFile(path, std::vector<uint8_t>(image.begin(), image.end() - 3));
  EXPECT_FALSE(femc::npy::readNpy(path, error));
  EXPECT_EQ(error, path + ": truncated data: shape (2, 3) of <f4 needs 24 "
                          "bytes but only 21 follow (file size 149 bytes, "
                          "expected 152)");

  // Cut inside the header, before the header length, and empty.
  std::string message =
      parseError(std::vector<uint8_t>(image.begin(), image.begin() + 40));
  EXPECT_EQ(message.find("x.npy: truncated header"), 0u) << message;
  message = parseError(std::vector<uint8_t>(image.begin(), image.begin() + 9));
  EXPECT_EQ(message.find("x.npy: truncated file"), 0u) << message;
  message = parseError(std::vector<uint8_t>(image.begin(), image.begin() + 4));
  EXPECT_EQ(message.find("x.npy: truncated file"), 0u) << message;
  message = parseError({});
  EXPECT_EQ(message, "x.npy: truncated file: it is empty");
}

TEST(NpyTest, SizeMismatch) {
  std::vector<float> values = {1, 2, 3, 4, 5, 6, 7};
  std::string message = parseError(makeImage(1, kF4Dict, bytesOf(values)));
  EXPECT_EQ(message, "x.npy: size mismatch: shape (2, 3) of <f4 needs 24 "
                     "bytes but 28 follow the header (file size 156 bytes, "
                     "expected 152)");

  // The same through readNpy: a file longer than its header says.
  std::string path = tempPath("long"), error;
  writeFile(path, makeImage(1, kF4Dict, bytesOf(values)));
  EXPECT_FALSE(femc::npy::readNpy(path, error));
  EXPECT_EQ(error, path + ": size mismatch: shape (2, 3) of <f4 needs 24 "
                          "bytes but 28 follow the header (file size 156 "
                          "bytes, expected 152)");
}

TEST(NpyTest, OnlyRegularFiles) {
  // A directory: refused before reading (libstdc++'s filebuf threw here).
  std::string dir = fs::path(::testing::TempDir()).string(), error;
  EXPECT_FALSE(femc::npy::readNpy(dir, error));
  EXPECT_EQ(error, dir + ": is a directory, not a regular .npy file");
  // A device that never ends.
  EXPECT_FALSE(femc::npy::readNpy("/dev/zero", error));
  EXPECT_EQ(error, "/dev/zero: is a character device, not a regular .npy "
                   "file");
  // A FIFO with no writer: refused without blocking in open().
  std::string fifo = tempPath("fifo");
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  EXPECT_FALSE(femc::npy::readNpy(fifo, error));
  EXPECT_EQ(error, fifo + ": is a FIFO, not a regular .npy file");
  fs::remove(fifo);
}

TEST(NpyTest, HugeShapeInSmallFileIsNotAllocated) {
  // The header claims 2^40 floats (4 TiB); the file has 8 bytes of data. The
  // size check comes before any allocation, so this fails with the sizes
  // instead of std::bad_alloc.
  std::string path = tempPath("huge"), error;
  writeFile(path, makeImage(1,
                            "{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (1099511627776,), }",
                            std::vector<uint8_t>(8)));
  EXPECT_FALSE(femc::npy::readNpy(path, error));
  EXPECT_EQ(error, path + ": truncated data: shape (1099511627776,) of <f4 "
                          "needs 4398046511104 bytes but only 8 follow (file "
                          "size 136 bytes, expected 4398046511232)");
  // A shape whose byte count overflows 64 bits.
  writeFile(path, makeImage(1,
                            "{'descr': '<f8', 'fortran_order': False, "
                            "'shape': (4294967296, 4294967296), }",
                            {}));
  EXPECT_FALSE(femc::npy::readNpy(path, error));
  EXPECT_EQ(error, path + ": shape (4294967296, 4294967296) of <f8 is too "
                          "large: its byte count overflows 64 bits");
}

TEST(NpyTest, HeaderLengthIsBounded) {
  // A version 2.0 file that declares a 4 GiB header: refused from the length
  // field alone.
  std::vector<uint8_t> image = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0,
                                0xff, 0xff, 0xff, 0xff};
  image.resize(100, ' ');
  std::string path = tempPath("longheader"), error;
  writeFile(path, image);
  EXPECT_FALSE(femc::npy::readNpy(path, error));
  EXPECT_EQ(error, path + ": header length 4294967295 bytes exceeds the "
                          "limit of 1048576 bytes");
  EXPECT_EQ(parseError(image), "x.npy: header length 4294967295 bytes "
                               "exceeds the limit of 1048576 bytes");
  // Within the limit but longer than the file.
  image[10] = image[11] = 0;
  writeFile(path, image);
  EXPECT_FALSE(femc::npy::readNpy(path, error));
  EXPECT_EQ(error, path + ": truncated header: it declares 65535 bytes but "
                          "only 88 follow");
}

TEST(NpyTest, WriteErrorsSayWhy) {
  std::string dir = fs::path(::testing::TempDir()).string(), error;
  float x = 1.0f;
  EXPECT_FALSE(femc::npy::writeFloat32(dir, {1}, &x, error));
  EXPECT_EQ(error, dir + ": cannot open for writing: Is a directory");
}

TEST(NpyTest, BadMagic) {
  std::vector<uint8_t> image = makeImage(1, kF4Dict, std::vector<uint8_t>(24));
  image[1] = 'X';
  EXPECT_EQ(parseError(image),
            "x.npy: bad magic: not a .npy file (it must start with "
            "\\x93NUMPY)");
  std::string text = "PK\x03\x04 this is a zip, maybe an .npz";
  EXPECT_EQ(parseError(std::vector<uint8_t>(text.begin(), text.end()))
                .find("x.npy: bad magic"),
            0u);
}

TEST(NpyTest, BigEndian) {
  std::string message = parseError(makeImage(
      1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }",
      std::vector<uint8_t>(24)));
  EXPECT_EQ(message, "x.npy: big-endian dtype '>f4' is not supported; "
                     "convert it with .astype('<f4')");
}

TEST(NpyTest, FortranOrder) {
  std::string message = parseError(
      makeImage(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                std::vector<uint8_t>(24)));
  EXPECT_EQ(message, "x.npy: Fortran-order arrays are not supported "
                     "(fortran_order is True); save a C-contiguous array");
}

TEST(NpyTest, UnsupportedDtypeVersionAndHeader) {
  std::string message = parseError(
      makeImage(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }",
                std::vector<uint8_t>(24)));
  EXPECT_EQ(message.find("x.npy: unsupported dtype '<c8'"), 0u) << message;

  message = parseError(makeImage(
      1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
      std::vector<uint8_t>(12)));
  EXPECT_NE(message.find("structured arrays"), std::string::npos) << message;

  std::vector<uint8_t> image = makeImage(1, kF4Dict, std::vector<uint8_t>(24));
  image[6] = 4;
  EXPECT_EQ(parseError(image), "x.npy: unsupported .npy format version 4.0 "
                               "(supported: 1.0, 2.0, 3.0)");

  message = parseError(makeImage(1, "{'descr': '<f4', 'shape': (2, 3), }", {}));
  EXPECT_EQ(message, "x.npy: malformed header: header has no 'fortran_order' "
                     "key");
}

TEST(NpyTest, MessagesStayOneLine) {
  // Header text echoed into a message is escaped: a key or descr with a
  // newline (fuzz finding header-key-with-newline.npy) gives one line.
  std::string message = parseError(makeImage(1, "{'k\n': 0, }", {}));
  EXPECT_EQ(message, "x.npy: malformed header: unexpected key 'k\\x0a' in "
                     "the header dict");
  message = parseError(makeImage(
      1, "{'descr': '<\x01\n', 'fortran_order': False, 'shape': (1,), }",
      std::vector<uint8_t>(4)));
  EXPECT_EQ(message.find("x.npy: unsupported dtype '<\\x01\\x0a' ("), 0u)
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(NpyTest, WriterRejectsInconsistentArrays) {
  Array array;
  array.dtype = "f32";
  array.shape = {2, 2};
  array.bytes.resize(12);
  std::string path = tempPath("bad"), error;
  EXPECT_FALSE(femc::npy::writeNpy(path, array, error));
  EXPECT_EQ(error, path + ": shape (2, 2) of f32 needs 16 bytes but the "
                          "array holds 12");
  array.dtype = "c64";
  EXPECT_FALSE(femc::npy::writeNpy(path, array, error));
  EXPECT_NE(error.find("unknown dtype 'c64'"), std::string::npos) << error;
}

TEST(NpyTest, RngIsDeterministic) {
  femc::Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    EXPECT_NE(x, c.next());
  }
  // uniform stays in range and the normal deviates look standard.
  femc::Rng rng(1);
  double sum = 0.0, sumSquares = 0.0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double u = rng.uniform(-2.0, 3.0);
    EXPECT_GE(u, -2.0);
    EXPECT_LT(u, 3.0);
    double z = rng.normal();
    sum += z;
    sumSquares += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.05);
  EXPECT_NEAR(sumSquares / n, 1.0, 0.05);
}

} // namespace
