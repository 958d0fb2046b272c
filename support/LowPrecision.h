//===- LowPrecision.h - f16 and bf16 conversions for the tools ---*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Conversions between float and the two 16-bit formats a femc kernel may
/// store its float operands in (docs/semantics.md, "Low-precision storage"):
/// IEEE binary16 (f16: 5 exponent bits, 10 fraction bits) and bfloat16
/// (bf16: the top half of a float32, 8 exponent bits, 7 fraction bits).
/// Rounding is to nearest, ties to even, as the kernels round their outputs
/// (passes/cpu/Builder.h, `storage`); widening is exact. The tools (fem-run)
/// and the tests round generated inputs with these, so that the double
/// reference sees exactly the values the kernel reads.
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_SUPPORT_LOWPRECISION_H
#define FEMC_SUPPORT_LOWPRECISION_H

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace femc::lowp {

/// The 16-bit storage formats.
enum class Format { F16, BF16 };

/// The unit roundoff of the format: half the distance from 1 to the next
/// value, 2^-11 for f16 and 2^-8 for bf16. One rounding to nearest has a
/// relative error of at most this.
inline double unitRoundoff(Format format) {
  return format == Format::F16 ? 0x1p-11 : 0x1p-8;
}

/// The default --check tolerance of a kernel whose output is stored in
/// `format`, relative to max|reference| (docs/semantics.md): the output is
/// rounded once (at most one unit roundoff of max|out|) on top of the f32
/// computation's 1e-4; the tolerance allows 2.5x (bf16) and 4x (f16) that
/// bound (measured errors: docs/semantics.md).
inline double defaultTolerance(Format format) {
  return format == Format::F16 ? 2e-3 : 1e-2;
}

inline uint32_t floatBits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
}

inline float bitsFloat(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

/// `x` rounded to bfloat16 (nearest, ties to even); NaN stays NaN (quiet,
/// sign kept) and finite values past the largest bf16 become Inf.
inline uint16_t toBF16(float x) {
  uint32_t bits = floatBits(x);
  if (std::isnan(x))
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  return static_cast<uint16_t>((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

/// `x` rounded to binary16 (nearest, ties to even); NaN stays NaN (quiet),
/// |x| >= 65520 becomes Inf, values below 2^-24 / 2 become zero.
inline uint16_t toF16(float x) {
  uint32_t bits = floatBits(x);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  if (std::isnan(x))
    return static_cast<uint16_t>(sign | 0x7e00);
  float a = std::fabs(x);
  if (a >= 65520.0f) // halfway between 65504 and 2^16 rounds to even: Inf
    return static_cast<uint16_t>(sign | 0x7c00);
  if (a < 0x1p-14f) {
    // Subnormal (or zero): a multiple of 2^-24; the scaling is exact and
    // nearbyint rounds to nearest even. 1024 is the smallest normal.
    auto m = static_cast<uint32_t>(std::nearbyint(a * 0x1p24f));
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t exponent = ((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = bits & 0x7fffff;
  uint32_t half = (exponent << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1)))
    ++half; // a carry into the exponent is still the right value
  return static_cast<uint16_t>(sign | half);
}

/// The float value of a bf16 bit pattern (exact).
inline float fromBF16(uint16_t bits) {
  return bitsFloat(static_cast<uint32_t>(bits) << 16);
}

/// The float value of a binary16 bit pattern (exact).
inline float fromF16(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  uint32_t exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  if (exponent == 0x1f)
    return bitsFloat(sign | 0x7f800000 | (mantissa << 13));
  if (exponent == 0) { // zero or subnormal: mantissa * 2^-24
    float m = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -m : m;
  }
  return bitsFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

inline uint16_t toBits(float x, Format format) {
  return format == Format::F16 ? toF16(x) : toBF16(x);
}

inline float fromBits(uint16_t bits, Format format) {
  return format == Format::F16 ? fromF16(bits) : fromBF16(bits);
}

/// `x` rounded to `format` and widened back (the value a kernel reads).
inline float roundTo(float x, Format format) {
  return fromBits(toBits(x, format), format);
}

/// The 16-bit storage format of a DLPack element type: float (type code
/// kDLFloat = 2) or bfloat (kDLBfloat = 4) with 16 bits; nothing for any
/// other type (float32, masks).
inline std::optional<Format> formatOfDLType(int typeCode, int bits) {
  if (bits != 16 || (typeCode != 2 && typeCode != 4))
    return std::nullopt;
  return typeCode == 4 ? Format::BF16 : Format::F16;
}

/// Rounds generated `values` to the 16-bit storage: `bits` gets what the
/// kernel reads and `values` keeps the same numbers widened (exactly), so
/// the kernel and the double reference read the same inputs.
inline void roundToStorage(std::vector<float> &values,
                           std::vector<uint16_t> &bits, Format format) {
  bits.resize(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = toBits(values[i], format);
    values[i] = fromBits(bits[i], format);
  }
}

/// Widens a kernel's 16-bit output `bits` into `values` (exact).
inline void widenFromStorage(const std::vector<uint16_t> &bits,
                             std::vector<float> &values, Format format) {
  values.resize(bits.size());
  for (size_t i = 0; i < bits.size(); ++i)
    values[i] = fromBits(bits[i], format);
}

} // namespace femc::lowp

#endif // FEMC_SUPPORT_LOWPRECISION_H
