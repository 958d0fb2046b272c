//===- Status.h - Errors, messages and C entry point guards -----*- C++ -*-===//
//
// Every C entry point of libfemrt runs its body through `guard`, which turns
// an escaping exception into FEMRT_ERROR_INTERNAL (or _OUT_OF_MEMORY), and
// reports failures with `fail`, which stores the thread-local message read by
// femrt_last_error().
//
//===----------------------------------------------------------------------===//
#ifndef FEMRT_SRC_STATUS_H
#define FEMRT_SRC_STATUS_H

#include "femrt/femrt.h"

#include <cstdint>
#include <exception>
#include <new>
#include <sstream>
#include <string>
#include <utility>

namespace femc::rt {

/// Stores `message` as the calling thread's last error and returns `status`.
/// Never throws (falls back to a static message when memory is exhausted).
femrt_status fail(femrt_status status, const std::string &message) noexcept;

/// The calling thread's last error message ("" if none).
const char *lastError() noexcept;

/// Builds a message from streamable parts: concat("got ", 3, " args").
template <typename... Parts>
std::string concat(const Parts &...parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

/// "0x1234abcd".
std::string formatPointer(const void *pointer);
std::string formatAddress(uintptr_t address);

/// Runs `body` (returning femrt_status) so that no exception escapes: a
/// std::bad_alloc becomes FEMRT_ERROR_OUT_OF_MEMORY, anything else
/// FEMRT_ERROR_INTERNAL with the exception's text. `function` names the C
/// entry point in the message.
template <typename Body>
femrt_status guard(const char *function, Body &&body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail(FEMRT_ERROR_OUT_OF_MEMORY,
                std::string(function) + ": out of host memory");
  } catch (const std::exception &e) {
    try {
      return fail(FEMRT_ERROR_INTERNAL,
                  std::string(function) + ": internal error: " + e.what());
    } catch (...) {
      return fail(FEMRT_ERROR_INTERNAL, "internal error");
    }
  } catch (...) {
    return fail(FEMRT_ERROR_INTERNAL,
                std::string(function) + ": internal error: unknown exception");
  }
}

} // namespace femc::rt

#endif // FEMRT_SRC_STATUS_H
