//===- Npy.cpp - Read and write NumPy .npy files --------------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "support/Npy.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "femc::npy copies element bytes as they are and so needs a "
              "little-endian host");
#endif

namespace femc::npy {

/// The six magic bytes every .npy file starts with.
static constexpr char kMagic[] = "\x93NUMPY";
static constexpr size_t kMagicSize = 6;

namespace {

/// Text from a file's header as it may appear in a one-line message:
/// control and non-ASCII bytes as \xNN, at most 64 characters.
std::string printable(const std::string &text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 64)
      return out + "...";
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

/// One supported element type: its name in `Array::dtype`, the type code
/// NumPy writes after the byte-order character, and its size.
struct DTypeInfo {
  const char *name;
  const char *code;
  size_t size;
};

/// A recursive-descent parser for the Python dict literal in a .npy header,
/// e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
class HeaderParser {
public:
  explicit HeaderParser(const std::string &text) : text(text) {}

  /// Parses the whole header; on failure `error` says what is wrong (without
  /// the file name).
  bool parse(std::string &descr, bool &fortranOrder,
             std::vector<int64_t> &shape, std::string &error) {
    bool haveDescr = false, haveOrder = false, haveShape = false;
    skipSpace();
    if (!consume('{'))
      return fail("header is not a Python dict (no '{')", error);
    while (true) {
      skipSpace();
      if (consume('}'))
        break;
      std::string key;
      if (!parseString(key))
        return fail("expected a quoted key in the header dict", error);
      skipSpace();
      if (!consume(':'))
        return fail("expected ':' after key '" + printable(key) + "'", error);
      skipSpace();
      if (key == "descr") {
        if (peek() == '[')
          return fail("unsupported dtype: structured arrays (a list descr) "
                      "are not supported",
                      error);
        if (!parseString(descr))
          return fail("'descr' is not a quoted string", error);
        haveDescr = true;
      } else if (key == "fortran_order") {
        if (!parseBool(fortranOrder))
          return fail("'fortran_order' is not True or False", error);
        haveOrder = true;
      } else if (key == "shape") {
        if (!parseShape(shape, error))
          return false;
        haveShape = true;
      } else {
        return fail("unexpected key '" + printable(key) + "' in the header dict",
                    error);
      }
      skipSpace();
      if (consume(','))
        continue;
      skipSpace();
      if (consume('}'))
        break;
      return fail("expected ',' or '}' in the header dict", error);
    }
    // After the dict: the spaces that pad the header, then its final newline.
    size_t end = text.size();
    if (end > pos && text[end - 1] == '\n')
      --end;
    size_t extra = text.find_first_not_of(' ', pos);
    if (extra < end) {
      std::string shown = text.substr(extra, std::min<size_t>(16, end - extra));
      shown.erase(shown.find_last_not_of(' ') + 1);
      return fail("unexpected text after the header dict's closing '}' "
                  "(at byte " +
                      std::to_string(extra) + " of the header: '" +
                      printable(shown) +
                      "'); a .npy header is the dict, spaces and one final "
                      "newline",
                  error);
    }
    if (!haveDescr)
      return fail("header has no 'descr' key", error);
    if (!haveOrder)
      return fail("header has no 'fortran_order' key", error);
    if (!haveShape)
      return fail("header has no 'shape' key", error);
    return true;
  }

private:
  static bool fail(const std::string &message, std::string &error) {
    error = message;
    return false;
  }

  char peek() const { return pos < text.size() ? text[pos] : '\0'; }

  bool consume(char c) {
    if (peek() != c)
      return false;
    ++pos;
    return true;
  }

  void skipSpace() {
    while (pos < text.size() &&
           std::isspace(static_cast<unsigned char>(text[pos])))
      ++pos;
  }

  bool parseString(std::string &result) {
    char quote = peek();
    if (quote != '\'' && quote != '"')
      return false;
    size_t end = text.find(quote, pos + 1);
    if (end == std::string::npos)
      return false;
    result = text.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    return true;
  }

  bool parseBool(bool &result) {
    if (text.compare(pos, 4, "True") == 0) {
      pos += 4;
      result = true;
      return true;
    }
    if (text.compare(pos, 5, "False") == 0) {
      pos += 5;
      result = false;
      return true;
    }
    return false;
  }

  bool parseShape(std::vector<int64_t> &shape, std::string &error) {
    shape.clear();
    if (!consume('('))
      return fail("'shape' is not a tuple", error);
    while (true) {
      skipSpace();
      if (consume(')'))
        return true;
      if (!std::isdigit(static_cast<unsigned char>(peek())))
        return fail("'shape' holds something other than non-negative "
                    "integers",
                    error);
      int64_t dim = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        int digit = text[pos++] - '0';
        if (dim > (std::numeric_limits<int64_t>::max() - digit) / 10)
          return fail("a dimension in 'shape' overflows int64", error);
        dim = dim * 10 + digit;
      }
      consume('L'); // Python 2 long suffix.
      shape.push_back(dim);
      skipSpace();
      if (consume(','))
        continue;
      skipSpace();
      if (consume(')'))
        return true;
      return fail("expected ',' or ')' in 'shape'", error);
    }
  }

  const std::string &text;
  size_t pos = 0;
};

} // namespace

/// Every supported element type.
static constexpr DTypeInfo kDTypes[] = {
    {"f16", "f2", 2}, {"f32", "f4", 4}, {"f64", "f8", 8}, {"bool", "b1", 1},
    {"i8", "i1", 1},  {"u8", "u1", 1},  {"i32", "i4", 4}, {"i64", "i8", 8},
    {"u16", "u2", 2},
};

static const DTypeInfo *findByName(const std::string &name) {
  for (const DTypeInfo &info : kDTypes)
    if (name == info.name)
      return &info;
  return nullptr;
}

static const DTypeInfo *findByCode(const std::string &code) {
  for (const DTypeInfo &info : kDTypes)
    if (code == info.code)
      return &info;
  return nullptr;
}

/// Returns false (and leaves `result` alone) if the product of `shape`
/// overflows int64 or a dimension is negative.
static bool checkedNumElements(const std::vector<int64_t> &shape,
                               int64_t &result) {
  int64_t n = 1;
  for (int64_t dim : shape) {
    if (dim < 0)
      return false;
    if (dim != 0 && n > std::numeric_limits<int64_t>::max() / dim)
      return false;
    n *= dim;
  }
  result = n;
  return true;
}

/// Maps a NumPy type string such as "<f4" to one of our dtype names.
static bool decodeDescr(const std::string &descr, std::string &dtype,
                        std::string &error) {
  const std::string supported =
      "supported: f2, f4, f8, b1, i1, u1, u2, i4, i8, little-endian";
  if (const DTypeInfo *bare = findByCode(descr)) {
    // A type code without its byte-order character ('f4'): NumPy always
    // writes one, and the byte order of the data is not known without it.
    error = "dtype '" + descr +
            "' has no byte-order character; expected an explicit one, '" +
            (bare->size > 1 ? "<' (little-endian), e.g. '<" : "|', e.g. '|") +
            descr + "'";
    return false;
  }
  if (descr.size() != 3) {
    error = "unsupported dtype '" + printable(descr) + "' (" + supported +
            ")";
    return false;
  }
  char order = descr[0];
  const DTypeInfo *info = findByCode(descr.substr(1));
  if (!info || (order != '<' && order != '>' && order != '|' && order != '=')) {
    error = "unsupported dtype '" + printable(descr) + "' (" + supported +
            ")";
    return false;
  }
  // Byte order has no meaning for one-byte types.
  if (info->size > 1 && order != '<' && order != '|') {
    if (order == '>')
      error = "big-endian dtype '" + descr +
              "' is not supported; convert it with .astype('<" +
              descr.substr(1) + "')";
    else
      error = "dtype '" + descr +
              "' has native byte order '='; expected an explicit '<' "
              "(little-endian), e.g. '<" +
              descr.substr(1) + "'";
    return false;
  }
  dtype = info->name;
  return true;
}

static uint32_t readLittle(const uint8_t *p, size_t n) {
  uint32_t value = 0;
  for (size_t i = 0; i < n; ++i)
    value |= static_cast<uint32_t>(p[i]) << (8 * i);
  return value;
}

template <typename T> static T load(const uint8_t *p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

/// Checks that `array` (of a known dtype) holds exactly the bytes its shape
/// needs.
static bool checkSize(const Array &array, std::string &error) {
  int64_t n = 0;
  size_t size = elementSize(array.dtype);
  if (size == 0 || !checkedNumElements(array.shape, n) ||
      static_cast<uint64_t>(n) > array.bytes.size() / size ||
      array.bytes.size() != static_cast<uint64_t>(n) * size) {
    error = "array of dtype '" + array.dtype + "' and shape " +
            formatShape(array.shape) + " holds " +
            std::to_string(array.bytes.size()) + " bytes";
    return false;
  }
  return true;
}

int64_t Array::numElements() const {
  int64_t n = 0;
  return checkedNumElements(shape, n) ? n : -1;
}

size_t elementSize(const std::string &dtype) {
  const DTypeInfo *info = findByName(dtype);
  return info ? info->size : 0;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string result = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0)
      result += ", ";
    result += std::to_string(shape[i]);
  }
  if (shape.size() == 1)
    result += ",";
  return result + ")";
}

namespace {

/// What the fixed-size start of a .npy file says: where the header dict
/// starts and how long it is.
struct Preamble {
  size_t headerStart = 0;
  size_t headerLength = 0;
};

/// The header dict decoded: element type, shape and the data size it implies.
struct Header {
  std::string descr;
  Array meta; ///< dtype and shape; no bytes.
  uint64_t dataBytes = 0;
};

} // namespace

/// Checks magic, version and the header-length field in `data[0, size)`
/// (the first bytes of an image whose total size is `total`).
static bool parsePreamble(const uint8_t *data, size_t size, uint64_t total,
                          Preamble &preamble, std::string &message) {
  if (total == 0) {
    message = "truncated file: it is empty";
    return false;
  }
  if (size < kMagicSize || std::memcmp(data, kMagic, kMagicSize) != 0) {
    if (size < kMagicSize && std::memcmp(data, kMagic, size) == 0)
      message = "truncated file: " + std::to_string(total) +
                " bytes, shorter than the .npy magic";
    else if (size >= 4 && std::memcmp(data, "PK\x03\x04", 4) == 0)
      // numpy.savez writes a zip of .npy files, one per array.
      message = "bad magic: not a .npy file (it must start with "
                "\\x93NUMPY) but a zip archive (numpy.savez's .npz?); "
                "write each array with numpy.save";
    else
      message = "bad magic: not a .npy file (it must start with "
                "\\x93NUMPY)";
    return false;
  }
  if (size < kMagicSize + 2) {
    message = "truncated file: " + std::to_string(total) +
              " bytes, no format version";
    return false;
  }
  unsigned major = data[6], minor = data[7];
  if (major < 1 || major > 3 || minor != 0) {
    message = "unsupported .npy format version " + std::to_string(major) +
              "." + std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)";
    return false;
  }
  size_t lengthBytes = major == 1 ? 2 : 4;
  preamble.headerStart = kMagicSize + 2 + lengthBytes;
  if (size < preamble.headerStart) {
    message = "truncated file: " + std::to_string(total) +
              " bytes, no header length";
    return false;
  }
  preamble.headerLength = readLittle(data + kMagicSize + 2, lengthBytes);
  if (preamble.headerLength > kMaxHeaderLength) {
    message = "header length " + std::to_string(preamble.headerLength) +
              " bytes exceeds the limit of " +
              std::to_string(kMaxHeaderLength) + " bytes";
    return false;
  }
  if (total - preamble.headerStart < preamble.headerLength) {
    message = "truncated header: it declares " +
              std::to_string(preamble.headerLength) + " bytes but only " +
              std::to_string(total - preamble.headerStart) + " follow";
    return false;
  }
  return true;
}

/// Decodes the header dict and the data size its dtype and shape imply.
static bool parseHeader(const std::string &text, Header &header,
                        std::string &message) {
  std::string parseError;
  bool fortranOrder = false;
  if (!HeaderParser(text).parse(header.descr, fortranOrder, header.meta.shape,
                                parseError)) {
    message = "malformed header: " + parseError;
    return false;
  }
  if (!decodeDescr(header.descr, header.meta.dtype, message))
    return false;
  // Fortran order is C order when at most one extent exceeds 1 (a vector,
  // (1, N, 1), ...) or an extent is 0: the same bytes, so accept those.
  int64_t longDims = 0;
  bool empty = false;
  for (int64_t extent : header.meta.shape) {
    longDims += extent > 1;
    empty |= extent == 0;
  }
  if (fortranOrder && longDims > 1 && !empty) {
    message = "Fortran-order arrays are not supported (fortran_order is "
              "True); save a C-contiguous array";
    return false;
  }
  int64_t numElements = 0;
  size_t itemSize = elementSize(header.meta.dtype);
  if (!checkedNumElements(header.meta.shape, numElements) ||
      static_cast<uint64_t>(numElements) >
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
              itemSize) {
    message = "shape " + formatShape(header.meta.shape) + " of " +
              header.descr + " is too large: its byte count overflows 64 bits";
    return false;
  }
  header.dataBytes = static_cast<uint64_t>(numElements) * itemSize;
  return true;
}

/// Checks that an image of `total` bytes holds exactly the header and the
/// data the header's shape needs; names both sizes when it does not.
static bool checkDataSize(const Header &header, uint64_t dataStart,
                          uint64_t total, std::string &message) {
  uint64_t found = total - dataStart;
  if (found == header.dataBytes)
    return true;
  std::string needs = "shape " + formatShape(header.meta.shape) + " of " +
                      header.descr + " needs " +
                      std::to_string(header.dataBytes) + " bytes";
  std::string sizes = " (file size " + std::to_string(total) +
                      " bytes, expected " +
                      std::to_string(dataStart + header.dataBytes) + ")";
  if (found < header.dataBytes)
    message = "truncated data: " + needs + " but only " +
              std::to_string(found) + " follow" + sizes;
  else
    message = "size mismatch: " + needs + " but " + std::to_string(found) +
              " follow the header" + sizes;
  return false;
}

/// Allocates `count` bytes in `bytes` without letting an exception escape.
static bool allocateBytes(std::vector<uint8_t> &bytes, uint64_t count,
                          std::string &message) {
  try {
    if (count > bytes.max_size())
      throw std::length_error("too large");
    bytes.resize(static_cast<size_t>(count));
    return true;
  } catch (const std::exception &) {
    message = "cannot allocate " + std::to_string(count) +
              " bytes for the array data: out of memory";
    return false;
  }
}

std::optional<Array> parseNpy(const uint8_t *data, size_t size,
                              const std::string &name, std::string &error) {
  auto fail = [&](const std::string &message) -> std::optional<Array> {
    error = name + ": " + message;
    return std::nullopt;
  };
  std::string message;
  Preamble preamble;
  if (!parsePreamble(data, size, size, preamble, message))
    return fail(message);
  Header header;
  std::string text(reinterpret_cast<const char *>(data + preamble.headerStart),
                   preamble.headerLength);
  if (!parseHeader(text, header, message))
    return fail(message);
  uint64_t dataStart = preamble.headerStart + preamble.headerLength;
  if (!checkDataSize(header, dataStart, size, message))
    return fail(message);
  Array array = std::move(header.meta);
  if (!allocateBytes(array.bytes, header.dataBytes, message))
    return fail(message);
  if (header.dataBytes > 0)
    std::memcpy(array.bytes.data(), data + dataStart, header.dataBytes);
  return array;
}

namespace {
/// Closes a file descriptor when it goes out of scope.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0)
      ::close(fd);
  }
};
} // namespace

/// The kind of a non-regular file, for messages.
static const char *fileKind(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}

/// Reads exactly `size` bytes at `offset`; false with a message otherwise.
static bool readAt(int fd, uint8_t *out, uint64_t size, uint64_t offset,
                   std::string &message) {
  uint64_t done = 0;
  while (done < size) {
    size_t chunk = static_cast<size_t>(
        std::min<uint64_t>(size - done, uint64_t(1) << 30));
    ssize_t n = ::pread(fd, out + done, chunk, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      message = std::string("read error: ") + std::strerror(errno);
      return false;
    }
    if (n == 0) {
      message = "read error: the file ended after " +
                std::to_string(offset + done) + " bytes (it changed while "
                "being read?)";
      return false;
    }
    done += static_cast<uint64_t>(n);
  }
  return true;
}

std::optional<Array> readNpy(const std::string &path, std::string &error) {
  auto fail = [&](const std::string &message) -> std::optional<Array> {
    error = path + ": " + message;
    return std::nullopt;
  };
  // Only regular files: a directory cannot be read, and a device or a FIFO
  // (/dev/zero, a pipe) has no size to check and may never end. stat first
  // so that opening a FIFO cannot block.
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    return fail(std::string("cannot open for reading: ") +
                std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return fail(std::string("is ") + fileKind(info.st_mode) +
                ", not a regular .npy file");
  FileDescriptor file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (file.fd < 0)
    return fail(std::string("cannot open for reading: ") +
                std::strerror(errno));
  if (::fstat(file.fd, &info) != 0)
    return fail(std::string("cannot read its size: ") + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return fail(std::string("is ") + fileKind(info.st_mode) +
                ", not a regular .npy file");
  uint64_t total = static_cast<uint64_t>(info.st_size);

  // Magic, version and header length: at most 12 bytes.
  std::string message;
  uint8_t start[12];
  size_t startSize = static_cast<size_t>(std::min<uint64_t>(total, 12));
  if (!readAt(file.fd, start, startSize, 0, message))
    return fail(message);
  Preamble preamble;
  if (!parsePreamble(start, startSize, total, preamble, message))
    return fail(message);
  std::vector<uint8_t> text(preamble.headerLength);
  if (!readAt(file.fd, text.data(), text.size(), preamble.headerStart, message))
    return fail(message);
  Header header;
  if (!parseHeader(std::string(text.begin(), text.end()), header, message))
    return fail(message);
  // The file's size must be what the header says before anything is
  // allocated for the data.
  uint64_t dataStart = preamble.headerStart + preamble.headerLength;
  if (!checkDataSize(header, dataStart, total, message))
    return fail(message);
  Array array = std::move(header.meta);
  if (!allocateBytes(array.bytes, header.dataBytes, message) ||
      !readAt(file.fd, array.bytes.data(), header.dataBytes, dataStart,
              message))
    return fail(message);
  return array;
}

/// The version 1.0 preamble and header of an array of `info` and `shape`:
/// magic, version, header length and the dict padded with spaces so that the
/// data starts at a multiple of 64 bytes, as NumPy does.
static bool makeHeader(const DTypeInfo &info, const std::vector<int64_t> &shape,
                       std::string &out, std::string &error) {
  char order = info.size == 1 ? '|' : '<';
  std::string header =
      std::string("{'descr': '") + order + info.code +
      "', 'fortran_order': False, 'shape': " + formatShape(shape) + ", }";
  size_t prefix = kMagicSize + 2 + 2;
  size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 0xffff) {
    error = "header of " + std::to_string(header.size()) +
            " bytes does not fit a version 1.0 file";
    return false;
  }
  out.assign(kMagic, kMagicSize);
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  return true;
}

/// Checks that `shape` of `dtype` has a byte count that fits 64 bits and, if
/// `haveBytes` is given, that it equals it.
static const DTypeInfo *checkArray(const std::string &dtype,
                                   const std::vector<int64_t> &shape,
                                   const uint64_t *haveBytes,
                                   uint64_t &dataBytes, std::string &error) {
  const DTypeInfo *info = findByName(dtype);
  if (!info) {
    error = "unknown dtype '" + dtype +
            "' (expected f16, f32, f64, bool, i8, u8, i32 or i64)";
    return nullptr;
  }
  int64_t numElements = 0;
  if (!checkedNumElements(shape, numElements) ||
      static_cast<uint64_t>(numElements) >
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
              info->size) {
    error = "invalid shape " + formatShape(shape);
    return nullptr;
  }
  dataBytes = static_cast<uint64_t>(numElements) * info->size;
  if (haveBytes && *haveBytes != dataBytes) {
    error = "shape " + formatShape(shape) + " of " + dtype + " needs " +
            std::to_string(dataBytes) + " bytes but the array holds " +
            std::to_string(*haveBytes);
    return nullptr;
  }
  return info;
}

std::optional<std::vector<uint8_t>> serializeNpy(const Array &array,
                                                 std::string &error) {
  uint64_t have = array.bytes.size(), dataBytes = 0;
  const DTypeInfo *info =
      checkArray(array.dtype, array.shape, &have, dataBytes, error);
  std::string header;
  if (!info || !makeHeader(*info, array.shape, header, error))
    return std::nullopt;
  try {
    std::vector<uint8_t> image(header.begin(), header.end());
    image.insert(image.end(), array.bytes.begin(), array.bytes.end());
    return image;
  } catch (const std::exception &) {
    error = "cannot allocate " + std::to_string(header.size() + dataBytes) +
            " bytes for the .npy image: out of memory";
    return std::nullopt;
  }
}

/// Writes the header of `shape` of `dtype` and then `dataBytes` bytes from
/// `data` (the caller has checked that they match) to `path`, without
/// copying the data. A regular file (or a new one) is written whole or not
/// at all: the image goes to a temporary file next to it that is renamed
/// over `path` once complete, so a failed write (disk full, file size
/// limit) leaves the previous file as it was and no partial file behind. A
/// device or FIFO (/dev/stdout) is written in place.
static bool writeImage(const std::string &path, const DTypeInfo &info,
                       const std::vector<int64_t> &shape, const void *data,
                       uint64_t dataBytes, std::string &error) {
  std::string header, message;
  if (!makeHeader(info, shape, header, message)) {
    error = path + ": " + message;
    return false;
  }
  struct stat target;
  bool inPlace = ::stat(path.c_str(), &target) == 0 && !S_ISREG(target.st_mode);
  std::string temporary;
  std::FILE *file = nullptr;
  if (inPlace) {
    file = std::fopen(path.c_str(), "wb");
  } else {
    // A name of our own in the target's directory (rename stays on one file
    // system); 0666 less the umask, like fopen's.
    for (int attempt = 0; attempt < 100 && !file; ++attempt) {
      temporary = path + ".tmp-" + std::to_string(::getpid()) + "-" +
                  std::to_string(attempt);
      int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                      0666);
      if (fd >= 0) {
        file = ::fdopen(fd, "wb");
        if (!file)
          ::close(fd);
      } else if (errno != EEXIST) {
        break;
      }
    }
  }
  if (!file) {
    error = path + ": cannot open for writing: " + std::strerror(errno);
    if (!temporary.empty())
      ::unlink(temporary.c_str());
    return false;
  }
  bool ok = std::fwrite(header.data(), 1, header.size(), file) == header.size();
  if (ok && dataBytes > 0)
    ok = std::fwrite(data, 1, dataBytes, file) == dataBytes;
  int writeErrno = errno;
  if (std::fclose(file) != 0 && ok) {
    ok = false;
    writeErrno = errno;
  }
  if (ok && !inPlace && ::rename(temporary.c_str(), path.c_str()) != 0) {
    ok = false;
    writeErrno = errno;
  }
  if (!ok) {
    error = path + ": write error: " + std::strerror(writeErrno);
    if (!inPlace)
      ::unlink(temporary.c_str());
    return false;
  }
  return true;
}

bool writeNpy(const std::string &path, const Array &array, std::string &error) {
  uint64_t have = array.bytes.size(), dataBytes = 0;
  std::string message;
  const DTypeInfo *info =
      checkArray(array.dtype, array.shape, &have, dataBytes, message);
  if (!info) {
    error = path + ": " + message;
    return false;
  }
  return writeImage(path, *info, array.shape, array.bytes.data(), dataBytes,
                    error);
}

/// Writes `data` with the shape given separately.
static bool writeRaw(const std::string &path, const std::string &dtype,
                     const std::vector<int64_t> &shape, const void *data,
                     std::string &error) {
  uint64_t dataBytes = 0;
  std::string message;
  const DTypeInfo *info = checkArray(dtype, shape, nullptr, dataBytes, message);
  if (!info) {
    error = path + ": " + message;
    return false;
  }
  if (dataBytes > 0 && !data) {
    error = path + ": no data given for shape " + formatShape(shape);
    return false;
  }
  return writeImage(path, *info, shape, data, dataBytes, error);
}

float halfToFloat(uint16_t bits) {
  int sign = bits >> 15 ? -1 : 1;
  int exponent = (bits >> 10) & 0x1f;
  int mantissa = bits & 0x3ff;
  if (exponent == 0x1f) {
    if (mantissa != 0)
      return std::numeric_limits<float>::quiet_NaN();
    return sign * std::numeric_limits<float>::infinity();
  }
  if (exponent == 0) // Zero or subnormal: mantissa * 2^-24.
    return sign * std::ldexp(static_cast<float>(mantissa), -24);
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}

/// Resizes `out` to `n` elements without letting an exception escape.
template <typename T>
static bool allocateElements(std::vector<T> &out, int64_t n,
                             std::string &error) {
  try {
    if (static_cast<uint64_t>(n) > out.max_size())
      throw std::length_error("too large");
    out.assign(static_cast<size_t>(n), T());
    return true;
  } catch (const std::exception &) {
    error = "cannot allocate " + std::to_string(n) + " elements of " +
            std::to_string(sizeof(T)) + " bytes: out of memory";
    return false;
  }
}

/// Converts the f16, f32 or f64 elements of `array` to T (double exactly,
/// float rounded to nearest).
template <typename T>
static bool toFloating(const Array &array, std::vector<T> &out,
                       std::string &error) {
  if (array.dtype != "f16" && array.dtype != "f32" && array.dtype != "f64") {
    error = "cannot convert dtype '" + array.dtype +
            "' to floating point (expected f16, f32 or f64)";
    return false;
  }
  if (!checkSize(array, error))
    return false;
  int64_t n = array.numElements();
  if (!allocateElements(out, n, error))
    return false;
  const uint8_t *p = array.bytes.data();
  if (array.dtype == "f32") {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(load<float>(p + 4 * i));
  } else if (array.dtype == "f64") {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(load<double>(p + 8 * i));
  } else {
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(halfToFloat(load<uint16_t>(p + 2 * i)));
  }
  return true;
}

bool toFloat64(const Array &array, std::vector<double> &out,
               std::string &error) {
  return toFloating(array, out, error);
}

bool toFloat32(const Array &array, std::vector<float> &out,
               std::string &error) {
  return toFloating(array, out, error);
}

bool toBool(const Array &array, std::vector<uint8_t> &out, std::string &error) {
  size_t size = elementSize(array.dtype);
  bool isInteger = array.dtype == "bool" || array.dtype == "i8" ||
                   array.dtype == "u8" || array.dtype == "i32" ||
                   array.dtype == "i64";
  if (!isInteger) {
    error = "cannot convert dtype '" + array.dtype +
            "' to a mask (expected bool, i8, u8, i32 or i64)";
    return false;
  }
  if (!checkSize(array, error))
    return false;
  int64_t n = array.numElements();
  if (!allocateElements(out, n, error))
    return false;
  for (int64_t i = 0; i < n; ++i)
    for (size_t b = 0; b < size; ++b)
      if (array.bytes[i * size + b] != 0)
        out[i] = 1;
  return true;
}

bool writeBits16(const std::string &path, const std::string &dtype,
                 const std::vector<int64_t> &shape, const uint16_t *data,
                 std::string &error) {
  if (dtype != "f16" && dtype != "u16") {
    error = path + ": writeBits16 writes f16 or u16, not '" + dtype + "'";
    return false;
  }
  return writeRaw(path, dtype, shape, data, error);
}

bool writeFloat32(const std::string &path, const std::vector<int64_t> &shape,
                  const float *data, std::string &error) {
  return writeRaw(path, "f32", shape, data, error);
}

bool writeFloat64(const std::string &path, const std::vector<int64_t> &shape,
                  const double *data, std::string &error) {
  return writeRaw(path, "f64", shape, data, error);
}

bool writeBool(const std::string &path, const std::vector<int64_t> &shape,
               const uint8_t *data, std::string &error) {
  int64_t n = 0;
  if (!checkedNumElements(shape, n)) {
    error = path + ": invalid shape " + formatShape(shape);
    return false;
  }
  if (n > 0 && !data) {
    error = path + ": no data given for shape " + formatShape(shape);
    return false;
  }
  std::vector<uint8_t> normalised;
  std::string message;
  if (!allocateBytes(normalised, static_cast<uint64_t>(n), message)) {
    error = path + ": " + message;
    return false;
  }
  for (int64_t i = 0; i < n; ++i)
    normalised[i] = data[i] != 0;
  return writeRaw(path, "bool", shape, normalised.data(), error);
}

} // namespace femc::npy
