//===- TuningDb.cpp - the persistent tile tuning database -----------------===//
#include "tools/fem-tune/TuningDb.h"
#include "femc/Version.h"
#include "femrt/femrt.h"
#ifdef FEMTUNE_HAS_PRIORS
#include "dialect/Priors.h"
#endif

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace femc::tune {

namespace {

std::string errnoText() { return std::strerror(errno); }

/// The folder of `path` ("." when it has no '/').
std::string folderOf(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Json tilesJson(const std::map<std::string, int64_t> &tiles) {
  Json j = Json::makeObject();
  for (auto &[name, value] : tiles)
    j.set(name, Json::makeNumber(static_cast<double>(value)));
  return j;
}

Json measurementJson(const Measurement &m) {
  Json j = Json::makeObject();
  j.set("median_ms", Json::makeNumber(m.medianMs));
  j.set("spread", Json::makeNumber(m.spread));
  j.set("samples", Json::makeNumber(static_cast<double>(m.samples)));
  if (m.q1Ms > 0 || m.q3Ms > 0) {
    j.set("q1_ms", Json::makeNumber(m.q1Ms));
    j.set("q3_ms", Json::makeNumber(m.q3Ms));
  }
  return j;
}

Json entryJson(const Entry &e) {
  Json j = Json::makeObject();
  j.set("kernel_hash", Json::makeString(e.kernelHash));
  j.set("semantics", Json::makeString(e.semantics));
  j.set("target", Json::makeString(e.target));
  j.set("bucket", Json::makeString(e.bucket));
  j.set("femc_version", Json::makeString(e.femcVersion));
  j.set("tile_space_version",
        Json::makeNumber(static_cast<double>(e.tileSpaceVersion)));
  j.set("tiles", tilesJson(e.tiles));
  j.set("best", measurementJson(e.best));
  Json def = measurementJson(e.defaultTime);
  def.set("tiles", tilesJson(e.defaultTiles));
  j.set("default", def);
  j.set("kernel_name", Json::makeString(e.kernelName));
  j.set("tuned_at", Json::makeString(e.tunedAt));
  Json counts = Json::makeObject();
  counts.set("timed", Json::makeNumber(static_cast<double>(e.timed)));
  counts.set("discarded", Json::makeNumber(static_cast<double>(e.discarded)));
  counts.set("pruned", Json::makeNumber(static_cast<double>(e.pruned)));
  counts.set("skipped", Json::makeNumber(static_cast<double>(e.skipped)));
  counts.set("quick_only", Json::makeNumber(static_cast<double>(e.quickOnly)));
  j.set("candidates", counts);
  if (!e.choiceRule.empty()) {
    Json choice = Json::makeObject();
    choice.set("rule", Json::makeString(e.choiceRule));
    choice.set("tie", Json::makeBool(e.tie));
    choice.set("tied", Json::makeNumber(static_cast<double>(e.tied)));
    if (!e.fastestTiles.empty())
      choice.set("fastest", tilesJson(e.fastestTiles));
    j.set("choice", choice);
  }
  if (e.threads > 0) {
    Json threads = Json::makeObject();
    threads.set("chosen", Json::makeNumber(static_cast<double>(e.threads)));
    Json list = Json::makeArray();
    for (int64_t t : e.threadCandidates)
      list.array.push_back(Json::makeNumber(static_cast<double>(t)));
    threads.set("candidates", list);
    threads.set("tie", Json::makeBool(e.threadsTie));
    j.set("threads", threads);
  }
  return j;
}

bool readTiles(const Json *j, std::map<std::string, int64_t> &out,
               std::string &why) {
  if (!j || !j->isObject() || j->object.empty()) {
    why = "a non-empty object of whole numbers";
    return false;
  }
  for (auto &[name, value] : j->object) {
    auto v = j->getInteger(name);
    if (!v || *v <= 0) {
      why = "positive whole numbers (\"" + name + "\" is not)";
      return false;
    }
    // The tiles femc compiles, as the #fem.tiles verifier takes them
    // (dialect/FEMDialect.cpp): an entry edited by hand used to reach the
    // kernel (an unknown name was ignored, q = 100000 refused by fem-tile
    // without naming the database).
    if (name != "q" && name != "k" && name != "vec") {
      why = "an object of the tiles q, k and vec (\"" + name +
            "\" is none of them)";
      return false;
    }
    bool inRange = name == "vec" ? (*v == 4 || *v == 8 || *v == 16)
                                 : *v <= 1024;
    if (!inRange) {
      why = "q and k from 1 to 1024 and vec 4, 8 or 16, as #fem.tiles "
            "takes them (\"" + name + "\" is " + std::to_string(*v) + ")";
      return false;
    }
    out[name] = *v;
  }
  return true;
}

/// Tiles inside #fem.tiles' ranges that the entry's prior cannot use (a
/// softmax q of 24 at vec 8, a scan chunk above 512) reached fem-tile,
/// whose message, located at the mixer, did not say that they came from
/// the database. The prior is the semantics' first field, "prior=NAME".
bool tilesThePriorTakes(const std::string &semantics,
                        const std::map<std::string, int64_t> &tiles,
                        std::string &why) {
#ifdef FEMTUNE_HAS_PRIORS
  if (semantics.rfind("prior=", 0) != 0 || !tiles.count("q") ||
      !tiles.count("k") || !tiles.count("vec"))
    return true;
  std::string prior = semantics.substr(6, semantics.find(' ') - 6);
  const priors::PriorInfo *info = priors::findPrior(prior);
  if (!info)
    return true;
  if (std::optional<std::string> bad = priors::checkTiles(
          *info, {tiles.at("q"), tiles.at("k"), tiles.at("vec")})) {
    why = "tiles prior '" + prior + "' can use (" + *bad + ")";
    return false;
  }
#else
  (void)semantics, (void)tiles, (void)why;
#endif
  return true;
}

bool readMeasurement(const Json *j, Measurement &m) {
  if (!j || !j->isObject())
    return false;
  auto median = j->getNumber("median_ms"), spread = j->getNumber("spread");
  auto samples = j->getInteger("samples");
  if (!median || !spread || !samples)
    return false;
  m.medianMs = *median;
  m.spread = *spread;
  m.samples = *samples;
  // Optional (entries written before the quartiles were recorded).
  m.q1Ms = j->getNumber("q1_ms").value_or(0);
  m.q3Ms = j->getNumber("q3_ms").value_or(0);
  return true;
}

/// Checks and reads entry `key`; `error` says which member is wrong.
bool readEntry(const std::string &key, const Json &j, Entry &e,
               std::string &error) {
  auto bad = [&](const std::string &member, const std::string &expected) {
    error = "entry \"" + key + "\": member \"" + member + "\" must be " +
            expected;
    return false;
  };
  if (!j.isObject())
    return bad("(the entry itself)", "an object");
  e.key = key;
  const std::pair<const char *, std::string *> strings[] = {
      {"kernel_hash", &e.kernelHash}, {"semantics", &e.semantics},
      {"target", &e.target},          {"bucket", &e.bucket},
      {"femc_version", &e.femcVersion}, {"kernel_name", &e.kernelName},
      {"tuned_at", &e.tunedAt}};
  for (auto &[name, field] : strings) {
    auto s = j.getString(name);
    if (!s)
      return bad(name, "a string");
    *field = *s;
  }
  auto version = j.getInteger("tile_space_version");
  if (!version || *version < 1)
    return bad("tile_space_version", "a whole number >= 1");
  e.tileSpaceVersion = *version;
  std::string why;
  if (!readTiles(j.get("tiles"), e.tiles, why))
    return bad("tiles", why);
  if (!tilesThePriorTakes(e.semantics, e.tiles, why))
    return bad("tiles", why);
  if (!readMeasurement(j.get("best"), e.best))
    return bad("best", "an object with median_ms, spread and samples");
  const Json *def = j.get("default");
  if (!readMeasurement(def, e.defaultTime))
    return bad("default", "an object with median_ms, spread, samples and "
                          "tiles");
  if (!readTiles(def->get("tiles"), e.defaultTiles, why))
    return bad("default.tiles", why);
  if (!tilesThePriorTakes(e.semantics, e.defaultTiles, why))
    return bad("default.tiles", why);
  const Json *counts = j.get("candidates");
  if (counts) {
    e.timed = counts->getInteger("timed").value_or(0);
    e.discarded = counts->getInteger("discarded").value_or(0);
    e.pruned = counts->getInteger("pruned").value_or(0);
    e.skipped = counts->getInteger("skipped").value_or(0);
    e.quickOnly = counts->getInteger("quick_only").value_or(0);
  }
  if (const Json *choice = j.get("choice")) {
    auto rule = choice->isObject() ? choice->getString("rule") : std::nullopt;
    if (!rule)
      return bad("choice", "an object with rule, tie and tied");
    e.choiceRule = *rule;
    e.tie = choice->getBool("tie").value_or(false);
    e.tied = choice->getInteger("tied").value_or(0);
    if (const Json *fastest = choice->get("fastest");
        fastest && !readTiles(fastest, e.fastestTiles, why))
      return bad("choice.fastest", why);
  }
  if (const Json *threads = j.get("threads")) {
    auto chosen =
        threads->isObject() ? threads->getInteger("chosen") : std::nullopt;
    // A pool of more than FEMRT_MAX_THREADS cannot be made: such a value
    // would reach the manifest and be clamped silently at launch.
    if (!chosen || *chosen < 1 || *chosen > FEMRT_MAX_THREADS)
      return bad("threads", "an object whose \"chosen\" is a whole number "
                            "from 1 to " +
                                std::to_string(FEMRT_MAX_THREADS));
    e.threads = *chosen;
    // Whole numbers in the pool's range only: 1e300 converted to int64_t
    // is undefined behaviour.
    if (const Json *list = threads->get("candidates"); list && list->isArray())
      for (const Json &t : list->array)
        if (t.isNumber() && t.number == std::floor(t.number) && t.number >= 1 &&
            t.number <= FEMRT_MAX_THREADS)
          e.threadCandidates.push_back(static_cast<int64_t>(t.number));
    e.threadsTie = threads->getBool("tie").value_or(false);
  }
  std::string expected =
      makeKey(e.semantics, e.target, e.bucket, e.femcVersion);
  if (expected != key) {
    error = "entry \"" + key + "\" does not match its semantics, target, "
            "bucket and femc_version (their key is \"" + expected +
            "\"); was it edited by hand?";
    return false;
  }
  return true;
}

bool parseDatabase(const std::string &path, const std::string &text,
                   Database &db, std::string &error, JsonPosition *where) {
  Json root;
  std::string why;
  if (!parseJson(text, root, why, where)) {
    error = "tuning database '" + path + "' is not valid JSON: " + why;
    return false;
  }
  auto schemaError = [&](const std::string &what) {
    error = "tuning database '" + path + "' does not follow the schema: " +
            what;
    return false;
  };
  if (!root.isObject())
    return schemaError("the document must be an object");
  const Json *versionJson = root.get("schema_version");
  auto version = root.getInteger("schema_version");
  if (!versionJson)
    return schemaError("no \"schema_version\" member");
  if (!version || *version < 1)
    return schemaError("\"schema_version\" must be a whole number >= 1");
  if (*version > kSchemaVersion) {
    error = "tuning database '" + path + "' has schema_version " +
            std::to_string(*version) + ", newer than this femc reads (" +
            std::to_string(kSchemaVersion) +
            "); use the femc that wrote it or another database";
    return false;
  }
  const Json *entries = root.get("entries");
  if (!entries || !entries->isObject())
    return schemaError("\"entries\" must be an object");
  for (auto &[key, value] : entries->object) {
    Entry e;
    if (!readEntry(key, value, e, why))
      return schemaError(why);
    db.entries[key] = std::move(e);
  }
  db.document = std::move(root);
  return true;
}

/// Reads the whole file; `exists` false when there is none.
bool readFile(const std::string &path, std::string &text, bool &exists,
              std::string &error) {
  exists = true;
  // O_NONBLOCK: opening a FIFO with no writer would wait for one (femc
  // --tuning-db and fem-tune hung); it is refused below as not a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) {
      exists = false;
      return true;
    }
    error = "cannot read tuning database '" + path + "': " + errnoText();
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
    ::close(fd);
    error = "tuning database '" + path + "' is not a regular file";
    return false;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  text.clear();
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      error = "cannot read tuning database '" + path + "': " + errnoText();
      ::close(fd);
      return false;
    }
    if (n == 0)
      break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool writeAll(int fd, const std::string &text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

/// Holds an exclusive flock on a side file while alive, and removes the file
/// before it lets go (a database folder keeps no DB.json.lock). A waiter can
/// get the lock of a file its holder has just removed, so a lock counts only
/// when the path still names the locked file; otherwise it is taken again.
class FileLock {
public:
  bool acquire(const std::string &lockPath, std::string &error) {
    while (true) {
      fd = ::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) {
        error = "cannot open lock file '" + lockPath + "': " + errnoText();
        return false;
      }
      while (::flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR)
          continue;
        error = "cannot lock '" + lockPath + "': " + errnoText();
        ::close(fd);
        fd = -1;
        return false;
      }
      struct stat held, named;
      if (::fstat(fd, &held) == 0 && ::stat(lockPath.c_str(), &named) == 0 &&
          held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
        path = lockPath;
        return true;
      }
      ::close(fd); // removed (or replaced) by the holder before us
      fd = -1;
    }
  }
  ~FileLock() {
    if (fd >= 0) {
      ::unlink(path.c_str());
      ::flock(fd, LOCK_UN);
      ::close(fd);
    }
  }

private:
  int fd = -1;
  std::string path;
};

} // namespace

bool loadDatabase(const std::string &path, Database &db, std::string &error,
                  JsonPosition *where) {
  db = Database();
  std::string text;
  bool exists = false;
  if (!readFile(path, text, exists, error))
    return false;
  if (!exists)
    return true;
  return parseDatabase(path, text, db, error, where);
}

std::string serializeDatabase(const Database &db) {
  // What was read stays (a member this femc does not know, written by a
  // newer one or by hand, used to be dropped by the next fem-tune run).
  Json root = db.document.isObject() ? db.document : Json::makeObject();
  root.set("schema_version", Json::makeNumber(kSchemaVersion));
  const Json *read = db.document.get("entries");
  Json entries = Json::makeObject();
  for (auto &[key, e] : db.entries) {
    const Json *asRead = read ? read->get(key) : nullptr;
    entries.set(key, asRead ? *asRead : entryJson(e));
  }
  root.set("entries", entries);
  return writeJson(root);
}

/// The file `path` names through any symbolic links (a link that names a
/// file not yet there resolves to that file): the update replaces it, not
/// the link, which rename would turn into a private copy.
static std::string followLinks(const std::string &path) {
  namespace fs = std::filesystem;
  fs::path at(path);
  std::error_code ec;
  for (int hops = 0; hops < 40 && fs::is_symlink(at, ec); ++hops) {
    fs::path next = fs::read_symlink(at, ec);
    if (ec)
      break;
    at = next.is_absolute() ? next : at.parent_path() / next;
  }
  return at.string();
}

std::string lockPathFor(const std::string &path) {
  return followLinks(path) + ".lock";
}

bool canCreateLock(const std::string &path, std::string &error) {
  std::string lock = lockPathFor(path);
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno != EEXIST) {
    error = "cannot create '" + lock + "': " + errnoText();
    return false;
  }
  if (fd >= 0) {
    // Made only to see that it can be: a writer that opened it meanwhile
    // finds it gone once it holds the lock, and takes it again.
    ::unlink(lock.c_str());
    ::close(fd);
  }
  return true;
}

bool canReplace(const std::string &linkPath, std::string &error) {
  const std::string path = followLinks(linkPath);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      (st.st_mode & S_IWUSR))
    return true; // missing (created), or refused as it is read
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
  error = "tuning database '" + linkPath + "' is read-only (mode " + mode +
          "): fem-tune replaces the file to record a result and does not "
          "replace a read-only one; make it writable (chmod u+w) or give "
          "another --db; the file was left untouched";
  return false;
}

bool updateDatabase(const std::string &linkPath,
                    const std::vector<Entry> &entries, std::string &error) {
  const std::string path = followLinks(linkPath);
  FileLock lock;
  if (!lock.acquire(lockPathFor(path), error))
    return false;
  Database db;
  if (!loadDatabase(path, db, error)) {
    error += "; the file was left untouched";
    return false;
  }
  // The file is replaced by a new one (rename): it keeps the old one's
  // permissions and group (a database shared as 0664 became 0644, one
  // kept private as 0600 world-readable, a read-only one writable).
  if (!canReplace(path, error))
    return false;
  struct stat old;
  bool existed = ::stat(path.c_str(), &old) == 0;
  auto read = db.document.object.find("entries");
  for (const Entry &e : entries) {
    db.entries[e.key] = e;
    if (read != db.document.object.end())
      read->second.object.erase(e.key); // written from its new fields
  }
  std::string text = serializeDatabase(db);
  std::string temp = path + ".tmp.XXXXXX";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) {
    error = "cannot create a temporary file next to '" + path +
            "': " + errnoText();
    return false;
  }
  temp = name.data();
  // mkstemp makes the file 0600; a new database is as readable as any
  // file, a replaced one keeps its mode, owner and group where it can.
  if (existed) {
    if (::fchown(fd, old.st_uid, old.st_gid) != 0)
      (void)::fchown(fd, static_cast<uid_t>(-1), old.st_gid);
    ::fchmod(fd, old.st_mode & 07777);
  } else {
    mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
  }
  if (!writeAll(fd, text) || ::fsync(fd) != 0) {
    error = "cannot write '" + temp + "': " + errnoText();
    ::close(fd);
    ::unlink(temp.c_str());
    return false;
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    error = "cannot rename '" + temp + "' to '" + path + "': " + errnoText();
    ::unlink(temp.c_str());
    return false;
  }
  int dir = ::open(folderOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return true;
}

const Entry *lookup(const Database &db, const std::string &key) {
  auto it = db.entries.find(key);
  return it == db.entries.end() ? nullptr : &it->second;
}

std::string hashText(const std::string &text) {
  uint64_t h = 14695981039346656037ull; // FNV-1a 64 offset basis
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

std::vector<std::string> split(const std::string &text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, sep))
    out.push_back(item);
  return out;
}

/// A number as femc's description writes it (printf %.9g), so the key text
/// reads like the description and does not depend on the JSON spelling.
std::string attributeText(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  return buffer;
}

} // namespace

bool readKernels(const std::string &manifest, std::vector<KernelDesc> &kernels,
                 std::string &error) {
  Json root;
  std::string why;
  if (!parseJson(manifest, root, why)) {
    error = "femc's manifest is not valid JSON: " + why;
    return false;
  }
  const Json *list = root.get("kernels");
  if (!list || !list->isArray()) {
    error = "femc's manifest has no \"kernels\" array";
    return false;
  }
  for (const Json &k : list->array) {
    KernelFields f;
    auto name = k.getString("name");
    if (!name) {
      error = "femc's manifest has a kernel without a name";
      return false;
    }
    f.name = *name;
    f.prior = k.getString("prior").value_or("");
    f.layout = k.getString("layout").value_or("");
    f.causal = k.getBool("causal").value_or(false);
    f.mask = k.getBool("mask").value_or(false);
    f.layer = f.prior == "layer";
    if (const Json *tiles = k.get("tiles"))
      for (auto &[tile, value] : tiles->object)
        if (auto v = tiles->getInteger(tile))
          f.tiles[tile] = *v;
    if (!f.layer) {
      auto cap = k.getNumber("cap"), eps = k.getNumber("eps");
      const Json *scale = k.get("scale");
      if (!cap || !eps || !scale || !(scale->isNumber() || scale->isNull())) {
        error = "femc's manifest gives no scale, cap and eps for kernel '" +
                f.name + "' (a manifest from an older femc?)";
        return false;
      }
      f.cap = *cap;
      f.eps = *eps;
      if (scale->isNumber())
        f.scale = scale->number;
    }
    const Json *args = k.get("args");
    if (!args || !args->isArray()) {
      error = "femc's manifest has no \"args\" for kernel '" + f.name + "'";
      return false;
    }
    for (const Json &a : args->array) {
      ArgFields arg;
      arg.name = a.getString("name").value_or("?");
      arg.role = a.getString("role").value_or("?");
      arg.dtype = a.getString("dtype").value_or("?");
      arg.dims = a.getString("dims").value_or("");
      const Json *shape = a.get("shape");
      if (shape && shape->isArray())
        for (const Json &extent : shape->array)
          arg.shape.push_back(extent.isNumber()
                                  ? static_cast<int64_t>(extent.number)
                                  : -1);
      f.args.push_back(std::move(arg));
    }
    kernels.push_back(describeKernel(f));
  }
  return true;
}

KernelDesc describeKernel(const KernelFields &f) {
  KernelDesc d;
  d.name = f.name;
  d.prior = f.prior;
  d.layout = f.layout;
  d.causal = f.causal;
  d.mask = f.mask;
  d.layer = f.layer;
  d.tiles = f.tiles;
  // The semantics: every field that changes what the kernel computes (not
  // its name, not its tiles).
  std::string semantics;
  if (f.layer) {
    semantics = "layer=1";
  } else {
    semantics = "prior=" + f.prior + " causal=" + (f.causal ? "1" : "0") +
                " layout=" + f.layout + " mask=" + (f.mask ? "1" : "0");
    if (f.scale)
      semantics += " scale=" + attributeText(*f.scale);
    semantics += " cap=" + attributeText(f.cap) + " eps=" + attributeText(f.eps);
  }
  std::set<std::string> dynamic;
  for (const ArgFields &a : f.args) {
    std::vector<std::string> dimNames = split(a.dims, ',');
    std::string shapeText;
    for (size_t i = 0; i < a.shape.size(); ++i) {
      int64_t value = a.shape[i];
      shapeText += i ? "x" : "";
      shapeText += value < 0 ? "?" : std::to_string(value);
      if (i < dimNames.size() && !dimNames[i].empty()) {
        if (value < 0)
          dynamic.insert(dimNames[i]);
        else
          d.staticExtents[dimNames[i]] = value;
      }
    }
    semantics += " " + a.name + ":" + a.role + ":" + a.dtype + ":" + a.dims +
                 ":" + shapeText;
  }
  for (const std::string &s : dynamic)
    if (!d.staticExtents.count(s))
      d.dynamicExtents.push_back(s);
  d.semantics = semantics;
  return d;
}

LookupResult lookupKernel(const Database &db, const KernelDesc &kernel,
                          const std::map<std::string, int64_t> &dims,
                          const std::string &target,
                          const std::string &femcVersion) {
  LookupResult r;
  std::map<std::string, int64_t> extents;
  std::string why;
  if (!resolveExtents(kernel, dims, extents, why)) {
    (why.rfind("--dim", 0) == 0 ? r.error : r.miss) = why;
    return r;
  }
  r.bucket = shapeBucket(kernel, extents);
  r.key = makeKey(kernel.semantics, target, r.bucket, femcVersion);
  r.entry = lookup(db, r.key);
  if (!r.entry)
    r.miss = "no entry for key " + r.key + " (bucket " + r.bucket + ")";
  return r;
}

bool parseDim(const std::string &text, const std::string &option,
              std::map<std::string, int64_t> &dims, std::string &error) {
  size_t eq = text.find('=');
  std::string sym = text.substr(0, eq);
  std::string value = eq == std::string::npos ? "" : text.substr(eq + 1);
  bool digits = !value.empty() && value.size() <= 10 &&
                value.find_first_not_of("0123456789") == std::string::npos;
  unsigned long long n = digits ? std::stoull(value) : 0;
  if (eq == std::string::npos || sym.empty() || n == 0 || n > (1ull << 31)) {
    error = option + " expects SYM=N with N from 1 to 2147483648, found '" +
            text + "'";
    return false;
  }
  if (dims.count(sym)) {
    error = option + " " + sym + " is given twice";
    return false;
  }
  dims[sym] = static_cast<int64_t>(n);
  return true;
}

std::string femcVersionText() { return FEMC_PRODUCER; }

bool resolveExtents(const KernelDesc &kernel,
                    const std::map<std::string, int64_t> &given,
                    std::map<std::string, int64_t> &extents,
                    std::string &error) {
  std::set<std::string> known(kernel.dynamicExtents.begin(),
                              kernel.dynamicExtents.end());
  for (auto &[name, value] : kernel.staticExtents)
    known.insert(name);
  std::string knownText;
  for (const std::string &k : known)
    knownText += (knownText.empty() ? "" : ", ") + k;
  extents = kernel.staticExtents;
  for (auto &[name, value] : given) {
    if (!known.count(name)) {
      error = "--dim " + name + ": kernel '" + kernel.name +
              "' has no extent called '" + name + "' (its arguments name: " +
              knownText + ")";
      if (name == "S" && kernel.causal)
        error += "; the kernel is causal, so its keys have the length T";
      return false;
    }
    auto it = kernel.staticExtents.find(name);
    if (it != kernel.staticExtents.end() && it->second != value) {
      error = "--dim " + name + "=" + std::to_string(value) +
              " contradicts kernel '" + kernel.name + "', whose arguments fix " +
              name + " = " + std::to_string(it->second);
      return false;
    }
    extents[name] = value;
  }
  auto has = [&](const char *s) { return extents.count(s) != 0; };
  auto isKnown = [&](const char *s) { return known.count(s) != 0; };
  if (isKnown("E") && !has("E") && has("H") && has("dv"))
    extents["E"] = extents["H"] * extents["dv"];
  if (isKnown("H") && !has("H") && has("E") && has("dv") && extents["dv"] > 0 &&
      extents["E"] % extents["dv"] == 0)
    extents["H"] = extents["E"] / extents["dv"];
  if (isKnown("Hkv") && !has("Hkv") && has("H"))
    extents["Hkv"] = extents["H"];
  if (isKnown("S") && !has("S") && has("T"))
    extents["S"] = extents["T"];
  for (const std::string &d : kernel.dynamicExtents)
    if (!extents.count(d)) {
      error = "extent " + d + " of kernel '" + kernel.name +
              "' is dynamic; give it with --dim " + d + "=N";
      return false;
    }
  return true;
}

std::string shapeBucket(const KernelDesc &kernel,
                        const std::map<std::string, int64_t> &extents) {
  std::vector<std::string> names = kernel.dynamicExtents;
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string &name : names) {
    auto it = extents.find(name);
    int64_t v = it == extents.end() ? -1 : it->second;
    int64_t bucket = v;
    if (v > 0) {
      bucket = 1;
      while (bucket < v && bucket < (int64_t(1) << 62))
        bucket <<= 1;
    }
    out += (out.empty() ? "" : ",") + name + "=" +
           (v < 0 ? std::string("?") : std::to_string(bucket));
  }
  return out.empty() ? "static" : out;
}

std::string targetText(const std::string &compileTarget) {
  std::string model = "unknown";
  std::set<std::string> flags;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  bool haveModel = false, haveFlags = false;
  while (std::getline(cpuinfo, line) && !(haveModel && haveFlags)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    std::string field = line.substr(0, colon);
    field.erase(field.find_last_not_of(" \t") + 1);
    std::string value =
        colon + 2 <= line.size() ? line.substr(colon + 2) : std::string();
    if (field == "model name" && !haveModel) {
      model = value;
      haveModel = true;
    } else if (field == "flags" && !haveFlags) {
      for (const std::string &f : split(value, ' '))
        flags.insert(f);
      haveFlags = true;
    }
  }
  static const char *const kRelevant[] = {
      "sse4_2",      "avx",         "avx2",     "fma",      "f16c",
      "avx512f",     "avx512dq",    "avx512bw", "avx512vl", "avx512_vnni",
      "avx512_bf16", "avx512_fp16", "amx_tile"};
  std::string features;
  for (const char *f : kRelevant)
    if (flags.count(f))
      features += (features.empty() ? "" : ",") + std::string(f);
  unsigned cpus = std::thread::hardware_concurrency();
  return compileTarget + "; cpu=" + model + "; features=" +
         (features.empty() ? "none" : features) +
         "; cpus=" + std::to_string(cpus);
}

std::string makeKey(const std::string &semantics, const std::string &target,
                    const std::string &bucket,
                    const std::string &femcVersion) {
  return hashText(semantics) + "-" +
         hashText(semantics + "\n" + target + "\n" + bucket + "\n" +
                  femcVersion);
}

std::string utcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string tilesText(const std::map<std::string, int64_t> &tiles) {
  // q, k, vec first, in that order; any others after, by name.
  std::string out;
  auto add = [&](const std::string &name, int64_t v) {
    out += (out.empty() ? "" : " ") + name + "=" + std::to_string(v);
  };
  for (const char *name : {"q", "k", "vec"})
    if (tiles.count(name))
      add(name, tiles.at(name));
  for (auto &[name, v] : tiles)
    if (name != "q" && name != "k" && name != "vec")
      add(name, v);
  return out;
}

} // namespace femc::tune
