//===- SourceNesting.h - Refuse MLIR text nested too deeply -----*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// MLIR's parser recurses once per level of nesting (regions, attributes,
/// types), so a hostile or broken input nested a few thousand levels deep
/// overflows the stack of fem-opt or femc (a SIGSEGV, not a diagnostic).
/// femc's tools scan the text first and refuse input nested deeper than
/// kMaxSourceNesting with a located error; real models nest a few levels.
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_DIALECT_SOURCENESTING_H
#define FEMC_DIALECT_SOURCENESTING_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LLVM.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SourceMgr.h"

#include <optional>

namespace mlir::fem {

/// The deepest bracket nesting ('(', '[', '{', '<') femc's tools parse.
/// The parser needs a few KiB of stack per level (about 3000 nested regions
/// fill an 8 MiB stack), so this leaves room for the passes' own recursion
/// and for sanitizer builds.
constexpr unsigned kMaxSourceNesting = 256;

/// Where `text` first nests deeper than `limit`: the offset of the opening
/// bracket that goes one level too deep, or std::nullopt. Brackets inside
/// string literals and `//` comments do not count; `>` closes a `<` only
/// (so `->` and `>=` do not unbalance the count).
std::optional<size_t> findTooDeepNesting(llvm::StringRef text,
                                         unsigned limit = kMaxSourceNesting);

/// Checks buffer `bufferId` of `sourceMgr` before it is parsed: a UTF-8
/// byte-order mark at the start (MLIR's lexer reads it as an unexpected
/// character, with no hint) and findTooDeepNesting. On either, emits an
/// error at the place (file:line:col) through `context`'s diagnostic engine
/// and fails.
LogicalResult checkSourceNesting(const llvm::SourceMgr &sourceMgr,
                                 unsigned bufferId, MLIRContext *context,
                                 unsigned limit = kMaxSourceNesting);

} // namespace mlir::fem

#endif // FEMC_DIALECT_SOURCENESTING_H
