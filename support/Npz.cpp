//===- Npz.cpp - Read NumPy .npz archives ----------------------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
//
// The ZIP structures are those of PKWARE's APPNOTE.TXT (sections 4.3 and
// 4.5.3): the end of central directory record (and its ZIP64 form), the
// central directory, and each member's local header in front of its data.
//
//===----------------------------------------------------------------------===//

#include "support/Npz.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sys/stat.h>

namespace femc::npz {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentral = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr size_t kEndSize = 22, kCentralSize = 46, kLocalSize = 30;
constexpr size_t kLocatorSize = 20, kZip64EndSize = 56;
/// The largest .npz read, so that a bad size cannot ask for the whole disk.
constexpr uint64_t kMaxFileSize = uint64_t(1) << 40;

uint16_t read16(const uint8_t *p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t read32(const uint8_t *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
         uint32_t(p[3]) << 24;
}
uint64_t read64(const uint8_t *p) {
  return uint64_t(read32(p)) | uint64_t(read32(p + 4)) << 32;
}

const char *methodName(uint16_t method) {
  switch (method) {
  case 8:
    return "DEFLATE";
  case 9:
    return "DEFLATE64";
  case 12:
    return "BZIP2";
  case 14:
    return "LZMA";
  case 93:
    return "Zstandard";
  default:
    return "an unknown method";
  }
}

/// One central-directory entry, with its ZIP64 fields applied.
struct Entry {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t compressedSize = 0, size = 0, localOffset = 0;
};

} // namespace

uint32_t crc32(const uint8_t *data, size_t size) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < size; ++i)
    c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::optional<std::vector<Member>> parseNpz(const uint8_t *data, size_t size,
                                            const std::string &name,
                                            std::string &error) {
  auto fail = [&](const std::string &message)
      -> std::optional<std::vector<Member>> {
    error = name + ": " + message;
    return std::nullopt;
  };
  if (size >= 4 && read32(data) != kLocalHeader &&
      read32(data) != kEndOfCentral)
    return fail("not a ZIP archive (an .npz is one; the file starts with "
                "neither a ZIP local header nor an empty archive's record)");
  // The end of central directory record: the last 22 bytes, or earlier when
  // the archive has a comment (at most 65535 bytes).
  if (size < kEndSize)
    return fail("not a ZIP archive (" + std::to_string(size) +
                " bytes, shorter than ZIP's 22-byte end record)");
  size_t end = size - kEndSize;
  size_t lowest = size - kEndSize > 65535 ? size - kEndSize - 65535 : 0;
  while (read32(data + end) != kEndOfCentral ||
         end + kEndSize + read16(data + end + 20) != size) {
    if (end == lowest)
      return fail("not a ZIP archive (no end of central directory record)");
    --end;
  }
  const uint8_t *eocd = data + end;
  uint64_t entries = read16(eocd + 10), directorySize = read32(eocd + 12),
           directoryOffset = read32(eocd + 16);
  if (read16(eocd + 4) != 0 || read16(eocd + 6) != 0)
    return fail("the archive is split over several disks; only single-file "
                "archives are supported");
  if (entries == 0xffff || directorySize == 0xffffffffu ||
      directoryOffset == 0xffffffffu) {
    if (end < kLocatorSize || read32(data + end - kLocatorSize) != kZip64Locator)
      return fail("the end record asks for ZIP64 fields but the archive has "
                  "no ZIP64 locator");
    uint64_t at = read64(data + end - kLocatorSize + 8);
    if (at > size || size - at < kZip64EndSize || read32(data + at) != kZip64End)
      return fail("the ZIP64 end of central directory record is missing or "
                  "outside the file");
    entries = read64(data + at + 32);
    directorySize = read64(data + at + 40);
    directoryOffset = read64(data + at + 48);
  }
  if (directoryOffset > size || directorySize > size - directoryOffset)
    return fail("the central directory (" + std::to_string(directorySize) +
                " bytes at offset " + std::to_string(directoryOffset) +
                ") lies outside the file of " + std::to_string(size) +
                " bytes");

  std::vector<Entry> list;
  uint64_t at = directoryOffset, stop = directoryOffset + directorySize;
  for (uint64_t i = 0; i < entries; ++i) {
    std::string where = "central directory entry #" + std::to_string(i);
    if (stop - at < kCentralSize || read32(data + at) != kCentralHeader)
      return fail(where + " is missing or damaged");
    const uint8_t *c = data + at;
    Entry e;
    e.flags = read16(c + 8);
    e.method = read16(c + 10);
    e.crc = read32(c + 16);
    e.compressedSize = read32(c + 20);
    e.size = read32(c + 24);
    uint16_t nameLength = read16(c + 28), extraLength = read16(c + 30),
             commentLength = read16(c + 32);
    e.localOffset = read32(c + 42);
    uint64_t length = kCentralSize + nameLength + extraLength + commentLength;
    if (stop - at < length)
      return fail(where + " runs past the central directory");
    e.name.assign(reinterpret_cast<const char *>(c + kCentralSize), nameLength);
    // ZIP64 extra field: 8-byte values for the fields saturated above, in
    // the order size, compressed size, local header offset.
    const uint8_t *extra = c + kCentralSize + nameLength;
    for (size_t x = 0; x + 4 <= extraLength;) {
      uint16_t id = read16(extra + x), length16 = read16(extra + x + 2);
      if (x + 4 + length16 > extraLength)
        break;
      if (id == 0x0001) {
        const uint8_t *p = extra + x + 4, *pEnd = p + length16;
        for (uint64_t *field : {&e.size, &e.compressedSize, &e.localOffset}) {
          if (*field != 0xffffffffu)
            continue;
          if (pEnd - p < 8)
            return fail("member '" + e.name +
                        "' has a truncated ZIP64 extra field");
          *field = read64(p);
          p += 8;
        }
      }
      x += 4 + length16;
    }
    list.push_back(std::move(e));
    at += length;
  }

  std::vector<Member> members;
  std::set<std::string> seen;
  for (const Entry &e : list) {
    std::string member = "member '" + e.name + "'";
    if (e.flags & 1)
      return fail(member + " is encrypted; femc reads unencrypted archives");
    if (e.method == 8)
      return fail(member + " is compressed with DEFLATE (np.savez_compressed "
                           "writes that); save the arrays with np.savez, "
                           "which stores them uncompressed");
    if (e.method != 0)
      return fail(member + " is compressed with " + methodName(e.method) +
                  " (method " + std::to_string(e.method) +
                  "); femc reads stored (uncompressed) members, as np.savez "
                  "writes them");
    if (e.compressedSize != e.size)
      return fail(member + " is stored but its sizes differ (" +
                  std::to_string(e.compressedSize) + " and " +
                  std::to_string(e.size) + " bytes)");
    if (e.localOffset > size || size - e.localOffset < kLocalSize ||
        read32(data + e.localOffset) != kLocalHeader)
      return fail(member + ": its local header (offset " +
                  std::to_string(e.localOffset) + ") is missing or damaged");
    const uint8_t *local = data + e.localOffset;
    uint64_t dataStart =
        e.localOffset + kLocalSize + read16(local + 26) + read16(local + 28);
    if (dataStart > size || size - dataStart < e.size)
      return fail(member + ": its " + std::to_string(e.size) +
                  " bytes of data run past the end of the file");
    const uint8_t *bytes = data + dataStart;
    if (crc32(bytes, e.size) != e.crc)
      return fail(member + " fails its CRC-32 check: the archive is damaged");
    std::string key = e.name;
    if (key.size() < 4 || key.compare(key.size() - 4, 4, ".npy") != 0)
      return fail(member + " is not an .npy array (an .npz holds only "
                           "NAME.npy members)");
    key.resize(key.size() - 4);
    if (!seen.insert(key).second)
      return fail("two members are called '" + e.name + "'");
    std::string message;
    std::optional<npy::Array> array =
        npy::parseNpy(bytes, e.size, name + "[" + e.name + "]", message);
    if (!array) {
      error = message;
      return std::nullopt;
    }
    members.push_back({key, std::move(*array)});
  }
  return members;
}

std::optional<std::vector<Member>> readNpz(const std::string &path,
                                           std::string &error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    error = path + ": cannot open (" + std::strerror(errno) + ")";
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    error = path + ": not a regular file";
    return std::nullopt;
  }
  if (uint64_t(st.st_size) > kMaxFileSize) {
    error = path + ": " + std::to_string(st.st_size) +
            " bytes, more than the 1 TiB an .npz may have here";
    return std::nullopt;
  }
  std::vector<uint8_t> bytes;
  try {
    bytes.resize(size_t(st.st_size));
  } catch (const std::exception &) {
    error = path + ": cannot allocate " + std::to_string(st.st_size) +
            " bytes to read it";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in ||
      !in.read(reinterpret_cast<char *>(bytes.data()), std::streamsize(bytes.size()))) {
    error = path + ": cannot read " + std::to_string(bytes.size()) + " bytes";
    return std::nullopt;
  }
  return parseNpz(bytes.data(), bytes.size(), path, error);
}

} // namespace femc::npz
