//===- Npz.h - Read NumPy .npz archives -------------------------*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// A small, dependency-free reader for NumPy's `.npz` archives: a ZIP file
/// with one `.npy` member per array, as `np.savez` writes it (a PyTorch
/// `state_dict` saved with `np.savez(path, **{k: v.numpy() ...})`, for
/// instance).
///
/// Supported: members stored without compression (method 0, what
/// `np.savez` writes), ZIP64 size and offset fields (numpy always asks for
/// them), and a CRC-32 check of every member. Refused with a message that
/// says what to do: DEFLATE-compressed members (`np.savez_compressed`;
/// re-save with `np.savez`), any other method, encrypted members, archives
/// split over several disks, and members whose name does not end in `.npy`.
///
/// Errors never throw: every function returns `std::optional` and fills
/// `error` with one line that names the file (and the member).
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_SUPPORT_NPZ_H
#define FEMC_SUPPORT_NPZ_H

#include "support/Npy.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace femc::npz {

/// One array of an archive: its key (the member name without `.npy`, e.g.
/// "W_q.weight") and its contents.
struct Member {
  std::string name;
  npy::Array array;
};

/// Parses the .npz image `data[0, size)`; `name` is used in error messages.
/// Members come in the order of the archive's central directory (the order
/// `np.savez` was given them). Two members with one name are an error.
std::optional<std::vector<Member>> parseNpz(const uint8_t *data, size_t size,
                                            const std::string &name,
                                            std::string &error);

/// Reads the .npz file at `path` (a regular file).
std::optional<std::vector<Member>> readNpz(const std::string &path,
                                           std::string &error);

/// The CRC-32 (ISO-HDLC, as ZIP uses it) of `data[0, size)`.
uint32_t crc32(const uint8_t *data, size_t size);

} // namespace femc::npz

#endif // FEMC_SUPPORT_NPZ_H
