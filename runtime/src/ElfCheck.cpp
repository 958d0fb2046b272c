//===- ElfCheck.cpp - Checking a shared object before dlopen --------------===//
//
// dlopen maps a library's loadable segments without checking that the file
// is long enough: a truncated library dies with SIGBUS inside the loader, and
// a library for another machine is reported with a misleading errno ("No
// such file or directory" for an aarch64 library). checkElfLibrary reads the
// headers first and refuses such files with a message naming the problem.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/ElfCheck.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace femc::rt {

namespace {

#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#elif defined(__riscv) && __riscv_xlen == 64
constexpr uint16_t kHostMachine = EM_RISCV;
#elif defined(__powerpc64__)
constexpr uint16_t kHostMachine = EM_PPC64;
#elif defined(__loongarch64)
constexpr uint16_t kHostMachine = 258; // EM_LOONGARCH
#else
constexpr uint16_t kHostMachine = 0; // unknown: the machine is not checked
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr unsigned char kHostData = ELFDATA2MSB;
#else
constexpr unsigned char kHostData = ELFDATA2LSB;
#endif

constexpr unsigned char kHostClass =
    sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32;

/// The usual name of an ELF e_machine value.
std::string machineName(uint16_t machine) {
  switch (machine) {
  case EM_X86_64:
    return "x86-64";
  case EM_AARCH64:
    return "aarch64";
  case EM_386:
    return "i386";
  case EM_ARM:
    return "arm";
  case EM_RISCV:
    return "riscv";
  case EM_PPC64:
    return "ppc64";
  case EM_PPC:
    return "ppc";
  case EM_S390:
    return "s390";
  case EM_MIPS:
    return "mips";
  case EM_SPARCV9:
    return "sparcv9";
  case 190: // EM_CUDA
    return "NVIDIA CUDA (a cubin: load it with femrt_cuda_module_load_image)";
  case 224: // EM_AMDGPU
    return "AMD GPU";
  case 258: // EM_LOONGARCH
    return "loongarch";
  default:
    return concat("machine ", machine);
  }
}

/// Reads exactly `size` bytes at `offset` (the caller checked they exist);
/// false with errno set on a read error or an unexpected end of file.
bool readAt(int fd, void *buffer, size_t size, uint64_t offset) {
  char *out = static_cast<char *>(buffer);
  while (size > 0) {
    ssize_t n = pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0) {
      errno = EIO; // the file shrank while we read it
      return false;
    }
    out += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

/// Closes a file descriptor at the end of a scope.
class FileCloser {
public:
  explicit FileCloser(int fd) : fd(fd) {}
  ~FileCloser() { close(fd); }
  FileCloser(const FileCloser &) = delete;
  FileCloser &operator=(const FileCloser &) = delete;

private:
  int fd;
};

/// `offset + count * entrySize`, or false on overflow.
bool tableEnd(uint64_t offset, uint64_t count, uint64_t entrySize,
              uint64_t &end) {
  if (entrySize != 0 && count > (UINT64_MAX - offset) / entrySize)
    return false;
  end = offset + count * entrySize;
  return true;
}

} // namespace

femrt_status checkElfLibrary(const char *function, const char *path) {
  std::string quoted = concat("'", path, "'");
  auto refuse = [&](const std::string &problem) {
    return fail(FEMRT_ERROR_IO, concat(function, ": ", quoted, " ", problem));
  };

  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int error = errno;
    return fail(FEMRT_ERROR_IO, concat(function, ": cannot open library ",
                                       quoted, ": ", std::strerror(error)));
  }
  FileCloser closer(fd);
  struct stat info;
  if (fstat(fd, &info) != 0) {
    int error = errno;
    return fail(FEMRT_ERROR_IO, concat(function, ": cannot open library ",
                                       quoted, ": ", std::strerror(error)));
  }
  if (S_ISDIR(info.st_mode))
    return refuse("is a directory, not a shared library");
  if (!S_ISREG(info.st_mode))
    return refuse("is not a regular file (a device, FIFO or socket), not a "
                  "shared library");
  const uint64_t fileSize = static_cast<uint64_t>(info.st_size);
  if (fileSize == 0)
    return refuse("is empty (0 bytes), not a shared library");

  auto readError = [&](const char *what) {
    int error = errno;
    return fail(FEMRT_ERROR_IO, concat(function, ": cannot read ", what,
                                       " of ", quoted, ": ",
                                       std::strerror(error)));
  };
  auto truncated = [&](const std::string &what, uint64_t end) {
    return refuse(concat("is truncated: ", what, " ends at byte ", end,
                         ", but the file has ", fileSize, " bytes"));
  };
  // FEMRT_OK when `count` entries of `entrySize` bytes from `offset` lie in
  // the file; otherwise the failure, describing them as `what`.
  auto checkRange = [&](const std::string &what, uint64_t offset,
                        uint64_t count, uint64_t entrySize) {
    uint64_t end = 0;
    if (!tableEnd(offset, count, entrySize, end))
      return refuse(concat("is malformed: ", what,
                           " would end beyond byte 2^64"));
    if (end > fileSize)
      return truncated(what, end);
    return FEMRT_OK;
  };

  unsigned char ident[EI_NIDENT] = {};
  size_t identSize = fileSize < EI_NIDENT ? fileSize : EI_NIDENT;
  if (!readAt(fd, ident, identSize, 0))
    return readError("the ELF header");
  if (identSize < SELFMAG || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
    return refuse("is not an ELF file (it does not start with the ELF magic "
                  "\\x7fELF), so not a shared library");
  if (identSize < EI_NIDENT)
    return truncated("the ELF identification (16 bytes)", EI_NIDENT);
  if (ident[EI_CLASS] != kHostClass) {
    if (ident[EI_CLASS] == ELFCLASS32 || ident[EI_CLASS] == ELFCLASS64)
      return refuse(concat("is a ", ident[EI_CLASS] == ELFCLASS32 ? 32 : 64,
                           "-bit ELF file; this host loads ",
                           kHostClass == ELFCLASS32 ? 32 : 64,
                           "-bit libraries"));
    return refuse(concat("has an invalid ELF class ", unsigned(ident[EI_CLASS]),
                         " (expected 1 or 2)"));
  }
  if (ident[EI_DATA] != kHostData) {
    if (ident[EI_DATA] == ELFDATA2LSB || ident[EI_DATA] == ELFDATA2MSB)
      return refuse(concat(
          "is a ", ident[EI_DATA] == ELFDATA2MSB ? "big" : "little",
          "-endian ELF file; this host is ",
          kHostData == ELFDATA2MSB ? "big" : "little", "-endian"));
    return refuse(concat("has an invalid ELF data encoding ",
                         unsigned(ident[EI_DATA]), " (expected 1 or 2)"));
  }
  static_assert(sizeof(void *) == 8,
                "checkElfLibrary reads 64-bit ELF headers only");
  if (fileSize < sizeof(Elf64_Ehdr))
    return truncated(concat("the ELF header (", sizeof(Elf64_Ehdr),
                            " bytes)"),
                     sizeof(Elf64_Ehdr));
  Elf64_Ehdr header;
  if (!readAt(fd, &header, sizeof(header), 0))
    return readError("the ELF header");

  if (kHostMachine != 0 && header.e_machine != kHostMachine)
    return refuse(concat("is an ELF ",
                         header.e_type == ET_DYN ? "library" : "file",
                         " for ", machineName(header.e_machine),
                         "; this host is ", machineName(kHostMachine)));
  if (header.e_type != ET_DYN) {
    switch (header.e_type) {
    case ET_EXEC:
      return refuse("is an ELF executable, not a shared library");
    case ET_REL:
      return refuse("is an ELF relocatable object (.o), not a shared library "
                    "(link it with -shared)");
    case ET_CORE:
      return refuse("is an ELF core dump, not a shared library");
    default:
      return refuse(concat("is an ELF file of type ", header.e_type,
                           ", not a shared library (ET_DYN)"));
    }
  }

  // The program header table: what dlopen maps.
  if (header.e_phentsize != sizeof(Elf64_Phdr))
    return refuse(concat("has a malformed ELF header: e_phentsize is ",
                         header.e_phentsize, ", expected ",
                         sizeof(Elf64_Phdr)));
  if (header.e_phnum == 0 || header.e_phnum == PN_XNUM)
    return refuse(concat("has a malformed ELF header: e_phnum is ",
                         header.e_phnum, " (a shared library has 1 to ",
                         PN_XNUM - 1, " program headers)"));
  if (femrt_status s = checkRange(
          concat("its program header table (", header.e_phnum,
                 " entries from byte ", header.e_phoff, ")"),
          header.e_phoff, header.e_phnum, sizeof(Elf64_Phdr)))
    return s;

  // The section header table (optional in a stripped file, but where there
  // is one it is the last thing in the file: the first to go when a copy is
  // cut short).
  if (header.e_shoff != 0) {
    if (header.e_shentsize != sizeof(Elf64_Shdr))
      return refuse(concat("has a malformed ELF header: e_shentsize is ",
                           header.e_shentsize, ", expected ",
                           sizeof(Elf64_Shdr)));
    uint64_t numSections = header.e_shnum;
    if (numSections == 0) {
      // Extended numbering: the count is in section 0's sh_size.
      if (femrt_status s = checkRange(
              concat("its section header table (from byte ", header.e_shoff,
                     ")"),
              header.e_shoff, 1, sizeof(Elf64_Shdr)))
        return s;
      Elf64_Shdr first;
      if (!readAt(fd, &first, sizeof(first), header.e_shoff))
        return readError("the section headers");
      numSections = first.sh_size;
    }
    if (femrt_status s = checkRange(
            concat("its section header table (", numSections,
                   " entries from byte ", header.e_shoff, ")"),
            header.e_shoff, numSections, sizeof(Elf64_Shdr)))
      return s;
  }

  std::vector<Elf64_Phdr> segments(header.e_phnum);
  if (!readAt(fd, segments.data(), segments.size() * sizeof(Elf64_Phdr),
              header.e_phoff))
    return readError("the program headers");
  int numLoad = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const Elf64_Phdr &segment = segments[i];
    if (segment.p_type != PT_LOAD && segment.p_type != PT_DYNAMIC)
      continue;
    const char *kind = segment.p_type == PT_LOAD ? "PT_LOAD" : "PT_DYNAMIC";
    if (segment.p_type == PT_LOAD)
      ++numLoad;
    if (femrt_status s = checkRange(
            concat("segment #", i, " (", kind, ", ", segment.p_filesz,
                   " bytes from byte ", segment.p_offset, ")"),
            segment.p_offset, 1, segment.p_filesz))
      return s;
  }
  if (numLoad == 0)
    return refuse("has no loadable (PT_LOAD) segment, so it is not a "
                  "loadable shared library");
  return FEMRT_OK;
}

femrt_status checkCudaImage(const char *function, const void *image,
                            size_t size) {
  const unsigned char *bytes = static_cast<const unsigned char *>(image);
  const uint64_t imageSize = size;

  // A fatbin: struct { uint32 magic; uint16 version; uint16 headerSize;
  // uint64 fatSize; } and fatSize bytes after the header.
  constexpr uint32_t kFatbinMagic = 0xba55ed50u;
  uint32_t magic = 0;
  if (size >= 4)
    std::memcpy(&magic, bytes, 4);
  if (magic == kFatbinMagic) {
    auto refuse = [&](const std::string &problem) {
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": the fatbin image (", size, " bytes) ",
                         problem));
    };
    if (size < 16)
      return refuse("is truncated: shorter than a fatbin header (16 bytes)");
    uint16_t headerSize;
    uint64_t fatSize;
    std::memcpy(&headerSize, bytes + 6, 2);
    std::memcpy(&fatSize, bytes + 8, 8);
    if (headerSize < 16 || headerSize > imageSize)
      return refuse(concat("has a malformed header: header size ",
                           headerSize));
    if (fatSize > imageSize - headerSize)
      return refuse(concat("is truncated: its header says ", headerSize,
                           " + ", fatSize, " bytes"));
    return FEMRT_OK;
  }

  if (size < SELFMAG || std::memcmp(bytes, ELFMAG, SELFMAG) != 0)
    return FEMRT_OK; // PTX text, left to the driver

  auto refuse = [&](const std::string &problem) {
    return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                concat(function, ": the cubin image (", size, " bytes) ",
                       problem));
  };
  auto checkRange = [&](const std::string &what, uint64_t offset,
                        uint64_t count, uint64_t entrySize) {
    uint64_t end = 0;
    if (!tableEnd(offset, count, entrySize, end))
      return refuse(concat("is malformed: ", what,
                           " would end beyond byte 2^64"));
    if (end > imageSize)
      return refuse(concat("is truncated: ", what, " ends at byte ", end));
    return FEMRT_OK;
  };
  if (size < EI_NIDENT)
    return refuse("is truncated: shorter than an ELF identification "
                  "(16 bytes)");
  if (bytes[EI_CLASS] != ELFCLASS64)
    return refuse(concat("is not a 64-bit ELF file (class ",
                         unsigned(bytes[EI_CLASS]),
                         "); cubins are 64-bit"));
  if (bytes[EI_DATA] != ELFDATA2LSB)
    return refuse(concat("is not little-endian (ELF data encoding ",
                         unsigned(bytes[EI_DATA]), ")"));
  if (size < sizeof(Elf64_Ehdr))
    return refuse(concat("is truncated: shorter than an ELF header (",
                         sizeof(Elf64_Ehdr), " bytes)"));
  Elf64_Ehdr header;
  std::memcpy(&header, bytes, sizeof(header));
  constexpr uint16_t kEmCuda = 190;
  if (header.e_machine != kEmCuda)
    return refuse(concat("is an ELF file for ", machineName(header.e_machine),
                         ", not a CUDA cubin (e_machine EM_CUDA)"));

  if (header.e_phnum != 0) {
    if (header.e_phentsize != sizeof(Elf64_Phdr))
      return refuse(concat("has a malformed ELF header: e_phentsize is ",
                           header.e_phentsize, ", expected ",
                           sizeof(Elf64_Phdr)));
    if (femrt_status s = checkRange(
            concat("its program header table (", header.e_phnum,
                   " entries from byte ", header.e_phoff, ")"),
            header.e_phoff, header.e_phnum, sizeof(Elf64_Phdr)))
      return s;
    for (uint16_t i = 0; i < header.e_phnum; ++i) {
      Elf64_Phdr segment;
      std::memcpy(&segment, bytes + header.e_phoff + i * sizeof(segment),
                  sizeof(segment));
      if (femrt_status s = checkRange(
              concat("segment #", i, " (", segment.p_filesz,
                     " bytes from byte ", segment.p_offset, ")"),
              segment.p_offset, 1, segment.p_filesz))
        return s;
    }
  }
  if (header.e_shnum != 0) {
    if (header.e_shentsize != sizeof(Elf64_Shdr))
      return refuse(concat("has a malformed ELF header: e_shentsize is ",
                           header.e_shentsize, ", expected ",
                           sizeof(Elf64_Shdr)));
    if (femrt_status s = checkRange(
            concat("its section header table (", header.e_shnum,
                   " entries from byte ", header.e_shoff, ")"),
            header.e_shoff, header.e_shnum, sizeof(Elf64_Shdr)))
      return s;
    for (uint16_t i = 0; i < header.e_shnum; ++i) {
      Elf64_Shdr section;
      std::memcpy(&section, bytes + header.e_shoff + i * sizeof(section),
                  sizeof(section));
      if (section.sh_type == SHT_NOBITS || section.sh_type == SHT_NULL)
        continue;
      if (femrt_status s = checkRange(
              concat("section #", i, " (", section.sh_size,
                     " bytes from byte ", section.sh_offset, ")"),
              section.sh_offset, 1, section.sh_size))
        return s;
    }
  }
  return FEMRT_OK;
}

} // namespace femc::rt
