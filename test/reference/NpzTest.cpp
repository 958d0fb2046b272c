//===- NpzTest.cpp - The .npz reader ---------------------------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "support/Npz.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

namespace {

namespace fs = std::filesystem;
using namespace femc;

/// A one-member archive as np.savez writes it (stored, no ZIP64 fields).
std::vector<uint8_t> archive(const std::string &member,
                             const std::vector<uint8_t> &payload,
                             uint16_t method = 0, bool badCrc = false) {
  std::vector<uint8_t> z;
  auto put16 = [&](uint32_t v) {
    z.push_back(v & 0xff);
    z.push_back((v >> 8) & 0xff);
  };
  auto put32 = [&](uint32_t v) {
    put16(v & 0xffff);
    put16(v >> 16);
  };
  uint32_t crc = npz::crc32(payload.data(), payload.size()) ^ (badCrc ? 1 : 0);
  put32(0x04034b50);
  put16(20); put16(0); put16(method); put16(0); put16(0);
  put32(crc); put32(payload.size()); put32(payload.size());
  put16(member.size()); put16(0);
  z.insert(z.end(), member.begin(), member.end());
  z.insert(z.end(), payload.begin(), payload.end());
  uint32_t directory = z.size();
  put32(0x02014b50);
  put16(20); put16(20); put16(0); put16(method); put16(0); put16(0);
  put32(crc); put32(payload.size()); put32(payload.size());
  put16(member.size()); put16(0); put16(0); put16(0); put16(0); put32(0);
  put32(0);
  z.insert(z.end(), member.begin(), member.end());
  uint32_t directorySize = z.size() - directory;
  put32(0x06054b50);
  put16(0); put16(0); put16(1); put16(1);
  put32(directorySize); put32(directory); put16(0);
  return z;
}

std::vector<uint8_t> npyImage() {
  npy::Array a;
  a.dtype = "f32";
  a.shape = {2};
  float values[2] = {1.5f, -2.0f};
  a.bytes.resize(8);
  std::memcpy(a.bytes.data(), values, 8);
  std::string error;
  return *npy::serializeNpy(a, error);
}

TEST(Npz, Crc32) {
  const char *text = "123456789";
  EXPECT_EQ(npz::crc32(reinterpret_cast<const uint8_t *>(text), 9),
            0xcbf43926u);
}

TEST(Npz, ReadsStoredMember) {
  std::vector<uint8_t> z = archive("W_q.weight.npy", npyImage());
  std::string error;
  auto members = npz::parseNpz(z.data(), z.size(), "a.npz", error);
  ASSERT_TRUE(members) << error;
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].name, "W_q.weight");
  EXPECT_EQ((*members)[0].array.shape, std::vector<int64_t>{2});
}

TEST(Npz, RefusesDeflate) {
  std::vector<uint8_t> z = archive("x.npy", npyImage(), 8);
  std::string error;
  EXPECT_FALSE(npz::parseNpz(z.data(), z.size(), "a.npz", error));
  EXPECT_EQ(error, "a.npz: member 'x.npy' is compressed with DEFLATE "
                   "(np.savez_compressed writes that); save the arrays with "
                   "np.savez, which stores them uncompressed");
}

TEST(Npz, RefusesBadCrc) {
  std::vector<uint8_t> z = archive("x.npy", npyImage(), 0, true);
  std::string error;
  EXPECT_FALSE(npz::parseNpz(z.data(), z.size(), "a.npz", error));
  EXPECT_EQ(error,
            "a.npz: member 'x.npy' fails its CRC-32 check: the archive is "
            "damaged");
}

TEST(Npz, RefusesNonZipAndTruncated) {
  std::vector<uint8_t> z = archive("x.npy", npyImage());
  std::string error;
  std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_FALSE(npz::parseNpz(text.data(), text.size(), "a.npz", error));
  EXPECT_NE(error.find("not a ZIP archive"), std::string::npos) << error;
  // Cut in the middle of the data: no end record any more.
  EXPECT_FALSE(npz::parseNpz(z.data(), z.size() / 2, "a.npz", error));
  EXPECT_NE(error.find("not a ZIP archive"), std::string::npos) << error;
}

TEST(Npz, RefusesNonNpyMember) {
  std::vector<uint8_t> z = archive("notes.txt", npyImage());
  std::string error;
  EXPECT_FALSE(npz::parseNpz(z.data(), z.size(), "a.npz", error));
  EXPECT_EQ(error, "a.npz: member 'notes.txt' is not an .npy array (an .npz "
                   "holds only NAME.npy members)");
}

TEST(Npz, ReadsTheCheckpoint) {
  std::string error;
  auto members = npz::readNpz(
      (fs::path(FEMC_SHARED_DIR) / "vectors" / "checkpoint_gla_defaults_T24" /
       "state.npz")
          .string(),
      error);
  ASSERT_TRUE(members) << error;
  EXPECT_EQ(members->size(), 26u);
  EXPECT_EQ(members->front().name, "_beta_param");
}

} // namespace
