//===- Npy.cpp - Read and write NumPy .npy files --------------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "support/Npy.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

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
        return fail("expected ':' after key '" + key + "'", error);
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
        return fail("unexpected key '" + key + "' in the header dict", error);
      }
      skipSpace();
      if (consume(','))
        continue;
      skipSpace();
      if (consume('}'))
        break;
      return fail("expected ',' or '}' in the header dict", error);
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
      "supported: f2, f4, f8, b1, i1, u1, i4, i8, little-endian";
  if (descr.size() != 3) {
    error = "unsupported dtype '" + descr + "' (" + supported + ")";
    return false;
  }
  char order = descr[0];
  const DTypeInfo *info = findByCode(descr.substr(1));
  if (!info || (order != '<' && order != '>' && order != '|' && order != '=')) {
    error = "unsupported dtype '" + descr + "' (" + supported + ")";
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
              "' has native byte order '='; expected an explicit '<'";
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
  if (!checkedNumElements(array.shape, n) ||
      array.bytes.size() != static_cast<uint64_t>(n) * size) {
    error = "array of dtype '" + array.dtype + "' and shape " +
            formatShape(array.shape) + " holds " +
            std::to_string(array.bytes.size()) + " bytes";
    return false;
  }
  return true;
}

/// Writes `array` with the shape given separately, after checking the shape
/// against the number of bytes.
static bool writeRaw(const std::string &path, const std::string &dtype,
                     const std::vector<int64_t> &shape, const void *data,
                     std::string &error) {
  Array array;
  array.dtype = dtype;
  array.shape = shape;
  int64_t n = 0;
  if (!checkedNumElements(shape, n)) {
    error = path + ": invalid shape " + formatShape(shape);
    return false;
  }
  if (n > 0 && !data) {
    error = path + ": no data given for shape " + formatShape(shape);
    return false;
  }
  const auto *bytes = static_cast<const uint8_t *>(data);
  array.bytes.assign(bytes, bytes + n * elementSize(dtype));
  return writeNpy(path, array, error);
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

std::optional<Array> parseNpy(const uint8_t *data, size_t size,
                              const std::string &name, std::string &error) {
  auto fail = [&](const std::string &message) -> std::optional<Array> {
    error = name + ": " + message;
    return std::nullopt;
  };
  if (size == 0)
    return fail("truncated file: it is empty");
  if (size < kMagicSize || std::memcmp(data, kMagic, kMagicSize) != 0) {
    if (size < kMagicSize && std::memcmp(data, kMagic, size) == 0)
      return fail("truncated file: " + std::to_string(size) +
                  " bytes, shorter than the .npy magic");
    return fail("bad magic: not a .npy file (it must start with "
                "\\x93NUMPY)");
  }
  if (size < kMagicSize + 2)
    return fail("truncated file: " + std::to_string(size) +
                " bytes, no format version");
  unsigned major = data[6], minor = data[7];
  if (major < 1 || major > 3 || minor != 0)
    return fail("unsupported .npy format version " + std::to_string(major) +
                "." + std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  size_t lengthBytes = major == 1 ? 2 : 4;
  size_t headerStart = kMagicSize + 2 + lengthBytes;
  if (size < headerStart)
    return fail("truncated file: " + std::to_string(size) +
                " bytes, no header length");
  size_t headerLength = readLittle(data + kMagicSize + 2, lengthBytes);
  if (size - headerStart < headerLength)
    return fail("truncated header: it declares " +
                std::to_string(headerLength) + " bytes but only " +
                std::to_string(size - headerStart) + " follow");
  std::string header(reinterpret_cast<const char *>(data + headerStart),
                     headerLength);

  std::string descr, parseError;
  bool fortranOrder = false;
  Array array;
  if (!HeaderParser(header).parse(descr, fortranOrder, array.shape, parseError))
    return fail("malformed header: " + parseError);
  if (!decodeDescr(descr, array.dtype, parseError))
    return fail(parseError);
  if (fortranOrder)
    return fail("Fortran-order arrays are not supported (fortran_order is "
                "True); save a C-contiguous array");
  int64_t numElements = 0;
  size_t itemSize = elementSize(array.dtype);
  if (!checkedNumElements(array.shape, numElements) ||
      static_cast<uint64_t>(numElements) >
          std::numeric_limits<uint64_t>::max() / itemSize)
    return fail("shape " + formatShape(array.shape) + " is too large");
  uint64_t expected = static_cast<uint64_t>(numElements) * itemSize;
  uint64_t found = size - headerStart - headerLength;
  if (found < expected)
    return fail("truncated data: shape " + formatShape(array.shape) + " of " +
                descr + " needs " + std::to_string(expected) +
                " bytes but only " + std::to_string(found) + " follow");
  if (found > expected)
    return fail("size mismatch: shape " + formatShape(array.shape) + " of " +
                descr + " needs " + std::to_string(expected) + " bytes but " +
                std::to_string(found) + " follow the header");
  const uint8_t *payload = data + headerStart + headerLength;
  array.bytes.assign(payload, payload + expected);
  return array;
}

std::optional<Array> readNpy(const std::string &path, std::string &error) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    error = path + ": cannot open for reading";
    return std::nullopt;
  }
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
  if (file.bad()) {
    error = path + ": read error";
    return std::nullopt;
  }
  return parseNpy(data.data(), data.size(), path, error);
}

std::optional<std::vector<uint8_t>> serializeNpy(const Array &array,
                                                 std::string &error) {
  const DTypeInfo *info = findByName(array.dtype);
  if (!info) {
    error = "unknown dtype '" + array.dtype +
            "' (expected f16, f32, f64, bool, i8, u8, i32 or i64)";
    return std::nullopt;
  }
  int64_t numElements = 0;
  if (!checkedNumElements(array.shape, numElements)) {
    error = "invalid shape " + formatShape(array.shape);
    return std::nullopt;
  }
  if (array.bytes.size() != static_cast<uint64_t>(numElements) * info->size) {
    error = "shape " + formatShape(array.shape) + " of " + array.dtype +
            " needs " + std::to_string(numElements * info->size) +
            " bytes but the array holds " + std::to_string(array.bytes.size());
    return std::nullopt;
  }
  char order = info->size == 1 ? '|' : '<';
  std::string header =
      std::string("{'descr': '") + order + info->code +
      "', 'fortran_order': False, 'shape': " + formatShape(array.shape) + ", }";
  // Pad with spaces so that magic + version + length + header + '\n' is a
  // multiple of 64 bytes.
  size_t prefix = kMagicSize + 2 + 2;
  size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 0xffff) {
    error = "header of " + std::to_string(header.size()) +
            " bytes does not fit a version 1.0 file";
    return std::nullopt;
  }
  std::vector<uint8_t> image(kMagic, kMagic + kMagicSize);
  image.push_back(1);
  image.push_back(0);
  image.push_back(static_cast<uint8_t>(header.size() & 0xff));
  image.push_back(static_cast<uint8_t>(header.size() >> 8));
  image.insert(image.end(), header.begin(), header.end());
  image.insert(image.end(), array.bytes.begin(), array.bytes.end());
  return image;
}

bool writeNpy(const std::string &path, const Array &array, std::string &error) {
  std::string serializeError;
  std::optional<std::vector<uint8_t>> image =
      serializeNpy(array, serializeError);
  if (!image) {
    error = path + ": " + serializeError;
    return false;
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) {
    error = path + ": cannot open for writing";
    return false;
  }
  file.write(reinterpret_cast<const char *>(image->data()),
             static_cast<std::streamsize>(image->size()));
  file.close();
  if (!file) {
    error = path + ": write error";
    return false;
  }
  return true;
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

bool toFloat64(const Array &array, std::vector<double> &out,
               std::string &error) {
  if (array.dtype != "f16" && array.dtype != "f32" && array.dtype != "f64") {
    error = "cannot convert dtype '" + array.dtype +
            "' to floating point (expected f16, f32 or f64)";
    return false;
  }
  if (!checkSize(array, error))
    return false;
  int64_t n = array.numElements();
  out.resize(n);
  const uint8_t *p = array.bytes.data();
  if (array.dtype == "f32") {
    for (int64_t i = 0; i < n; ++i)
      out[i] = load<float>(p + 4 * i);
  } else if (array.dtype == "f64") {
    for (int64_t i = 0; i < n; ++i)
      out[i] = load<double>(p + 8 * i);
  } else {
    for (int64_t i = 0; i < n; ++i)
      out[i] = halfToFloat(load<uint16_t>(p + 2 * i));
  }
  return true;
}

bool toFloat32(const Array &array, std::vector<float> &out,
               std::string &error) {
  if (array.dtype == "f32") {
    if (!checkSize(array, error))
      return false;
    int64_t n = array.numElements();
    out.resize(n);
    if (n > 0)
      std::memcpy(out.data(), array.bytes.data(), n * sizeof(float));
    return true;
  }
  std::vector<double> wide;
  if (!toFloat64(array, wide, error))
    return false;
  out.assign(wide.begin(), wide.end()); // Rounds to nearest.
  return true;
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
  out.assign(n, 0);
  for (int64_t i = 0; i < n; ++i)
    for (size_t b = 0; b < size; ++b)
      if (array.bytes[i * size + b] != 0)
        out[i] = 1;
  return true;
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
  std::vector<uint8_t> normalised(n);
  for (int64_t i = 0; i < n; ++i)
    normalised[i] = data[i] != 0;
  return writeRaw(path, "bool", shape, normalised.data(), error);
}

} // namespace femc::npy
