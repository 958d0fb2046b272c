//===- ReplayMain.cpp - Runs a fuzz target over files, without libFuzzer --===//
//
// Part of the femc project.
//
// In the normal build (FEMC_FUZZ=OFF) every fuzz target is linked with this
// main() instead of libFuzzer, so that ctest replays its committed corpus and
// every saved finding (test/fuzz/regressions/<target>/) as a regression test:
//
//   <target>-replay [--allow-empty] FILE|DIR...
//
// Each argument is a file, or a folder whose regular files are run in name
// order (files whose name starts with '.' or ends in ".md" are skipped). The
// target's own checks abort on a violated property; a crash fails the test.
// Exits 0 when every input ran, 1 when an argument cannot be read, and 2 when
// no input was run at all (an empty corpus is a mistake, not a pass), unless
// --allow-empty is given (a regressions folder before any finding).
//
//===----------------------------------------------------------------------===//

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int *argc,
                                                          char ***argv);

namespace {

bool readFile(const std::string &path, std::vector<uint8_t> &out) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return false;
  out.clear();
  uint8_t buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0)
    out.insert(out.end(), buffer, buffer + n);
  bool ok = !std::ferror(f);
  std::fclose(f);
  return ok;
}

bool skipped(const std::string &name) {
  return name.empty() || name[0] == '.' ||
         (name.size() >= 3 && name.compare(name.size() - 3, 3, ".md") == 0);
}

/// Appends the inputs named by `path` (a file or a folder) to `files`.
bool collect(const std::string &path, std::vector<std::string> &files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "replay: error: cannot read '%s'\n", path.c_str());
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    files.push_back(path);
    return true;
  }
  DIR *dir = opendir(path.c_str());
  if (!dir) {
    std::fprintf(stderr, "replay: error: cannot open folder '%s'\n",
                 path.c_str());
    return false;
  }
  std::vector<std::string> names;
  while (dirent *entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (skipped(name))
      continue;
    std::string full = path + "/" + name;
    if (stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      names.push_back(full);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  files.insert(files.end(), names.begin(), names.end());
  return true;
}

} // namespace

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  bool allowEmpty = false;
  std::vector<std::string> files;
  bool ok = true;
  int paths = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--allow-empty") {
      allowEmpty = true;
      continue;
    }
    ok &= collect(argv[i], files);
    ++paths;
  }
  if (paths == 0) {
    std::fprintf(stderr, "usage: %s [--allow-empty] FILE|DIR...\n", argv[0]);
    return 1;
  }
  if (!ok)
    return 1;
  std::vector<uint8_t> data;
  for (const std::string &file : files) {
    if (!readFile(file, data)) {
      std::fprintf(stderr, "replay: error: cannot read '%s'\n", file.c_str());
      return 1;
    }
    std::printf("replay: %s (%zu bytes)\n", file.c_str(), data.size());
    std::fflush(stdout);
    // libFuzzer passes a non-null pointer even for an empty input.
    uint8_t empty = 0;
    LLVMFuzzerTestOneInput(data.empty() ? &empty : data.data(), data.size());
  }
  if (files.empty() && !allowEmpty) {
    std::fprintf(stderr, "replay: error: no input found\n");
    return 2;
  }
  std::printf("replay: %zu inputs ran\n", files.size());
  return 0;
}
