//===- Npy.h - Read and write NumPy .npy files ------------------*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// A small, dependency-free reader and writer for NumPy's `.npy` format
/// (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html).
///
/// Reading accepts format versions 1.0, 2.0 and 3.0, C order only, and the
/// little-endian element types f2, f4, f8, i1, u1, u2, b1, i4 and i8 (byte order
/// '<' or '|'; for one-byte types any byte order is accepted since it has no
/// meaning). Writing produces version 1.0 files with the header padded to a
/// multiple of 64 bytes, as NumPy itself does.
///
/// Errors never throw: every function returns `bool` or `std::optional` and
/// fills `error` with one line that names the file and says what is wrong.
/// Allocation failures are errors too ("cannot allocate N bytes ...").
///
/// `readNpy` reads regular files only (a directory, a device such as
/// /dev/zero or a FIFO is refused before it is read), refuses headers longer
/// than `kMaxHeaderLength`, and checks that the file's size is exactly the
/// header plus the data its shape and dtype need (naming both sizes when it
/// is not) before it allocates anything for the data.
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_SUPPORT_NPY_H
#define FEMC_SUPPORT_NPY_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace femc::npy {

/// The longest header dict accepted, in bytes. NumPy writes headers of a
/// few hundred bytes; a version 1.0 file cannot have more than 65535.
constexpr size_t kMaxHeaderLength = 1 << 20;

/// An n-dimensional array as stored in a .npy file: C order, little-endian
/// element bytes.
struct Array {
  /// Element type: one of "f16", "f32", "f64", "bool", "i8", "u8", "i32",
  /// "i64", "u16" (fem-run stores bfloat16 bit patterns as u16).
  std::string dtype;
  /// Dimensions, outermost first. Empty for a 0-d (scalar) array.
  std::vector<int64_t> shape;
  /// Raw element bytes, `numElements() * elementSize(dtype)` of them.
  std::vector<uint8_t> bytes;

  /// Product of the dimensions (1 for a 0-d array).
  int64_t numElements() const;
};

/// Size in bytes of one element of `dtype` (one of the names listed in
/// `Array::dtype`), or 0 for an unknown name.
size_t elementSize(const std::string &dtype);

/// Formats a shape as NumPy prints it: "()", "(3,)", "(2, 3)".
std::string formatShape(const std::vector<int64_t> &shape);

/// Parses the .npy image `data[0, size)`; `name` is used in error messages
/// (normally the file path).
std::optional<Array> parseNpy(const uint8_t *data, size_t size,
                              const std::string &name, std::string &error);

/// Reads the .npy file at `path`, which must be a regular file whose size is
/// exactly what its header says.
std::optional<Array> readNpy(const std::string &path, std::string &error);

/// Serialises `array` as a version 1.0 .npy image. Fails if the dtype is
/// unknown or the byte count does not match the shape.
std::optional<std::vector<uint8_t>> serializeNpy(const Array &array,
                                                 std::string &error);

/// Writes `array` to `path` as a version 1.0 .npy file.
bool writeNpy(const std::string &path, const Array &array, std::string &error);

/// Converts a floating-point array (f16, f32 or f64) to float32; f64 values
/// are rounded to nearest. Other dtypes are an error.
bool toFloat32(const Array &array, std::vector<float> &out, std::string &error);

/// Converts a floating-point array (f16, f32 or f64) to float64 exactly.
/// Other dtypes are an error.
bool toFloat64(const Array &array, std::vector<double> &out,
               std::string &error);

/// Converts a bool or integer array to one byte per element, 1 where the
/// element is nonzero and 0 elsewhere (a key-padding mask, for instance).
/// Floating-point dtypes are an error.
bool toBool(const Array &array, std::vector<uint8_t> &out, std::string &error);

/// Writes `data` (the product of `shape` elements) as an f4 array.
bool writeFloat32(const std::string &path, const std::vector<int64_t> &shape,
                  const float *data, std::string &error);

/// Writes `data` (the product of `shape` 16-bit patterns) as an f2 array
/// (`dtype` "f16") or a u2 array (`dtype` "u16", e.g. bfloat16 bits).
bool writeBits16(const std::string &path, const std::string &dtype,
                 const std::vector<int64_t> &shape, const uint16_t *data,
                 std::string &error);

/// Writes `data` (the product of `shape` elements) as an f8 array.
bool writeFloat64(const std::string &path, const std::vector<int64_t> &shape,
                  const double *data, std::string &error);

/// Writes `data` (the product of `shape` elements) as a b1 array; any nonzero
/// byte is stored as True.
bool writeBool(const std::string &path, const std::vector<int64_t> &shape,
               const uint8_t *data, std::string &error);

/// Converts an IEEE 754 binary16 bit pattern to float (exact).
float halfToFloat(uint16_t bits);

} // namespace femc::npy

#endif // FEMC_SUPPORT_NPY_H
