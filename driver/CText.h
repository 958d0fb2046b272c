//===- CText.h - names and literals in generated C and JSON -----*- C++ -*-===//
//
// Part of the femc project.
//
// How the driver writes user-given names and numbers into the C glue, the
// header and the manifest: C string literals and comments that hold the
// exact bytes, JSON strings, which names can be C entry points, and double
// literals that read back exactly.
//
//===----------------------------------------------------------------------===//

#ifndef FEMC_DRIVER_CTEXT_H
#define FEMC_DRIVER_CTEXT_H

#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>

namespace femc::driver {

/// `s` as a C string literal, quotes included. Printable ASCII stays; `"`,
/// `\` and `?` (trigraphs, which -std=c11 enables) are escaped; every other
/// byte (controls, UTF-8 sequences) becomes a three-digit octal escape, so
/// the literal holds exactly the bytes of `s`.
std::string cString(llvm::StringRef s);

/// `s` for a C comment: escaped as in a string literal (one line, no
/// trigraphs), without the quotes, and with `*/` and `/*` broken up (the
/// first would end the comment, the second warns under -Wcomment).
std::string cComment(llvm::StringRef s);

/// `s` as a JSON string, quotes included. Valid UTF-8 is kept; a byte that
/// is not part of valid UTF-8 becomes U+FFFD (JSON text must be UTF-8).
std::string jsonString(llvm::StringRef s);

/// The file stem as a C identifier part: every byte other than an ASCII
/// letter, digit or `_` becomes `_` (femc_<this>_library).
std::string stemIdent(llvm::StringRef stem);

/// Why `name` cannot be a C entry point (an exported function and the name
/// of its parameters in the header), or nothing if it can.
std::optional<std::string> whyNotCName(llvm::StringRef name);

/// The parameter name of argument #`index` in the generated C: the user's
/// name when it is a plain C name (and not `err`, `err_len` or another
/// argument's fallback `argN`), otherwise `arg<index>`.
std::string paramName(llvm::StringRef name, size_t index);

/// `name` quoted for a diagnostic: 'name', escaped like a C string.
std::string quoted(llvm::StringRef name);

/// A finite double as a C (and JSON) literal that reads back to the same
/// value, with the fewest digits from %g's six up: 40 and 1e-06, not
/// 4e+01 or 9.9999999999999995e-07.
std::string cDouble(double value);

} // namespace femc::driver

#endif // FEMC_DRIVER_CTEXT_H
