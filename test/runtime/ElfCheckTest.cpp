//===- ElfCheckTest.cpp - Files refused before dlopen ---------------------===//
//
// femrt_module_load_library checks a library file before dlopen maps it.
// Before these checks a truncated library crashed the process with SIGBUS
// inside the loader and a library for another machine was reported as "No
// such file or directory". Each bad file here is generated from the real
// test library (FAKE_KERNELS_PATH).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace femrt_test;

namespace {

std::vector<char> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in),
                           std::istreambuf_iterator<char>());
}

class ElfCheckTest : public ::testing::Test {
protected:
  void SetUp() override {
    FEMRT_ASSERT_OK(femrt_context_create(nullptr, &context));
    library = readFile(FAKE_KERNELS_PATH);
    ASSERT_GE(library.size(), sizeof(Elf64_Ehdr));
    std::memcpy(&header, library.data(), sizeof(header));
  }
  void TearDown() override {
    for (const std::string &path : created)
      std::remove(path.c_str());
    EXPECT_EQ(femrt_context_destroy(context), FEMRT_OK) << femrt_last_error();
  }

  /// Writes `bytes` to a new file in the temporary directory.
  std::string write(const std::string &name, const std::vector<char> &bytes) {
    std::string path = ::testing::TempDir() + "femrt_elf_" +
                       std::to_string(getpid()) + "_" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    created.push_back(path);
    return path;
  }

  /// The real library with the header changed by `patch`.
  template <typename Patch>
  std::vector<char> patched(Patch &&patch) {
    Elf64_Ehdr copy = header;
    patch(copy);
    std::vector<char> bytes = library;
    std::memcpy(bytes.data(), &copy, sizeof(copy));
    return bytes;
  }

  /// Expects loading `path` to fail with FEMRT_ERROR_IO and a message
  /// "femrt_module_load_library: '<path>' <problem>...".
  void expectRefused(const std::string &path, const std::string &problem) {
    femrt_module *module = nullptr;
    expectError(femrt_module_load_library(context, path.c_str(), &module),
                FEMRT_ERROR_IO,
                {"femrt_module_load_library: '" + path + "' " + problem});
    EXPECT_EQ(module, nullptr);
  }

  femrt_context *context = nullptr;
  std::vector<char> library;
  Elf64_Ehdr header;
  std::vector<std::string> created;
};

TEST_F(ElfCheckTest, theRealLibraryPasses) {
  femrt_module *module = nullptr;
  FEMRT_ASSERT_OK(femrt_module_load_library(
      context, write("copy.so", library).c_str(), &module));
  FEMRT_EXPECT_OK(femrt_module_destroy(module));
}

TEST_F(ElfCheckTest, truncatedCopiesAreRefusedNotMapped) {
  // Cut anywhere (the section header table is the first thing lost).
  for (size_t size : {library.size() - 1, library.size() / 2,
                      library.size() / 8, sizeof(Elf64_Ehdr) + 8}) {
    std::vector<char> bytes(library.begin(), library.begin() + size);
    std::string path = write("truncated.so", bytes);
    expectRefused(path, "is truncated: ");
    EXPECT_NE(std::string(femrt_last_error())
                  .find("but the file has " + std::to_string(size) + " bytes"),
              std::string::npos)
        << femrt_last_error();
  }
  // Shorter than an ELF header, and shorter than the identification.
  expectRefused(write("short.so", std::vector<char>(library.begin(),
                                                    library.begin() + 40)),
                "is truncated: the ELF header (64 bytes) ends at byte 64, "
                "but the file has 40 bytes");
  expectRefused(write("shorter.so", std::vector<char>(library.begin(),
                                                      library.begin() + 6)),
                "is truncated: the ELF identification");
}

TEST_F(ElfCheckTest, aLoadableSegmentCutShortIsRefused) {
  // Without a section header table (as after `strip` of the table) only the
  // segments say where the file must reach.
  std::vector<char> bytes = patched([](Elf64_Ehdr &h) {
    h.e_shoff = 0;
    h.e_shnum = 0;
    h.e_shstrndx = 0;
  });
  std::vector<Elf64_Phdr> segments(header.e_phnum);
  std::memcpy(segments.data(), library.data() + header.e_phoff,
              segments.size() * sizeof(Elf64_Phdr));
  uint64_t loadEnd = 0;
  for (const Elf64_Phdr &segment : segments)
    if (segment.p_type == PT_LOAD)
      loadEnd = std::max<uint64_t>(loadEnd,
                                   segment.p_offset + segment.p_filesz);
  ASSERT_GT(loadEnd, header.e_phoff + segments.size() * sizeof(Elf64_Phdr));
  bytes.resize(loadEnd - 1);
  expectRefused(write("segment.so", bytes), "is truncated: segment #");
  EXPECT_NE(std::string(femrt_last_error()).find("PT_LOAD"),
            std::string::npos)
      << femrt_last_error();
}

TEST_F(ElfCheckTest, aLibraryForAnotherMachineIsNamedAsSuch) {
#if defined(__x86_64__)
  uint16_t foreign = EM_AARCH64;
  std::string expected = "is an ELF library for aarch64; this host is x86-64";
#else
  uint16_t foreign = EM_X86_64;
  std::string expected = "is an ELF library for x86-64; this host is ";
#endif
  std::string path = write("foreign.so", patched([&](Elf64_Ehdr &h) {
                             h.e_machine = foreign;
                           }));
  expectRefused(path, expected);
  EXPECT_EQ(std::string(femrt_last_error()).find("No such file"),
            std::string::npos);
}

TEST_F(ElfCheckTest, wrongClassByteOrderAndTypeAreRefused) {
  expectRefused(write("elf32.so", patched([](Elf64_Ehdr &h) {
                        h.e_ident[EI_CLASS] = ELFCLASS32;
                      })),
                "is a 32-bit ELF file; this host loads 64-bit libraries");
  expectRefused(write("badclass.so", patched([](Elf64_Ehdr &h) {
                        h.e_ident[EI_CLASS] = 7;
                      })),
                "has an invalid ELF class 7");
  expectRefused(write("msb.so", patched([](Elf64_Ehdr &h) {
                        h.e_ident[EI_DATA] = ELFDATA2MSB;
                      })),
                "is a big-endian ELF file; this host is little-endian");
  expectRefused(write("object.o", patched([](Elf64_Ehdr &h) {
                        h.e_type = ET_REL;
                      })),
                "is an ELF relocatable object (.o), not a shared library");
  expectRefused(write("program", patched([](Elf64_Ehdr &h) {
                        h.e_type = ET_EXEC;
                      })),
                "is an ELF executable, not a shared library");
  expectRefused(write("phentsize.so", patched([](Elf64_Ehdr &h) {
                        h.e_phentsize = 12;
                      })),
                "has a malformed ELF header: e_phentsize is 12, expected 56");
  expectRefused(write("phoff.so", patched([](Elf64_Ehdr &h) {
                        h.e_phoff = ~uint64_t(0) - 8;
                      })),
                "is malformed: its program header table");
}

TEST_F(ElfCheckTest, filesThatAreNotElfAreRefused) {
  std::string text = "not an ELF file, just text\n";
  expectRefused(write("text.so", std::vector<char>(text.begin(), text.end())),
                "is not an ELF file (it does not start with the ELF magic");
  expectRefused(write("empty.so", {}), "is empty (0 bytes)");
  std::string dir = ::testing::TempDir() + "femrt_elf_dir_" +
                    std::to_string(getpid()) + ".so";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0) << std::strerror(errno);
  expectRefused(dir, "is a directory, not a shared library");
  rmdir(dir.c_str());
  // A FIFO: refused without waiting for a writer.
  std::string fifo = ::testing::TempDir() + "femrt_elf_fifo_" +
                     std::to_string(getpid()) + ".so";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  expectRefused(fifo, "is not a regular file");
  std::remove(fifo.c_str());
  expectRefused("/dev/null", "is not a regular file");
}

} // namespace
