//===- femrt_launch.cpp - Fuzz target: libfemrt's argument validation -----===//
//
// Part of the femc project.
//
// The input is a small byte program that builds
//  - a kernel library: either the fake kernels of test/runtime/fake_kernels.c
//    (real workgroup functions that read and write their tensors), or a
//    library whose tables are fuzzed (ABI version, struct size, kernel and
//    argument counts, names, ranks, roles, dtypes, static extents, NULL
//    tables) with a workgroup function that only records its calls;
//  - for a module that loads, a launch: argument count, NULL tensors, ranks,
//    NULL shapes, extents (zero, huge, negative), strides, dtypes (code,
//    bits, lanes), devices, byte offsets, NULL/misaligned/aliased/fake data
//    pointers, and launch options.
// It then calls femrt_module_create_static, the kernel queries and
// femrt_kernel_launch.
//
// Properties checked (beyond "no crash, no sanitizer report"):
//  - every failing call returns a status of the enum and leaves a message;
//  - femrt_kernel_launch returns FEMRT_OK only if every check documented in
//    femrt.h holds for every argument, and fails only if one of them (or
//    the kernel's prepare) does;
//  - on FEMRT_OK the workgroup function ran once per workgroup of the grid
//    prepare returned, and saw for each argument the descriptor femrt.h
//    promises (aligned = data + byte_offset, the tensor's extents, compact
//    strides);
//  - a module accepts a library only if its tables are well-formed, and its
//    kernel/argument queries return what the tables say.
// Tensors whose memory is real are read by the workgroup function, so ASan
// reports a descriptor that points outside them; only tensors the runtime
// must reject get fake data pointers.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "femrt/femrt.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

extern "C" const femrt_kernel_library *fake_kernels_static_query(void);

namespace {

/// Reads the input a value at a time; past the end every read gives 0.
class Reader {
public:
  Reader(const uint8_t *data, size_t size) : data(data), size(size) {}
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  template <typename T> T value() {
    T v{};
    uint8_t bytes[sizeof(T)] = {};
    for (size_t i = 0; i < sizeof(T); ++i)
      bytes[i] = byte();
    std::memcpy(&v, bytes, sizeof(T));
    return v;
  }
  /// One of `n` choices (0 .. n-1).
  unsigned choose(unsigned n) { return byte() % n; }
  std::string string(size_t maxLength) {
    size_t length = byte() % (maxLength + 1);
    std::string s;
    for (size_t i = 0; i < length; ++i)
      s.push_back(char(byte()));
    return s;
  }

private:
  const uint8_t *data;
  size_t size;
  size_t pos = 0;
};

constexpr int64_t kMaxElements = int64_t(1) << 56; // HostLaunch.cpp's limit
/// Real buffers are at most this many bytes; larger tensors get NULL or a
/// fake pointer, never memory a kernel could be given.
constexpr uint64_t kMaxRealBytes = 1 << 16;

//--- the recording kernel of fuzzed libraries -------------------------------

struct Recorder {
  int32_t numArgs = 0;
  int64_t calls = 0;
  /// What prepare does: 0 success with grid[], 1 error with a message,
  /// 2 error without one, 3 a grid the runtime must refuse.
  unsigned prepareMode = 0;
  int64_t grid[3] = {1, 1, 1};
  /// The grid the runtime should run: (1, 1, 1) until prepare gives one.
  int64_t activeGrid[3] = {1, 1, 1};
  bool prepareCalled = false;
  std::vector<femrt_memref> seenByPrepare;
  /// Bytes of each argument's real memory, or -1 when not real.
  std::vector<int64_t> realBytes;
  std::vector<unsigned> elementBytes;
};
Recorder recorder;

int recordPrepare(void *const *args, int64_t grid[3], char *err,
                  size_t errLen) {
  recorder.prepareCalled = true;
  FUZZ_CHECK(grid[0] == 1 && grid[1] == 1 && grid[2] == 1,
             "prepare got grid (%lld, %lld, %lld), not (1, 1, 1)",
             (long long)grid[0], (long long)grid[1], (long long)grid[2]);
  FUZZ_CHECK(errLen == 1024, "prepare got err_len %zu", errLen);
  recorder.seenByPrepare.clear();
  for (int32_t i = 0; i < recorder.numArgs; ++i)
    recorder.seenByPrepare.push_back(*static_cast<femrt_memref *>(args[i]));
  switch (recorder.prepareMode) {
  case 1:
    std::snprintf(err, errLen, "fuzzed prepare says no");
    return 1;
  case 2:
    return -7;
  default:
    std::memcpy(grid, recorder.grid, sizeof(recorder.grid));
    std::memcpy(recorder.activeGrid, recorder.grid, sizeof(recorder.grid));
    return 0;
  }
}

void recordWorkgroup(void *const *args, int64_t x, int64_t y, int64_t z) {
  ++recorder.calls;
  FUZZ_CHECK(x >= 0 && y >= 0 && z >= 0 && x < recorder.activeGrid[0] &&
                 y < recorder.activeGrid[1] && z < recorder.activeGrid[2],
             "workgroup (%lld, %lld, %lld) outside the grid", (long long)x,
             (long long)y, (long long)z);
  // Touch the first and last byte of every real, non-empty argument:
  // ASan reports a descriptor that points outside the caller's memory.
  for (int32_t i = 0; i < recorder.numArgs; ++i) {
    const femrt_memref *m = static_cast<const femrt_memref *>(args[i]);
    if (recorder.realBytes[i] <= 0)
      continue;
    volatile const uint8_t *first =
        static_cast<const uint8_t *>(m->aligned);
    volatile const uint8_t *last = first + recorder.realBytes[i] - 1;
    (void)*first;
    (void)*last;
  }
}

//--- a fuzzed library --------------------------------------------------------

/// Owns the strings and tables of a fuzzed femrt_kernel_library.
struct FuzzedLibrary {
  std::vector<std::unique_ptr<std::string>> strings;
  std::vector<std::vector<femrt_arg_info>> argTables;
  std::vector<femrt_kernel_info> kernels;
  femrt_kernel_library library{};
  /// Whether the tables are well-formed by kernel_abi.h's rules.
  bool valid = true;

  const char *keep(std::string s) {
    strings.push_back(std::make_unique<std::string>(std::move(s)));
    return strings.back()->c_str();
  }

  /// A name: NULL, "", one of a few (duplicates likely), or fuzzed bytes.
  const char *name(Reader &in, const char *prefix, bool &isNull,
                   std::string &value) {
    isNull = false;
    switch (in.choose(8)) {
    case 0:
      isNull = true;
      return nullptr;
    case 1:
      value = "";
      break;
    case 2:
    case 3:
    case 4:
    case 5:
      value = std::string(prefix) + char('0' + in.choose(3));
      break;
    default: {
      value = in.string(12);
      value = value.substr(0, value.find('\0'));
      break;
    }
    }
    return keep(value);
  }

  void build(Reader &in) {
    switch (in.choose(8)) {
    case 0:
      library.abi_version = in.value<uint32_t>();
      break;
    case 1:
      library.abi_version = 999;
      break;
    default:
      library.abi_version = FEMRT_KERNEL_ABI_VERSION;
    }
    valid &= library.abi_version == FEMRT_KERNEL_ABI_VERSION;
    switch (in.choose(8)) {
    case 0:
      library.struct_size = in.value<uint32_t>() % 128;
      break;
    case 1:
      library.struct_size = sizeof(femrt_kernel_library) + 8;
      break;
    default:
      library.struct_size = sizeof(femrt_kernel_library);
    }
    valid &= library.struct_size >= sizeof(femrt_kernel_library);
    // Kernel ABI v2: the stride of the kernel table (a vector here).
    library.kernel_info_size = sizeof(femrt_kernel_info);
    library.producer = in.choose(4) == 0 ? nullptr : keep(in.string(8));
    library.target = in.choose(4) == 0 ? nullptr : keep("fuzz");

    unsigned countMode = in.choose(16);
    int32_t numKernels = int32_t(in.choose(4));
    kernels.resize(numKernels);
    std::set<std::string> kernelNames;
    for (int32_t k = 0; k < numKernels; ++k) {
      femrt_kernel_info &info = kernels[k];
      bool isNull;
      std::string value;
      info.name = name(in, "k", isNull, value);
      valid &= !isNull && !value.empty() && kernelNames.insert(value).second;
      info.workgroup = in.choose(16) == 0 ? nullptr : recordWorkgroup;
      valid &= info.workgroup != nullptr;
      info.prepare = in.choose(4) == 0 ? nullptr : recordPrepare;
      info.description = in.choose(4) == 0 ? nullptr : keep(in.string(8));
      int32_t numArgs = int32_t(in.choose(5));
      argTables.emplace_back(numArgs);
      std::vector<femrt_arg_info> &args = argTables.back();
      std::set<std::string> argNames;
      bool seenOutput = false;
      for (femrt_arg_info &arg : args) {
        arg.name = name(in, "a", isNull, value);
        valid &= !isNull && !value.empty() && argNames.insert(value).second;
        switch (in.choose(4)) {
        case 0:
          arg.dim_names = nullptr;
          break;
        case 1:
          arg.dim_names = keep(in.string(10));
          break;
        default:
          arg.dim_names = keep("B,T,,H,dk");
        }
        static const uint8_t kCodes[] = {0, 1, 2, 4, 6, 5};
        arg.dtype_code = in.choose(8) == 0 ? in.byte() : kCodes[in.choose(6)];
        static const uint8_t kBits[] = {8, 16, 32, 64, 32, 8};
        arg.dtype_bits = in.choose(8) == 0 ? in.byte() : kBits[in.choose(6)];
        valid &= arg.dtype_bits != 0 && arg.dtype_bits % 8 == 0;
        unsigned role = in.choose(16);
        arg.role = role < 7 ? FEMRT_ARG_INPUT
                   : role < 15 ? FEMRT_ARG_OUTPUT
                               : in.value<uint16_t>();
        valid &= arg.role == FEMRT_ARG_INPUT || arg.role == FEMRT_ARG_OUTPUT;
        if (arg.role == FEMRT_ARG_OUTPUT)
          seenOutput = true;
        else if (seenOutput)
          valid = false;
        unsigned rank = in.choose(16);
        arg.rank = rank <= 8 ? int32_t(rank % 5)
                   : rank < 15 ? int32_t(rank - 9 + 4)
                               : in.value<int32_t>();
        valid &= arg.rank >= 0 && arg.rank <= FEMRT_MAX_RANK;
        for (int d = 0; d < FEMRT_MAX_RANK; ++d) {
          unsigned e = in.choose(16);
          arg.shape[d] = e < 8   ? -1
                         : e < 14 ? int64_t(e - 8)
                         : e == 14 ? -2
                                   : in.value<int64_t>();
          if (d < arg.rank && arg.rank <= FEMRT_MAX_RANK)
            valid &= arg.shape[d] >= -1;
        }
      }
      info.num_args = numArgs;
      info.args = args.empty() && in.choose(2) ? nullptr : args.data();
    }
    // Counts that lie about the tables are checked only where the runtime
    // can see it: negative or above its limits, or a NULL table.
    library.num_kernels = numKernels;
    library.kernels = numKernels == 0 && in.choose(2) ? nullptr : kernels.data();
    switch (countMode) {
    case 0:
      library.num_kernels = -1 - int32_t(in.choose(4));
      valid = false;
      break;
    case 1:
      library.num_kernels = INT32_MAX - int32_t(in.choose(4));
      valid = false;
      break;
    case 2:
      if (numKernels > 0) {
        library.kernels = nullptr;
        valid = false;
      }
      break;
    case 3:
      if (numKernels > 0) {
        femrt_kernel_info &info = kernels[in.choose(numKernels)];
        switch (in.choose(3)) {
        case 0:
          info.num_args = -1;
          break;
        case 1:
          info.num_args = INT32_MAX;
          break;
        default:
          if (info.num_args == 0)
            break;
          info.args = nullptr;
        }
      }
      break;
    default:
      break;
    }
    if (library.num_kernels > 0 && library.num_kernels < 1 << 20)
      for (femrt_kernel_info &info : kernels)
        if (info.num_args < 0 || info.num_args > 4096 ||
            (info.num_args > 0 && !info.args))
          valid = false;
  }
};

//--- tensors -----------------------------------------------------------------

/// A fuzzed DLTensor with the memory it may point to.
struct FuzzedTensor {
  DLTensor t{};
  bool isNull = false;
  std::vector<int64_t> shape, strides;
  std::shared_ptr<std::vector<uint64_t>> buffer; // 8-aligned storage
  /// Bytes of real memory from data + byte_offset, or -1.
  int64_t realBytes = -1;
};

unsigned elementBytesOf(const femrt_arg_info &info) {
  return info.dtype_bits / 8;
}

int64_t elementCount(const FuzzedTensor &f, bool &tooMany) {
  tooMany = false;
  int64_t n = 1;
  for (int d = 0; d < f.t.ndim; ++d) {
    int64_t e = f.shape[d];
    if (e < 0)
      return -1;
    if (n != 0 && e > kMaxElements / n) {
      tooMany = true;
      return -1;
    }
    n *= e;
  }
  return n;
}

void buildTensor(Reader &in, const femrt_arg_info *info, bool fakeKernels,
                 std::vector<FuzzedTensor> &tensors, FuzzedTensor &f) {
  if (in.choose(32) == 0) {
    f.isNull = true;
    return;
  }
  int32_t rank = info ? info->rank : int32_t(in.choose(4));
  switch (in.choose(16)) {
  case 0:
    f.t.ndim = -1 - int(in.choose(2));
    break;
  case 1:
    f.t.ndim = rank + 1;
    break;
  case 2:
    f.t.ndim = rank > 0 ? rank - 1 : 9;
    break;
  default:
    f.t.ndim = rank;
  }
  size_t dims = f.t.ndim > 0 ? size_t(f.t.ndim) : 0;
  f.shape.resize(std::max<size_t>(dims, 1));
  for (size_t d = 0; d < dims; ++d) {
    int64_t wanted = info && int(d) < info->rank && d < FEMRT_MAX_RANK
                         ? info->shape[d]
                         : -1;
    unsigned e = in.choose(32);
    if (e < 20)
      f.shape[d] = wanted >= 0 && e < 12 ? wanted : int64_t(e % 5);
    else if (e < 28)
      f.shape[d] = int64_t(in.choose(9));
    else if (e == 28)
      f.shape[d] = -1 - in.choose(2);
    else if (e == 29)
      f.shape[d] = int64_t(1) << (20 + in.choose(44));
    else
      f.shape[d] = in.value<int64_t>();
  }
  // Known open finding: a zero extent lets the other extents overflow
  // HostLaunch.cpp's stride computation; step around it when asked to.
  if (femc::fuzz::knownOpen("femrt-zero-extent-overflow") &&
      std::find(f.shape.begin(), f.shape.begin() + dims, 0) !=
          f.shape.begin() + dims)
    for (size_t d = 0; d < dims; ++d)
      f.shape[d] = std::min<int64_t>(f.shape[d], 127); // 127^8 < 2^56
  f.t.shape = dims > 0 && in.choose(32) == 0 ? nullptr : f.shape.data();

  // dtype
  uint8_t code = info ? info->dtype_code : 2;
  uint8_t bits = info ? info->dtype_bits : 32;
  switch (in.choose(16)) {
  case 0:
    code = in.byte();
    break;
  case 1:
    bits = in.byte();
    break;
  case 2:
    f.t.dtype.lanes = 2 + in.choose(7);
    break;
  case 3: // another one-byte mask spelling
    if (bits == 8)
      code = in.choose(2) ? 0 : 6;
    break;
  default:
    break;
  }
  f.t.dtype.code = code;
  f.t.dtype.bits = bits;
  if (f.t.dtype.lanes == 0)
    f.t.dtype.lanes = 1;

  // device
  int deviceType = kDLCPU;
  switch (in.choose(16)) {
  case 0:
    deviceType = kDLCUDA;
    break;
  case 1:
    deviceType = kDLCUDAHost;
    break;
  case 2:
    deviceType = in.value<int32_t>();
    break;
  default:
    break;
  }
  std::memcpy(&f.t.device.device_type, &deviceType, sizeof(int));
  f.t.device.device_id = in.choose(3);

  // strides (in elements)
  if (in.choose(2) && dims > 0) {
    f.strides.resize(dims);
    // Compact strides; wrapping like the runtime's for absurd shapes (the
    // runtime refuses those before it looks at strides).
    uint64_t stride = 1;
    for (size_t d = dims; d-- > 0;) {
      f.strides[d] = int64_t(stride);
      stride *= f.shape[d] > 0 ? uint64_t(f.shape[d]) : 0;
    }
    if (in.choose(4) == 0) {
      size_t d = in.choose(unsigned(dims));
      f.strides[d] = in.choose(2) ? f.strides[d] + 1 : in.value<int64_t>();
    }
    f.t.strides = f.strides.data();
  }

  // byte offset and data
  unsigned elementSize = info ? std::max(1u, elementBytesOf(*info)) : 4;
  switch (in.choose(8)) {
  case 0:
    f.t.byte_offset = in.choose(8);
    break;
  case 1:
    f.t.byte_offset = in.value<uint64_t>();
    break;
  case 2:
    f.t.byte_offset = uint64_t(elementSize) * in.choose(4);
    break;
  default:
    f.t.byte_offset = 0;
  }
  bool tooMany = false;
  int64_t n = f.t.shape ? elementCount(f, tooMany) : -1;
  uint64_t need = n >= 0 && uint64_t(n) <= kMaxRealBytes / elementSize
                      ? uint64_t(n) * elementSize
                      : UINT64_MAX;
  unsigned dataMode = in.choose(16);
  if (dataMode == 0) { // NULL
    f.t.data = nullptr;
  } else if (dataMode == 1 && !fakeKernels) { // fake, never read
    f.t.data = reinterpret_cast<void *>(
        in.choose(2) ? uintptr_t(0x1000) : UINTPTR_MAX - 63);
  } else if (dataMode == 2 && !tensors.empty() &&
             tensors.back().buffer) { // alias the previous tensor's memory
    FuzzedTensor &other = tensors.back();
    f.buffer = other.buffer;
    uint64_t offset = in.choose(3) * uint64_t(elementSize);
    f.t.data = reinterpret_cast<uint8_t *>(f.buffer->data()) + offset;
    uint64_t size = f.buffer->size() * 8;
    if (need != UINT64_MAX && f.t.byte_offset <= size &&
        offset + f.t.byte_offset + need <= size)
      f.realBytes = int64_t(need);
  } else if (need != UINT64_MAX && f.t.byte_offset <= kMaxRealBytes) {
    // Real memory, possibly misaligned by one byte.
    uint64_t shift = dataMode == 3 ? 1 : 0;
    uint64_t bytes = shift + f.t.byte_offset + need;
    f.buffer = std::make_shared<std::vector<uint64_t>>((bytes + 7) / 8 + 1);
    f.t.data = reinterpret_cast<uint8_t *>(f.buffer->data()) + shift;
    f.realBytes = int64_t(need);
  } else {
    f.t.data = nullptr;
  }
  // The fake kernels read whatever they are given: give them nothing that
  // is not real memory (NULL is fine: the runtime must refuse it, or the
  // tensor is empty).
  if (fakeKernels && f.realBytes < 0 && n != 0)
    f.t.data = nullptr;
}

//--- the launch oracle -----------------------------------------------------

bool sameCode(const femrt_arg_info &info, const DLTensor &t) {
  bool byteMask = info.dtype_bits == 8 && t.dtype.bits == 8 &&
                  t.dtype.lanes == 1 &&
                  (info.dtype_code == 6 || info.dtype_code == kDLUInt) &&
                  (t.dtype.code == 6 || t.dtype.code == kDLUInt ||
                   t.dtype.code == kDLInt);
  return byteMask || (t.dtype.code == info.dtype_code &&
                      t.dtype.bits == info.dtype_bits && t.dtype.lanes == 1);
}

/// Whether tensor `f` passes every per-argument check of femrt.h; fills
/// [begin, end) and the element count.
bool argumentValid(const femrt_arg_info &info, const FuzzedTensor &f,
                   uintptr_t &begin, uintptr_t &end, int64_t &count) {
  if (f.isNull)
    return false;
  const DLTensor &t = f.t;
  if (t.ndim < 0 || (t.ndim > 0 && !t.shape))
    return false;
  bool tooMany;
  count = elementCount(f, tooMany);
  if (count < 0)
    return false;
  if (!t.data && count != 0)
    return false;
  if (t.ndim != info.rank || !sameCode(info, t))
    return false;
  for (int d = 0; d < info.rank; ++d)
    if (info.shape[d] >= 0 && info.shape[d] != t.shape[d])
      return false;
  int device;
  std::memcpy(&device, &t.device.device_type, sizeof(int));
  if (device != kDLCPU && device != kDLCUDAHost)
    return false;
  if (t.strides && count != 0) {
    int64_t stride = 1;
    for (int d = t.ndim - 1; d >= 0; --d) {
      if (t.shape[d] != 1 && t.strides[d] != stride)
        return false;
      stride *= t.shape[d];
    }
  }
  uint64_t elementSize = info.dtype_bits / 8;
  if (t.byte_offset % elementSize != 0)
    return false;
  uintptr_t base = reinterpret_cast<uintptr_t>(t.data);
  if (t.byte_offset > UINTPTR_MAX - base)
    return false;
  begin = base + t.byte_offset;
  if (count != 0 && begin % elementSize != 0)
    return false;
  uint64_t bytes = uint64_t(count) * elementSize;
  if (bytes > UINTPTR_MAX - begin)
    return false;
  end = begin + bytes;
  return true;
}

void checkFailure(femrt_status status, const char *what) {
  FUZZ_CHECK(status > FEMRT_OK && status <= FEMRT_ERROR_UNSUPPORTED,
             "%s returned status %d, outside the enum", what, int(status));
  const char *message = femrt_last_error();
  FUZZ_CHECK(message && *message, "%s failed (%s) without a message", what,
             femrt_status_string(status));
}

void fuzzLaunch(Reader &in, femrt_kernel *kernel, bool fakeKernels) {
  int32_t numArgs = 0;
  FUZZ_CHECK(femrt_kernel_num_args(kernel, &numArgs) == FEMRT_OK,
             "femrt_kernel_num_args failed: %s", femrt_last_error());
  std::vector<const femrt_arg_info *> infos(numArgs);
  for (int32_t i = 0; i < numArgs; ++i) {
    FUZZ_CHECK(femrt_kernel_get_arg_info(kernel, i, &infos[i]) == FEMRT_OK,
               "femrt_kernel_get_arg_info(%d) failed: %s", i,
               femrt_last_error());
    FUZZ_CHECK(infos[i]->name && infos[i]->dim_names,
               "argument #%d has a NULL name or dim_names", i);
    int32_t found = -1;
    FUZZ_CHECK(femrt_kernel_find_arg(kernel, infos[i]->name, &found) ==
                       FEMRT_OK &&
                   found == i,
               "femrt_kernel_find_arg('%s') gave %d, expected %d",
               infos[i]->name, found, i);
  }
  const femrt_arg_info *out = nullptr;
  femrt_status s = femrt_kernel_get_arg_info(kernel, numArgs, &out);
  FUZZ_CHECK(s != FEMRT_OK, "femrt_kernel_get_arg_info past the end succeeded");
  checkFailure(s, "femrt_kernel_get_arg_info");

  // The tensors.
  int32_t passed = numArgs;
  switch (in.choose(16)) {
  case 0:
    passed = numArgs + 1;
    break;
  case 1:
    passed = numArgs - 1;
    break;
  case 2:
    passed = -1;
    break;
  default:
    break;
  }
  size_t built = size_t(std::max(passed, 0));
  std::vector<FuzzedTensor> tensors;
  tensors.reserve(built);
  for (size_t i = 0; i < built; ++i) {
    FuzzedTensor f;
    buildTensor(in, i < size_t(numArgs) ? infos[i] : nullptr, fakeKernels,
                tensors, f);
    tensors.push_back(std::move(f));
  }
  std::vector<const DLTensor *> pointers(std::max<size_t>(built, 1));
  for (size_t i = 0; i < built; ++i)
    pointers[i] = tensors[i].isNull ? nullptr : &tensors[i].t;
  bool nullArgs = built > 0 && in.choose(32) == 0;

  // Launch options.
  femrt_launch_options options;
  FUZZ_CHECK(femrt_launch_options_init(&options) == FEMRT_OK,
             "femrt_launch_options_init failed");
  bool useOptions = in.choose(2);
  bool optionsValid = true;
  if (useOptions) {
    switch (in.choose(8)) {
    case 0:
      options.struct_size = in.choose(2) ? 0 : sizeof(options) - 1;
      optionsValid = false;
      break;
    case 1:
      options.max_threads = -1 - int32_t(in.choose(4));
      optionsValid = false;
      break;
    case 2:
      options.stream = reinterpret_cast<void *>(uintptr_t(0x10));
      optionsValid = false;
      break;
    default:
      options.max_threads = int32_t(in.choose(3));
    }
  }

  // Recorder setup for fuzzed libraries.
  recorder.numArgs = numArgs;
  recorder.calls = 0;
  recorder.prepareCalled = false;
  for (int64_t &g : recorder.activeGrid)
    g = 1;
  recorder.prepareMode = in.choose(8);
  recorder.prepareMode = recorder.prepareMode < 5 ? 0 : recorder.prepareMode - 4;
  if (recorder.prepareMode == 3) {
    // A grid the runtime must refuse: negative, or too many workgroups.
    recorder.grid[0] = in.choose(2) ? -1 : INT64_MAX;
    recorder.grid[1] = in.choose(2) ? 2 : int64_t(1) << 40;
    recorder.grid[2] = int64_t(1) << 40;
  } else {
    for (int64_t &g : recorder.grid)
      g = in.choose(4);
  }
  recorder.realBytes.assign(numArgs, -1);
  for (int32_t i = 0; i < numArgs && size_t(i) < built; ++i)
    recorder.realBytes[i] = tensors[i].realBytes;

  femrt_status status = femrt_kernel_launch(
      kernel, nullArgs ? nullptr : pointers.data(), passed,
      useOptions ? &options : nullptr);

  // What femrt.h says the result must be.
  bool valid = optionsValid && passed == numArgs && !(nullArgs && numArgs > 0);
  std::vector<uintptr_t> begin(built), end(built);
  std::vector<int64_t> count(built);
  if (valid)
    for (int32_t i = 0; i < numArgs; ++i)
      valid &= argumentValid(*infos[i], tensors[i], begin[i], end[i], count[i]);
  if (valid)
    for (int32_t i = 0; i < numArgs; ++i) {
      if (infos[i]->role != FEMRT_ARG_OUTPUT || count[i] == 0)
        continue;
      for (int32_t j = 0; j < numArgs; ++j)
        if (j != i && count[j] != 0 && begin[i] < end[j] && begin[j] < end[i])
          valid = false;
    }

  if (!valid) {
    FUZZ_CHECK(status != FEMRT_OK,
               "femrt_kernel_launch accepted arguments that femrt.h says it "
               "checks and refuses");
    checkFailure(status, "femrt_kernel_launch");
    return;
  }
  if (fakeKernels) {
    // The fake kernels' prepare may refuse shape relations.
    if (status != FEMRT_OK) {
      FUZZ_CHECK(status == FEMRT_ERROR_SHAPE_MISMATCH,
                 "valid arguments refused with %s: %s",
                 femrt_status_string(status), femrt_last_error());
      checkFailure(status, "femrt_kernel_launch");
    }
    return;
  }
  bool hasPrepare = recorder.prepareCalled;
  if (hasPrepare && recorder.prepareMode == 1) {
    FUZZ_CHECK(status == FEMRT_ERROR_SHAPE_MISMATCH &&
                   std::strstr(femrt_last_error(), "fuzzed prepare says no"),
               "a refusing prepare gave %s: %s", femrt_status_string(status),
               femrt_last_error());
    return;
  }
  if (hasPrepare && recorder.prepareMode == 2) {
    FUZZ_CHECK(status == FEMRT_ERROR_SHAPE_MISMATCH,
               "a prepare failing without a message gave %s",
               femrt_status_string(status));
    checkFailure(status, "femrt_kernel_launch");
    return;
  }
  if (hasPrepare && recorder.prepareMode == 3) {
    FUZZ_CHECK(status == FEMRT_ERROR_INTERNAL,
               "prepare's invalid grid gave %s", femrt_status_string(status));
    checkFailure(status, "femrt_kernel_launch");
    return;
  }
  FUZZ_CHECK(status == FEMRT_OK, "valid arguments refused with %s: %s",
             femrt_status_string(status), femrt_last_error());
  int64_t expectedCalls = 1;
  if (hasPrepare)
    expectedCalls = recorder.grid[0] * recorder.grid[1] * recorder.grid[2];
  FUZZ_CHECK(recorder.calls == expectedCalls,
             "%lld workgroups ran, expected %lld", (long long)recorder.calls,
             (long long)expectedCalls);
  if (hasPrepare) {
    for (int32_t i = 0; i < numArgs; ++i) {
      const femrt_memref &m = recorder.seenByPrepare[i];
      const DLTensor &t = tensors[i].t;
      FUZZ_CHECK(m.allocated == t.data && m.offset == 0 &&
                     reinterpret_cast<uintptr_t>(m.aligned) == begin[i],
                 "argument #%d: descriptor pointers differ from the tensor",
                 i);
      // Compact strides (a zero extent makes the outer ones 0).
      uint64_t stride = 1;
      for (int d = t.ndim - 1; d >= 0; --d) {
        FUZZ_CHECK(m.dims[d] == t.shape[d] &&
                       m.dims[t.ndim + d] == int64_t(stride),
                   "argument #%d dimension %d: descriptor (%lld, stride %lld)"
                   ", tensor (%lld, compact stride %lld)",
                   i, d, (long long)m.dims[d], (long long)m.dims[t.ndim + d],
                   (long long)t.shape[d], (long long)stride);
        stride *= uint64_t(t.shape[d]);
      }
    }
  }
}

//--- the kernel queries ----------------------------------------------------

void checkModule(Reader &in, femrt_module *module, bool fakeKernels) {
  int32_t numKernels = -1;
  FUZZ_CHECK(femrt_module_num_kernels(module, &numKernels) == FEMRT_OK,
             "femrt_module_num_kernels failed: %s", femrt_last_error());
  const char *producer = nullptr, *target = nullptr;
  FUZZ_CHECK(femrt_module_get_info(module, &producer, &target) == FEMRT_OK &&
                 producer && target,
             "femrt_module_get_info failed: %s", femrt_last_error());
  femrt_kernel *kernel = nullptr;
  femrt_status s = femrt_module_get_kernel_by_index(module, numKernels, &kernel);
  FUZZ_CHECK(s != FEMRT_OK, "get_kernel_by_index past the end succeeded");
  checkFailure(s, "femrt_module_get_kernel_by_index");
  s = femrt_module_get_kernel(module, "no such kernel", &kernel);
  FUZZ_CHECK(s == FEMRT_ERROR_NOT_FOUND, "an unknown kernel name gave %s",
             femrt_status_string(s));
  checkFailure(s, "femrt_module_get_kernel");
  for (int32_t k = 0; k < numKernels; ++k) {
    FUZZ_CHECK(femrt_module_get_kernel_by_index(module, k, &kernel) ==
                   FEMRT_OK,
               "get_kernel_by_index(%d) failed: %s", k, femrt_last_error());
    const char *name = nullptr, *description = nullptr;
    FUZZ_CHECK(femrt_kernel_get_name(kernel, &name) == FEMRT_OK && name &&
                   *name,
               "kernel #%d has no name", k);
    FUZZ_CHECK(femrt_kernel_get_description(kernel, &description) ==
                       FEMRT_OK &&
                   description,
               "kernel #%d has no description string", k);
    femrt_kernel *byName = nullptr;
    FUZZ_CHECK(femrt_module_get_kernel(module, name, &byName) == FEMRT_OK &&
                   byName == kernel,
               "kernel '%s' looked up by name is another handle", name);
  }
  if (numKernels == 0)
    return;
  FUZZ_CHECK(femrt_module_get_kernel_by_index(
                 module, int32_t(in.choose(unsigned(numKernels))), &kernel) ==
                 FEMRT_OK,
             "get_kernel_by_index failed: %s", femrt_last_error());
  fuzzLaunch(in, kernel, fakeKernels);
}

femrt_context *context() {
  static femrt_context *instance = [] {
    femrt_context_options options;
    femrt_context_options_init(&options);
    options.num_threads = 1; // the fuzzer's own thread only
    femrt_context *c = nullptr;
    FUZZ_CHECK(femrt_context_create(&options, &c) == FEMRT_OK,
               "femrt_context_create failed: %s", femrt_last_error());
    return c;
  }();
  return instance;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Reader in(data, size);
  bool fakeKernels = in.choose(4) == 0;
  femrt_module *module = nullptr;
  FuzzedLibrary fuzzed;
  femrt_status status;
  if (fakeKernels) {
    status = femrt_module_create_static(context(), fake_kernels_static_query(),
                                        &module);
    FUZZ_CHECK(status == FEMRT_OK, "the fake kernels do not load: %s",
               femrt_last_error());
  } else {
    fuzzed.build(in);
    status = femrt_module_create_static(context(), &fuzzed.library, &module);
    if (fuzzed.valid)
      FUZZ_CHECK(status == FEMRT_OK, "a well-formed library was refused: %s",
                 femrt_last_error());
    else
      FUZZ_CHECK(status == FEMRT_ERROR_ABI_VERSION ||
                     status == FEMRT_ERROR_INVALID_LIBRARY,
                 "a malformed library gave %s", femrt_status_string(status));
    if (status != FEMRT_OK) {
      checkFailure(status, "femrt_module_create_static");
      FUZZ_CHECK(module == nullptr, "out_module written on failure");
      return 0;
    }
  }
  checkModule(in, module, fakeKernels);
  FUZZ_CHECK(femrt_module_destroy(module) == FEMRT_OK,
             "femrt_module_destroy failed: %s", femrt_last_error());
  return 0;
}
