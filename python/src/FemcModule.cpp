//===- FemcModule.cpp - Python bindings of libfemrt (nanobind) -------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The `femc._femc` extension module: loads femc kernel libraries through
/// libfemrt (linked statically) and launches their kernels on any
/// DLPack-capable arrays (numpy arrays, torch CPU tensors, ...) without
/// copying them. The Python package `femc` (python/femc/__init__.py)
/// re-exports everything; see docs/python.md.
///
/// Objects and lifetimes: a `Module` owns its femrt_module and shares a
/// femrt_context (the process-wide default one, or its own when loaded with
/// `threads=`); a `Kernel` keeps its module alive. Every launch releases the
/// GIL while the kernel runs (see withoutGil for what happens when the
/// interpreter exits meanwhile).
///
//===----------------------------------------------------------------------===//

#include "dialect/Priors.h"
#include "femrt/femrt.h"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace nb = nanobind;
using namespace nb::literals;

namespace {

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

/// A failing libfemrt call (or a check of the bindings in the same spirit):
/// becomes `femc.Error` with `str(e)` = the message and `e.status` = the
/// status name, e.g. "FEMRT_ERROR_SHAPE_MISMATCH".
struct FemrtError {
  std::string status;
  std::string message;
};

/// femc.Error, created in NB_MODULE.
PyObject *gErrorType = nullptr;

/// Throws FemrtError for a failing status, with femrt_last_error() (which
/// is per thread: call this on the thread that made the call).
void check(femrt_status status) {
  if (status != FEMRT_OK)
    throw FemrtError{femrt_status_string(status), femrt_last_error()};
}

void translateError(const std::exception_ptr &p, void *) {
  try {
    std::rethrow_exception(p);
  } catch (const FemrtError &e) {
    nb::object type = nb::borrow(gErrorType);
    nb::object error = type(nb::str(e.message.c_str()));
    error.attr("status") = nb::str(e.status.c_str());
    PyErr_SetObject(gErrorType, error.ptr());
  }
}

//===----------------------------------------------------------------------===//
// Releasing the GIL, and interpreter exit
//===----------------------------------------------------------------------===//
//
// When the interpreter exits while a daemon thread is inside a libfemrt call
// (a long launch), CPython before 3.14 ends any thread that then asks for the
// GIL with pthread_exit(), which unwinds the thread's C++ frames with
// abi::__forced_unwind. On the way up that unwinding meets a noexcept frame
// (nanobind's gil_scoped_release destructor) or nanobind's catch (...) in the
// function dispatcher, and the process aborts with "terminate called ..." /
// "FATAL: exception not rethrown".
//
// So a thread coming back from libfemrt once the interpreter has begun to
// exit never asks for the GIL: it blocks forever (as CPython 3.14 does
// itself), and the process exits around it. "Has begun to exit" must be
// known, race-free, before the thread asks: beginExit, an atexit callback
// (Py_FinalizeEx runs those before it marks the runtime as finalizing), sets
// `exiting` and then, with the GIL released, waits for the threads that had
// already decided to take the GIL to get it. The exiting thread itself (an
// atexit callback that launches a kernel) is not stopped.

struct ExitState {
  std::mutex mutex;
  std::condition_variable reacquired;
  bool exiting = false;
  std::thread::id exitThread;
  /// Threads between their check of `exiting` and getting the GIL.
  int reacquiring = 0;
  /// Threads inside withoutGil.
  int inFlight = 0;
};

/// Never destroyed: daemon threads may use it during static destruction.
ExitState &exitState() {
  static ExitState *state = new ExitState;
  return *state;
}

[[noreturn]] void blockForever() {
  while (true)
    pause();
}

/// Takes the GIL back after PyEval_SaveThread (see above).
void reacquireGil(PyThreadState *saved) {
  ExitState &exit = exitState();
  {
    std::unique_lock<std::mutex> lock(exit.mutex);
    if (exit.exiting && std::this_thread::get_id() != exit.exitThread) {
      lock.unlock();
      blockForever();
    }
    ++exit.reacquiring;
  }
  PyEval_RestoreThread(saved);
  std::lock_guard<std::mutex> lock(exit.mutex);
  --exit.inFlight;
  if (--exit.reacquiring == 0)
    exit.reacquired.notify_all();
}

/// Runs `body` (a libfemrt call) without the GIL. Unlike
/// nb::gil_scoped_release, takes the GIL back through reacquireGil, and not
/// from a (noexcept) destructor.
template <typename Body>
void withoutGil(Body &&body) {
  {
    ExitState &exit = exitState();
    std::lock_guard<std::mutex> lock(exit.mutex);
    ++exit.inFlight;
  }
  PyThreadState *saved = PyEval_SaveThread();
  try {
    body();
  } catch (...) {
    reacquireGil(saved);
    throw;
  }
  reacquireGil(saved);
}

/// Whether a daemon thread other than the calling one is alive.
bool otherDaemonThreadsAlive() {
  try {
    nb::object threading =
        nb::module_::import_("sys").attr("modules").attr("get")("threading");
    if (threading.is_none())
      return false;
    nb::object current = threading.attr("current_thread")();
    for (nb::handle thread : threading.attr("enumerate")())
      if (!thread.is(current) && nb::cast<bool>(thread.attr("daemon")) &&
          nb::cast<bool>(thread.attr("is_alive")()))
        return true;
  } catch (const nb::python_error &) {
    // Finalization has begun: the answer is not worth an error.
  } catch (const nb::cast_error &) {
  }
  return false;
}

/// femc._begin_exit, registered with atexit when the module is imported.
void beginExit() {
  ExitState &exit = exitState();
  int blocked = 0;
  PyThreadState *saved = PyEval_SaveThread();
  {
    std::unique_lock<std::mutex> lock(exit.mutex);
    exit.exiting = true;
    exit.exitThread = std::this_thread::get_id();
    exit.reacquired.wait(lock, [&] { return exit.reacquiring == 0; });
    blocked = exit.inFlight;
  }
  PyEval_RestoreThread(saved);
  // Threads still inside libfemrt will block, and other daemon threads be
  // ended by the interpreter, with their references to femc objects: those
  // are not leaks of the bindings for nanobind to report at exit.
  if (blocked > 0 || otherDaemonThreadsAlive())
    nb::set_leak_warnings(false);
}

/// `value`, a Python int of any size, when it lies in [0, `most`];
/// std::nullopt otherwise (one beyond int32 was nanobind's "incompatible
/// function arguments" TypeError: the callers raise a ValueError naming it).
std::optional<int32_t> countUpTo(nb::int_ value, long long most) {
  int overflow = 0;
  long long n = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (n == -1 && PyErr_Occurred())
    throw nb::python_error();
  if (overflow || n < 0 || n > most)
    return std::nullopt;
  return static_cast<int32_t>(n);
}

/// The thread count of femc.load / femc.set_num_threads.
int32_t threadCount(const char *function, nb::int_ value) {
  if (auto n = countUpTo(value, FEMRT_MAX_THREADS))
    return *n;
  throw nb::value_error(
      (std::string(function) + ": threads is " + nb::str(value).c_str() +
       ", expected 0 (one per core) or 1 to " +
       std::to_string(FEMRT_MAX_THREADS) + " (femc.max_threads)")
          .c_str());
}

//===----------------------------------------------------------------------===//
// Contexts, modules, kernels
//===----------------------------------------------------------------------===//

/// An owned femrt_context (its thread pool).
struct Context {
  femrt_context *handle = nullptr;
  explicit Context(int32_t numThreads) {
    femrt_context_options options;
    check(femrt_context_options_init(&options));
    options.num_threads = numThreads;
    check(femrt_context_create(&options, &handle));
  }
  // Destructors keep the GIL: nothing they wait for (worker threads,
  // launches in flight, which run without the GIL) needs it, and the default
  // context is destroyed at exit, after the interpreter.
  ~Context() {
    if (handle)
      femrt_context_destroy(handle);
  }
  Context(const Context &) = delete;
  Context &operator=(const Context &) = delete;
};

/// The context shared by every module loaded without `threads=`: created on
/// first use (thread-safe static initialization), destroyed at exit.
std::shared_ptr<Context> defaultContext() {
  static std::shared_ptr<Context> context = std::make_shared<Context>(0);
  return context;
}

std::string dtypeName(uint8_t code, uint8_t bits) {
  switch (code) {
  case kDLFloat:
    return "float" + std::to_string(bits);
  case kDLInt:
    return "int" + std::to_string(bits);
  case kDLUInt:
    return "uint" + std::to_string(bits);
  case kDLBfloat:
    return "bfloat" + std::to_string(bits);
  case 6: // kDLBool
    return "bool";
  default:
    return "dtype(code=" + std::to_string(code) + ",bits=" +
           std::to_string(bits) + ")";
  }
}

std::vector<std::string> splitDims(const char *text) {
  std::vector<std::string> out;
  std::stringstream ss(text ? text : "");
  std::string item;
  while (std::getline(ss, item, ','))
    out.push_back(item);
  return out;
}

/// An owned femrt_module and the context it lives in.
struct ModuleState {
  std::shared_ptr<Context> context;
  femrt_module *handle = nullptr;
  std::string path;
  ~ModuleState() {
    if (handle)
      femrt_module_destroy(handle);
  }
};

class Kernel {
public:
  Kernel(std::shared_ptr<ModuleState> module, femrt_kernel *handle)
      : module_(std::move(module)), handle_(handle) {
    const char *text = nullptr;
    check(femrt_kernel_get_name(handle_, &text));
    name_ = text ? text : "";
    text = nullptr;
    check(femrt_kernel_get_description(handle_, &text));
    description_ = text ? text : "";
    check(femrt_kernel_get_traits(handle_, &traits_));
    int32_t n = 0;
    check(femrt_kernel_num_args(handle_, &n));
    for (int32_t i = 0; i < n; ++i) {
      const femrt_arg_info *info = nullptr;
      check(femrt_kernel_get_arg_info(handle_, i, &info));
      args_.push_back(info);
    }
  }

  const std::string &name() const { return name_; }
  const std::string &description() const { return description_; }

  // The structured facts of the kernel (kernel ABI v2), from its traits;
  // None where the library gave none or the kernel is not a FEM read.
  bool hasTraits() const { return traits_ != nullptr; }
  nb::object prior() const {
    if (!traits_ || traits_->prior < 0 ||
        traits_->prior >= int(femc::priors::allPriors().size()))
      return nb::none();
    std::string_view name = femc::priors::priorInfo(traits_->prior).name;
    return nb::str(name.data(), name.size());
  }
  nb::object layout() const {
    if (!traits_ || traits_->layout == FEMRT_LAYOUT_NONE)
      return nb::none();
    return nb::str(traits_->layout == FEMRT_LAYOUT_BHTD ? "bhtd" : "bthd");
  }
  nb::object flag(uint32_t bit) const {
    if (!traits_)
      return nb::none();
    return nb::bool_((traits_->flags & bit) != 0);
  }
  nb::object scale() const {
    if (!traits_ || !(traits_->flags & FEMRT_KERNEL_HAS_SCALE))
      return nb::none();
    return nb::float_(traits_->scale);
  }
  nb::object readNumber(double femrt_kernel_traits::*field) const {
    if (!traits_ || traits_->prior == FEMRT_PRIOR_NONE)
      return nb::none();
    return nb::float_(traits_->*field);
  }
  nb::object tiles() const {
    if (!traits_ || traits_->prior == FEMRT_PRIOR_NONE)
      return nb::none();
    nb::dict d;
    d["q"] = traits_->tile_q;
    d["k"] = traits_->tile_k;
    d["vec"] = traits_->vec;
    return d;
  }
  nb::object grid() const {
    if (!traits_)
      return nb::none();
    nb::list axes;
    for (const femrt_grid_axis &axis : traits_->grid) {
      nb::object extent = nb::none();
      if (axis.extent >= 0 && axis.extent < femc::priors::kNumExtents) {
        std::string_view name = femc::priors::kExtents[axis.extent];
        extent = nb::str(name.data(), name.size());
      }
      axes.append(nb::make_tuple(extent, axis.divisor));
    }
    return nb::tuple(axes);
  }

  nb::list args() const {
    nb::list out;
    for (const femrt_arg_info *info : args_) {
      nb::dict d;
      d["name"] = info->name;
      d["role"] = info->role == FEMRT_ARG_OUTPUT ? "output" : "input";
      d["dtype"] = dtypeName(info->dtype_code, info->dtype_bits);
      nb::list dims, shape;
      for (const std::string &s : splitDims(info->dim_names))
        dims.append(nb::str(s.c_str()));
      for (int32_t r = 0; r < info->rank; ++r) {
        if (info->shape[r] < 0)
          shape.append(nb::none());
        else
          shape.append(nb::int_(info->shape[r]));
      }
      d["dims"] = nb::tuple(dims);
      d["shape"] = nb::tuple(shape);
      out.append(d);
    }
    return out;
  }

  /// Launches on `arrays` (inputs then outputs), which are borrowed, never
  /// copied. Outputs must be writable.
  void launch(const std::vector<nb::handle> &arrays, int32_t maxThreads) const;

  /// Allocates the outputs (numpy) from the inputs' bound dimensions,
  /// launches, and returns the output (or a tuple of them).
  nb::object run(nb::args positional, nb::kwargs inputs) const;

  size_t numArgs() const { return args_.size(); }

  /// "q, k, v, beta_raw, lam, gate, out".
  std::string argList() const {
    std::string text;
    for (size_t i = 0; i < args_.size(); ++i)
      text += std::string(i ? ", " : "") + args_[i]->name;
    return text;
  }

  /// "launch(q, k, v, beta_raw, lam, gate, out)".
  std::string callForm() const { return "launch(" + argList() + ")"; }

  std::string repr() const {
    return "<femc.Kernel " + name_ + "(" + argList() + ")>";
  }

private:
  std::shared_ptr<ModuleState> module_;
  femrt_kernel *handle_;
  std::string name_, description_;
  const femrt_kernel_traits *traits_ = nullptr; // owned by the module
  std::vector<const femrt_arg_info *> args_;
};

/// One imported array: read-only views for inputs, writable for outputs.
struct Imported {
  std::optional<nb::ndarray<nb::ro>> input;
  std::optional<nb::ndarray<>> output;
  DLTensor tensor{};
  /// A torch tensor imported as an output: its version counter is bumped
  /// after the launch writes it (see bumpTorchVersions).
  nb::handle torchOutput;
};

std::string typeName(nb::handle object) {
  return nb::type_name(object.type()).c_str();
}

/// Why an object with a numpy-style `dtype` could not be imported without
/// a copy, e.g. "of dtype '>f4' (float32 in non-native byte order), which
/// DLPack and the buffer protocol cannot pass without a copy"; empty when
/// the object has no such dtype (then it is no array at all).
std::string unimportableDtype(nb::handle object) {
  if (!nb::hasattr(object, "dtype"))
    return "";
  try {
    nb::object dtype = object.attr("dtype");
    if (!nb::hasattr(dtype, "str") || !nb::hasattr(dtype, "name"))
      return "";
    std::string str = nb::cast<std::string>(nb::str(dtype.attr("str")));
    std::string name = nb::cast<std::string>(nb::str(dtype.attr("name")));
    bool nonNative = nb::hasattr(dtype, "isnative") &&
                     !nb::cast<bool>(dtype.attr("isnative"));
    if (nonNative)
      return "of dtype '" + str + "' (" + name +
             " in non-native byte order), which DLPack and the buffer "
             "protocol cannot pass without a copy";
    return "of dtype " + name + " ('" + str +
           "'), which DLPack cannot describe";
  } catch (const nb::python_error &) {
    return "";
  } catch (const nb::cast_error &) {
    return "";
  }
}

/// Why `object`, which is no array nanobind can import, fails as a DLPack
/// producer: a capsule already consumed, or a __dlpack__ that raises or
/// returns something else (its own error was hidden behind "expected an
/// array supporting DLPack"); empty when there is nothing more to say.
std::string dlpackProblem(nb::handle object) {
  if (PyCapsule_CheckExact(object.ptr())) {
    const char *name = PyCapsule_GetName(object.ptr());
    if (name && std::strcmp(name, "used_dltensor") == 0)
      return "a DLPack capsule that was already consumed (a capsule passes "
             "its array once; pass the array itself)";
    if (!name || (std::strcmp(name, "dltensor") != 0 &&
                  std::strcmp(name, "dltensor_versioned") != 0))
      return std::string("a PyCapsule named ") +
             (name ? "'" + std::string(name) + "'" : "NULL") +
             ", not a DLPack capsule ('dltensor')";
    return "";
  }
  if (!nb::hasattr(object, "__dlpack__"))
    return "";
  try {
    nb::object capsule = object.attr("__dlpack__")();
    if (!PyCapsule_CheckExact(capsule.ptr()))
      return "an object whose __dlpack__() returned " + typeName(capsule) +
             ", not a DLPack capsule";
  } catch (nb::python_error &e) {
    std::string type = nb::type_name(e.type()).c_str();
    std::string value = nb::str(e.value()).c_str();
    return "an object whose __dlpack__() raised " + type +
           (value.empty() ? "" : ": " + value);
  }
  return "";
}

/// The ways numpy can hold bfloat16, for the messages of a bfloat16
/// argument given anything else.
const char *kBfloat16Ways =
    "numpy has no bfloat16: pass an ml_dtypes.bfloat16 array "
    "(a.astype(ml_dtypes.bfloat16); pip install ml_dtypes), a numpy uint16 "
    "array of the bit patterns (femc.bfloat16_bits(a), rounded to nearest "
    "even; femc.bfloat16_values(bits) reads them back as float32) or a "
    "torch.bfloat16 tensor";

/// "; the kernel takes float32 (convert it with ...)" for argument `info`.
std::string expectedDtype(const femrt_arg_info *info) {
  if (!info)
    return "";
  std::string name = dtypeName(info->dtype_code, info->dtype_bits);
  std::string text = "; the kernel takes " + name;
  if (info->dtype_code != kDLBfloat) // numpy has no bfloat16
    text += " (convert it with numpy.ascontiguousarray(a, dtype=numpy." +
            name + "))";
  else
    text += std::string(" (") + kBfloat16Ways + ")";
  return text;
}

/// `sys.modules[module].<name>` when that module is imported (looked up,
/// never imported: an object of the class exists only once it is).
nb::object importedClass(const char *module, const char *name) {
  nb::object found =
      nb::module_::import_("sys").attr("modules").attr("get")(module);
  if (found.is_none() || !nb::hasattr(found, name))
    return nb::none();
  return found.attr(name);
}

bool isInstanceOf(nb::handle object, const char *module, const char *name) {
  nb::object cls = importedClass(module, name);
  if (cls.is_none())
    return false;
  int is = PyObject_IsInstance(object.ptr(), cls.ptr());
  if (is < 0)
    throw nb::python_error();
  return is == 1;
}

/// Whether `object` is a torch tensor (one with torch's methods; found
/// without importing torch).
bool isTorchTensor(nb::handle object) {
  return isInstanceOf(object, "torch", "Tensor");
}

bool isBfloat16(const femrt_arg_info *info) {
  return info && info->dtype_code == kDLBfloat && info->dtype_bits == 16;
}

/// numpy has no bfloat16; the ml_dtypes package adds one (JAX's arrays
/// convert to it), whose arrays DLPack cannot describe. For a bfloat16
/// argument such an array is passed as its uint16 view, the same bits
/// (was: "ndarray of dtype bfloat16 ('<V2'), which DLPack cannot
/// describe"); none for anything else.
/// A numpy uint16 array for a bfloat16 argument is taken as the bit
/// patterns (what fem-run's '<u2' files hold, femc.bfloat16_bits makes):
/// numpy alone has no other way to hold bfloat16 (was: "expected dtype
/// bfloat16, got uint16", leaving torch as the only way without ml_dtypes).
nb::object bfloat16Bits(const femrt_arg_info *info, nb::handle object) {
  if (!isBfloat16(info) || !isInstanceOf(object, "numpy", "ndarray"))
    return nb::none();
  nb::object dtype = object.attr("dtype");
  std::string name = nb::cast<std::string>(nb::str(dtype.attr("name")));
  if ((name != "bfloat16" && name != "uint16") ||
      nb::cast<int64_t>(dtype.attr("itemsize")) != 2)
    return nb::none();
  if (name == "uint16")
    return nb::borrow(object);
  return object.attr("view")(nb::module_::import_("numpy").attr("uint16"));
}

/// Whether `object` is a numpy uint16 array (bfloat16 bit patterns for a
/// bfloat16 argument).
bool isNumpyUint16(nb::handle object) {
  return isInstanceOf(object, "numpy", "ndarray") &&
         nb::cast<std::string>(nb::str(object.attr("dtype").attr("name"))) ==
             "uint16";
}

/// Refuses arrays whose meaning DLPack and the buffer protocol do not
/// carry: a masked array (numpy.ma, torch.masked) passes its data without
/// the mask, so the kernel would read masked elements as values (a silent
/// wrong answer), or write an output whose mask then hides the result;
/// and a torch output that requires grad while grad mode is on, which the
/// kernel would write outside autograd (torch refuses such in-place writes
/// itself).
void refuseUnimportableMeaning(const std::string &what, bool isOutput,
                               nb::handle object) {
  std::string use = isOutput ? "the kernel would write every element and "
                               "leave the mask as it is; pass a plain array"
                             : "the kernel would read every element, masked "
                               "ones included, as values; pass";
  if (isInstanceOf(object, "numpy.ma", "MaskedArray"))
    throw nb::type_error(
        (what +
         ": a numpy masked array (numpy.ma.MaskedArray), whose mask "
         "DLPack and the buffer protocol do not pass: " +
         use +
         (isOutput ? " (numpy.ma.getdata(a) writes its data)"
                   : " a.filled(value) (or numpy.ma.getdata(a) to use the "
                     "data as it is), and mask padded keys with a kernel's "
                     "key mask argument"))
            .c_str());
  if (isInstanceOf(object, "torch.masked", "MaskedTensor"))
    throw nb::type_error(
        (what +
         ": a torch MaskedTensor, whose mask DLPack does not pass: " + use +
         (isOutput ? " (t.get_data() writes its data)"
                   : " t.to_tensor(value) (or t.get_data() to use the data "
                     "as it is), and mask padded keys with a kernel's key "
                     "mask argument"))
            .c_str());
  if (isOutput && isTorchTensor(object) &&
      nb::cast<bool>(object.attr("requires_grad"))) {
    nb::object torch = nb::module_::import_("torch");
    if (nb::cast<bool>(torch.attr("is_grad_enabled")()))
      throw nb::type_error(
          (what + ": a torch tensor that requires grad, which the kernel "
                  "would write outside autograd (no gradient flows through "
                  "a launch); write it under torch.no_grad(), pass "
                  "out.detach(), or use the PyTorch op "
                  "(examples/torch_op/fem_op.py) for a result in the graph")
              .c_str());
  }
}

/// Tells autograd that the launch wrote the torch outputs in place, as
/// torch's own in-place ops do: a tensor saved for a backward and then
/// overwritten by a kernel makes that backward raise "one of the variables
/// needed for gradient computation has been modified by an inplace
/// operation" instead of computing a gradient from the new values.
void bumpTorchVersions(const std::vector<Imported> &imported) {
  nb::list tensors;
  for (const Imported &i : imported)
    if (i.torchOutput)
      tensors.append(i.torchOutput);
  if (tensors.size() == 0)
    return;
  nb::object graph = importedClass("torch.autograd", "graph");
  if (!graph.is_none() && nb::hasattr(graph, "increment_version"))
    graph.attr("increment_version")(nb::tuple(tensors));
  else
    nb::module_::import_("torch").attr("_C").attr("_increment_version")(
        nb::tuple(tensors));
}

template <typename Array> void fillTensor(const Array &a, DLTensor &t) {
  t.data = a.data_handle();
  t.byte_offset = a.byte_offset();
  t.device.device_type = static_cast<DLDeviceType>(a.device_type());
  t.device.device_id = a.device_id();
  t.ndim = static_cast<int32_t>(a.ndim());
  t.dtype.code = a.dtype().code;
  t.dtype.bits = a.dtype().bits;
  t.dtype.lanes = a.dtype().lanes;
  t.shape = const_cast<int64_t *>(a.shape_ptr());
  t.strides = const_cast<int64_t *>(a.stride_ptr());
}

/// A float array (float32, float16, float64) for a bfloat16 argument:
/// libfemrt's "expected dtype bfloat16, got float32", with the ways numpy
/// users have to pass bfloat16.
void refuseFloatForBfloat16(const std::string &what, const femrt_arg_info *info,
                            const DLTensor &t) {
  if (!isBfloat16(info) || t.dtype.code != kDLFloat || t.dtype.lanes != 1)
    return;
  throw FemrtError{"FEMRT_ERROR_INVALID_ARGUMENT",
                   what + ": expected dtype bfloat16, got " +
                       dtypeName(t.dtype.code, t.dtype.bits) + "; " +
                       kBfloat16Ways};
}

/// Imports argument `index` of the kernel (without copying): a read-only
/// view for inputs (and surplus arguments), a writable one for outputs.
/// Raises TypeError naming the argument when `object` is not an array.
void importArray(const std::string &kernel, const femrt_arg_info *info,
                 size_t index, nb::handle object, Imported &out) {
  std::string what = "kernel '" + kernel + "': argument " +
                     (info ? "'" + std::string(info->name) + "' " : "") +
                     "(#" + std::to_string(index) + ")";
  bool isOutput = info && info->role == FEMRT_ARG_OUTPUT;
  // torch's lazy negation and conjugation views (torch._neg_view,
  // x.conj().imag) carry a bit DLPack does not: imported as they are, the
  // kernel would read the values without the negation.
  for (const char *bit : {"is_neg", "is_conj"})
    if (nb::hasattr(object, bit) && nb::hasattr(object, "resolve_neg")) {
      nb::object set = object.attr(bit)();
      if (nb::isinstance<nb::bool_>(set) && nb::cast<bool>(set))
        throw nb::type_error(
            (what + ": a torch tensor with its " +
             (std::string(bit) == "is_neg" ? "negative" : "conjugate") +
             " bit set (a lazy view such as torch._neg_view(x) or "
             "x.conj().imag), which DLPack passes without it; pass " +
             (std::string(bit) == "is_neg" ? "x.resolve_neg()"
                                           : "x.resolve_conj()") +
             " instead")
                .c_str());
    }
  refuseUnimportableMeaning(what, isOutput, object);
  // The imported ndarray keeps the view (and through it the array) alive.
  nb::object bits = bfloat16Bits(info, object);
  if (!bits.is_none())
    object = bits;
  if (isOutput) {
    nb::ndarray<> array;
    if (nb::try_cast(object, array, /*convert=*/false)) {
      out.output = std::move(array);
      fillTensor(*out.output, out.tensor);
      if (!bits.is_none())
        out.tensor.dtype.code = kDLBfloat;
      refuseFloatForBfloat16(what, info, out.tensor);
      if (isTorchTensor(object))
        out.torchOutput = object;
      return;
    }
  }
  nb::ndarray<nb::ro> array;
  if (!nb::try_cast(object, array, /*convert=*/false)) {
    // An array whose dtype DLPack cannot describe (a non-native byte order,
    // object, long double, strings, ...) is an array all the same: say
    // what is wrong with it rather than that it is no array.
    std::string problem = unimportableDtype(object);
    if (!problem.empty())
      throw nb::type_error(
          (what + ": " + typeName(object) + " " + problem +
           expectedDtype(info))
              .c_str());
    std::string dlpack = dlpackProblem(object);
    throw nb::type_error(
        (what + ": expected an array supporting DLPack or the buffer "
                "protocol (numpy.ndarray, torch.Tensor, ...), got " +
         (dlpack.empty() ? typeName(object) : dlpack))
            .c_str());
  }
  if (isOutput)
    throw FemrtError{"FEMRT_ERROR_INVALID_ARGUMENT",
                     what + " is an output but the array is read-only"};
  out.input = std::move(array);
  fillTensor(*out.input, out.tensor);
  if (!bits.is_none())
    out.tensor.dtype.code = kDLBfloat;
  refuseFloatForBfloat16(what, info, out.tensor);
  // A bool array where the kernel takes uint8 (a key mask): the same bytes,
  // 0 or 1, so pass it as uint8 rather than making the caller convert.
  if (info && info->dtype_code == kDLUInt && info->dtype_bits == 8 &&
      out.tensor.dtype.code == 6 /* kDLBool */ && out.tensor.dtype.bits == 8)
    out.tensor.dtype.code = kDLUInt;
}

void Kernel::launch(const std::vector<nb::handle> &arrays,
                    int32_t maxThreads) const {
  std::vector<Imported> imported(arrays.size());
  std::vector<const DLTensor *> tensors(arrays.size());
  for (size_t i = 0; i < arrays.size(); ++i) {
    importArray(name_, i < args_.size() ? args_[i] : nullptr, i, arrays[i],
                imported[i]);
    tensors[i] = &imported[i].tensor;
  }
  femrt_launch_options options;
  check(femrt_launch_options_init(&options));
  options.max_threads = maxThreads;
  femrt_status status;
  std::string message;
  // The arrays stay alive (imported[] holds references) while the kernel
  // runs without the GIL.
  withoutGil([&] {
    status = femrt_kernel_launch(handle_, tensors.data(),
                                 static_cast<int32_t>(tensors.size()),
                                 &options);
    if (status != FEMRT_OK)
      message = femrt_last_error(); // thread-local: read it on this thread
  });
  if (status != FEMRT_OK)
    throw FemrtError{femrt_status_string(status), message};
  bumpTorchVersions(imported);
}

nb::object Kernel::run(nb::args positional, nb::kwargs kwargs) const {
  // The inputs by name, in the kernel's order.
  std::vector<nb::handle> arrays;
  std::string inputNames;
  for (const femrt_arg_info *info : args_)
    if (info->role == FEMRT_ARG_INPUT)
      inputNames += std::string(inputNames.empty() ? "" : ", ") + info->name;
  // nanobind's own error for positional arrays was "run(): incompatible
  // function arguments", which names neither the form nor the inputs.
  if (positional.size() > 0) {
    std::string form;
    for (const femrt_arg_info *info : args_)
      if (info->role == FEMRT_ARG_INPUT)
        form += std::string(form.empty() ? "" : ", ") + info->name + "=...";
    throw nb::type_error(
        ("kernel '" + name_ + "': run() takes the inputs by name, run(" + form +
         "), got " + std::to_string(positional.size()) +
         " positional argument" + (positional.size() == 1 ? "" : "s") +
         "; to pass every array in order, outputs included, call "
         "kernel(*arrays) or kernel.launch(*arrays)")
            .c_str());
  }
  for (auto [key, value] : kwargs) {
    // A name that is no UTF-8 (a lone surrogate) failed nb::cast with a
    // bare "std::bad_cast".
    std::string name;
    bool known = false;
    if (nb::try_cast(key, name))
      for (const femrt_arg_info *info : args_)
        known |= info->role == FEMRT_ARG_INPUT && name == info->name;
    if (!known)
      throw nb::type_error(("kernel '" + name_ + "' has no input called " +
                            nb::repr(key).c_str() + " (inputs: " + inputNames +
                            ")")
                               .c_str());
  }
  // Extents bound by the inputs, by dimension name. Where two inputs
  // disagree the outputs get 0 there and libfemrt names the mismatch (they
  // were allocated from the first input: a zero-size q of T = 2^40 next to
  // k of T = 8 was a 64 TiB MemoryError, not the mismatch).
  std::map<std::string, int64_t> bound;
  std::set<std::string> disagree;
  bool inputRankMismatch = false;
  // A scan kernel's carried state may be left out: the empty (all-zero)
  // state, allocated once the other inputs bound B, H and dv.
  int emptyState = -1;
  // bfloat16 outputs are numpy uint16 arrays of bit patterns when every
  // bfloat16 input was given as one, else ml_dtypes.bfloat16 arrays.
  bool bfloat16Inputs = false, allBfloat16InputsBits = true;
  nb::module_ numpy = nb::module_::import_("numpy");
  for (size_t i = 0; i < args_.size(); ++i) {
    const femrt_arg_info *info = args_[i];
    if (info->role != FEMRT_ARG_INPUT)
      continue;
    // state=None is the empty state too (was: "expected an array ...,
    // got NoneType").
    if (std::string(info->name) == "state" &&
        (!kwargs.contains(info->name) || kwargs[info->name].is_none())) {
      emptyState = static_cast<int>(arrays.size());
      arrays.push_back(nb::none());
      continue;
    }
    if (!kwargs.contains(info->name))
      throw nb::type_error(("kernel '" + name_ + "': missing input '" +
                            info->name + "' (inputs: " + inputNames + ")")
                               .c_str());
    nb::object object = kwargs[info->name]; // the dict keeps it alive
    arrays.push_back(object);
    if (isBfloat16(info)) {
      bfloat16Inputs = true;
      allBfloat16InputsBits = allBfloat16InputsBits && isNumpyUint16(object);
    }
    Imported probe;
    importArray(name_, info, i, object, probe);
    const DLTensor &t = probe.tensor;
    if (t.ndim != info->rank) {
      inputRankMismatch = true;
      continue;
    }
    std::vector<std::string> dims = splitDims(info->dim_names);
    for (int32_t d = 0; d < t.ndim && d < static_cast<int32_t>(dims.size());
         ++d) {
      auto [it, fresh] = bound.emplace(dims[d], t.shape[d]);
      if (!fresh && it->second != t.shape[d])
        disagree.insert(dims[d]);
    }
  }
  // Allocate the outputs (and an empty state) as numpy arrays.
  std::vector<nb::object> outputs;
  nb::object zeros;
  for (size_t i = 0; i < args_.size(); ++i) {
    const femrt_arg_info *info = args_[i];
    bool makeState = info->role == FEMRT_ARG_INPUT && emptyState >= 0 &&
                     std::string(info->name) == "state";
    if (info->role != FEMRT_ARG_OUTPUT && !makeState)
      continue;
    std::vector<std::string> dims = splitDims(info->dim_names);
    nb::list shape;
    for (int32_t d = 0; d < info->rank; ++d) {
      std::string dim = d < static_cast<int32_t>(dims.size())
                            ? dims[d]
                            : "#" + std::to_string(d);
      auto it = bound.find(dim);
      if (disagree.count(dim)) {
        shape.append(nb::int_(0)); // libfemrt names the inputs' mismatch
      } else if (it != bound.end()) {
        shape.append(nb::int_(it->second));
      } else if (info->shape[d] >= 0) {
        shape.append(nb::int_(info->shape[d]));
      } else if (inputRankMismatch) {
        // An input has the wrong rank: let libfemrt name it.
        shape.append(nb::int_(0));
      } else {
        throw FemrtError{
            "FEMRT_ERROR_SHAPE_MISMATCH",
            "kernel '" + name_ + "': cannot allocate output '" + info->name +
                "': no input binds its dimension " + std::to_string(d) +
                " (" + dim + "); use launch() with a preallocated output"};
      }
    }
    nb::object dtype =
        nb::str(dtypeName(info->dtype_code, info->dtype_bits).c_str());
    if (isBfloat16(info) && bfloat16Inputs && allBfloat16InputsBits) {
      dtype = numpy.attr("uint16"); // the bit patterns, as the inputs
    } else if (isBfloat16(info)) {
      // numpy.empty(..., dtype="bfloat16") raised numpy's bare "data type
      // 'bfloat16' not understood".
      try {
        dtype = nb::module_::import_("ml_dtypes").attr("bfloat16");
      } catch (nb::python_error &) {
        throw nb::type_error(
            ("kernel '" + name_ + "': run() cannot allocate output '" +
             info->name +
             "' of dtype bfloat16: numpy has no bfloat16 without the "
             "ml_dtypes package (pip install ml_dtypes); or give every "
             "bfloat16 input as a numpy uint16 array of the bit patterns "
             "(femc.bfloat16_bits(a)), and run() returns the outputs' bits "
             "as uint16 too (femc.bfloat16_values(out) reads them as "
             "float32); or preallocate the outputs, e.g. "
             "torch.empty(..., dtype=torch.bfloat16), and call "
             "kernel(*arrays)")
                .c_str());
      }
    }
    if (makeState) {
      zeros = numpy.attr("zeros")(nb::tuple(shape), "dtype"_a = dtype);
      arrays[emptyState] = zeros;
      continue;
    }
    // numpy's MemoryError ("Unable to allocate 8.00 PiB for an array with
    // shape ...") named neither the kernel nor the output, nor which input
    // bound the extents (a stride-0 view such as np.broadcast_to can
    // claim any size).
    try {
      outputs.push_back(
          numpy.attr("empty")(nb::tuple(shape), "dtype"_a = dtype));
    } catch (nb::python_error &e) {
      if (!e.matches(PyExc_MemoryError))
        throw;
      std::string bindings;
      for (auto &[dim, extent] : bound)
        bindings += (bindings.empty() ? "" : ", ") + dim + " = " +
                    std::to_string(extent);
      PyErr_SetString(
          PyExc_MemoryError,
          ("kernel '" + name_ + "': run() cannot allocate output '" +
           info->name + "' of shape " + nb::repr(nb::tuple(shape)).c_str() +
           " (" + nb::str(e.value()).c_str() + "); the inputs bind " +
           bindings +
           " (a broadcast or as_strided view can claim any extent; the "
           "kernel takes compact arrays)")
              .c_str());
      throw nb::python_error();
    }
    arrays.push_back(outputs.back());
  }
  launch(arrays, 0);
  if (outputs.size() == 1)
    return outputs[0];
  nb::list result;
  for (auto &o : outputs)
    result.append(o);
  return nb::tuple(result);
}

class Module {
public:
  explicit Module(std::shared_ptr<ModuleState> state)
      : state_(std::move(state)) {}

  std::vector<std::string> kernels() const {
    int32_t n = 0;
    check(femrt_module_num_kernels(state_->handle, &n));
    std::vector<std::string> names;
    for (int32_t i = 0; i < n; ++i) {
      femrt_kernel *k = nullptr;
      const char *name = nullptr;
      check(femrt_module_get_kernel_by_index(state_->handle, i, &k));
      check(femrt_kernel_get_name(k, &name));
      names.push_back(name);
    }
    return names;
  }

  /// module[key] / module.kernel(key): a str key; anything else (an index,
  /// bytes) was nanobind's "incompatible function arguments".
  Kernel kernelByKey(nb::handle key) const {
    std::string name;
    if (!nb::isinstance<nb::str>(key) || !nb::try_cast(key, name)) {
      std::string names;
      for (const std::string &n : kernels())
        names += (names.empty() ? "'" : ", '") + n + "'";
      throw nb::type_error(
          ("femc.Module: kernels are looked up by name, e.g. module[" +
           (names.empty() ? std::string("'name'")
                          : names.substr(0, names.find(','))) +
           "], got " + typeName(key) + " " + nb::repr(key).c_str() +
           " (kernels: " + names + ")")
              .c_str());
    }
    return kernel(name);
  }

  Kernel kernel(const std::string &name) const {
    if (name.find('\0') != std::string::npos)
      throw nb::value_error("femc.Module.kernel: the name contains a NUL "
                            "character");
    femrt_kernel *k = nullptr;
    check(femrt_module_get_kernel(state_->handle, name.c_str(), &k));
    return Kernel(state_, k);
  }

  std::pair<std::string, std::string> info() const {
    const char *producer = nullptr, *target = nullptr;
    check(femrt_module_get_info(state_->handle, &producer, &target));
    return {producer ? producer : "", target ? target : ""};
  }

  int32_t numThreads() const {
    int32_t n = 0;
    check(femrt_context_get_num_threads(state_->context->handle, &n));
    return n;
  }

  const std::string &path() const { return state_->path; }

private:
  std::shared_ptr<ModuleState> state_;
};

/// A thread count (femc.load's threads, femc.set_num_threads, a launch's
/// max_threads) as a Python int: an int or any integer with __index__ (a
/// numpy integer such as np.int64(4) was nanobind's "incompatible function
/// arguments", or "must be an int, got int64"), never a bool (True was read
/// as one thread and False as one per core, without a word; femc.compile
/// refuses a bool too).
nb::int_ countArgument(const std::string &what, nb::handle value) {
  if (PyBool_Check(value.ptr()))
    throw nb::type_error((what + " must be an int, got bool (" +
                          (value.ptr() == Py_True ? "True" : "False") +
                          "); give the number of threads")
                             .c_str());
  if (nb::isinstance<nb::int_>(value))
    return nb::borrow<nb::int_>(value);
  if (PyIndex_Check(value.ptr())) {
    PyObject *index = PyNumber_Index(value.ptr());
    if (!index)
      throw nb::python_error();
    return nb::steal<nb::int_>(index);
  }
  throw nb::type_error(
      (what + " must be an int, got " + typeName(value)).c_str());
}

Module load(nb::handle pathObject, nb::handle threadsObject) {
  // A str or os.PathLike (pathlib.Path); os.fspath raises TypeError for
  // anything else.
  nb::object fspath = nb::module_::import_("os").attr("fspath")(pathObject);
  if (!nb::isinstance<nb::str>(fspath))
    throw nb::type_error("femc.load: expected a str or os.PathLike path, got "
                         "bytes");
  std::string path = nb::cast<std::string>(fspath);
  // libfemrt takes C strings: "a.so\0b" would silently load "a.so".
  if (path.find('\0') != std::string::npos)
    throw nb::value_error("femc.load: the path contains a NUL character");
  std::optional<int32_t> threads;
  if (!threadsObject.is_none())
    threads = threadCount("femc.load",
                          countArgument("femc.load: threads", threadsObject));
  // A Python path is relative to the working directory: a name without '/'
  // that exists here is that file (checked by libfemrt like any path), not a
  // name for dlopen's library search, which never looks here.
  std::string loadPath = path;
  struct stat info;
  if (!path.empty() && path.find('/') == std::string::npos &&
      stat(path.c_str(), &info) == 0)
    loadPath = "./" + path;
  auto state = std::make_shared<ModuleState>();
  state->context = threads ? std::make_shared<Context>(*threads)
                           : defaultContext();
  state->path = path;
  femrt_status status;
  std::string message;
  withoutGil([&] {
    status = femrt_module_load_library(state->context->handle,
                                       loadPath.c_str(), &state->handle);
    if (status != FEMRT_OK)
      message = femrt_last_error();
  });
  if (status != FEMRT_OK)
    throw FemrtError{femrt_status_string(status), message};
  return Module(std::move(state));
}

void setNumThreads(nb::handle value) {
  int32_t n =
      threadCount("femc.set_num_threads",
                  countArgument("femc.set_num_threads: threads", value));
  std::shared_ptr<Context> context = defaultContext();
  femrt_status status;
  std::string message;
  withoutGil([&] { // waits for launches in flight
    status = femrt_context_set_num_threads(context->handle, n);
    if (status != FEMRT_OK)
      message = femrt_last_error();
  });
  if (status != FEMRT_OK)
    throw FemrtError{femrt_status_string(status), message};
}

int32_t getNumThreads() {
  int32_t n = 0;
  check(femrt_context_get_num_threads(defaultContext()->handle, &n));
  return n;
}

/// A kernel's launch(..., max_threads=N). N is a Python int of any size:
/// a negative one, or one beyond int32 (which nanobind refused with an
/// "incompatible function arguments" TypeError), is a ValueError naming it.
void launchArgs(const Kernel &kernel, nb::args arrays, nb::kwargs options) {
  // Keywords other than max_threads (and arrays passed as one list) were
  // nanobind's "incompatible function arguments", naming no form.
  nb::object maxThreadsObject = nb::int_(0);
  for (auto [key, value] : options) {
    std::string name;
    if (!nb::try_cast(key, name) || name != "max_threads")
      throw nb::type_error(
          ("kernel '" + kernel.name() + "': launch() takes the arrays in " +
           "order, inputs then outputs, as " + kernel.callForm() +
           ", and the keyword max_threads only; got the keyword " +
           nb::repr(key).c_str() +
           " (run(name=array, ...) takes the inputs by name)")
              .c_str());
    maxThreadsObject = nb::borrow(value);
  }
  nb::int_ maxThreads = countArgument(
      "kernel '" + kernel.name() + "': max_threads", maxThreadsObject);
  if (arrays.size() == 1 && kernel.numArgs() > 1 &&
      (nb::isinstance<nb::list>(arrays[0]) ||
       nb::isinstance<nb::tuple>(arrays[0])))
    throw nb::type_error(
        ("kernel '" + kernel.name() + "': launch() takes the arrays as " +
         "separate arguments, " + kernel.callForm() + ", got one " +
         typeName(arrays[0]) + "; unpack it: launch(*arrays)")
            .c_str());
  std::optional<int32_t> n = countUpTo(maxThreads, INT32_MAX);
  if (!n)
    throw nb::value_error(
        ("kernel '" + kernel.name() + "': max_threads is " +
         std::string(nb::str(maxThreads).c_str()) +
         ", expected 0 (all of the context's threads) or a positive "
         "limit up to " +
         std::to_string(INT32_MAX))
            .c_str());
  std::vector<nb::handle> list;
  for (nb::handle a : arrays)
    list.push_back(a);
  kernel.launch(list, *n);
}

} // namespace

NB_MODULE(_femc, m) {
  m.doc() = "Python bindings of libfemrt: load femc kernel libraries and "
            "launch their kernels on DLPack arrays (see docs/python.md)";

  gErrorType = PyErr_NewExceptionWithDoc(
      "femc.Error",
      "A libfemrt call failed. str(e) is femrt_last_error(); e.status is the "
      "femrt_status name, e.g. 'FEMRT_ERROR_SHAPE_MISMATCH'.",
      PyExc_RuntimeError, nullptr);
  if (!gErrorType)
    throw nb::python_error();
  m.attr("Error") = nb::borrow(gErrorType);
  nb::register_exception_translator(translateError);

  int major = 0, minor = 0, patch = 0;
  femrt_version(&major, &minor, &patch);
  m.attr("femrt_version") = nb::make_tuple(major, minor, patch);
  m.attr("kernel_abi_version") = femrt_kernel_abi_version();
  m.attr("max_threads") = FEMRT_MAX_THREADS;

  m.def("_begin_exit", &beginExit,
        "Called by atexit: from now on, threads other than this one that "
        "come back from a libfemrt call block instead of taking the GIL "
        "while the interpreter finalizes.");
  nb::module_::import_("atexit").attr("register")(m.attr("_begin_exit"));

  nb::class_<Kernel>(m, "Kernel",
                     "A kernel of a loaded library. Call it (or launch()) "
                     "with one array per argument, outputs included.")
      .def_prop_ro("name", &Kernel::name)
      .def_prop_ro("description", &Kernel::description,
                   "For humans only; programs read the fields below.")
      .def_prop_ro("prior", &Kernel::prior,
                   "'softmax', 'linear', 'gla', 'aft' or 'ssm'; None for a "
                   "layer or a kernel that is not a FEM read.")
      .def_prop_ro(
          "causal", [](const Kernel &k) { return k.flag(FEMRT_KERNEL_CAUSAL); },
          "Whether the read is causal (its keys have the length "
          "T); None without traits.")
      .def_prop_ro("layout", &Kernel::layout, "'bthd' or 'bhtd', or None.")
      .def_prop_ro(
          "mask", [](const Kernel &k) { return k.flag(FEMRT_KERNEL_MASK); },
          "Whether the kernel takes a key-padding mask.")
      .def_prop_ro(
          "layer", [](const Kernel &k) { return k.flag(FEMRT_KERNEL_LAYER); },
          "Whether the kernel is a whole layer.")
      .def_prop_ro("scale", &Kernel::scale,
                   "The scale attribute, or None (the prior's default "
                   "1/sqrt(dk)).")
      .def_prop_ro(
          "cap",
          [](const Kernel &k) {
            return k.readNumber(&femrt_kernel_traits::cap);
          },
          "The clip of the free-energy logits (None if not a read).")
      .def_prop_ro(
          "eps",
          [](const Kernel &k) {
            return k.readNumber(&femrt_kernel_traits::eps);
          },
          "The free energy's epsilon (None if not a read).")
      .def_prop_ro("tiles", &Kernel::tiles,
                   "{'q': .., 'k': .., 'vec': ..} (#fem.tiles), or None.")
      .def_prop_ro("grid", &Kernel::grid,
                   "The workgroup grid (x, y, z), each (extent, divisor): "
                   "ceil(extent / divisor) workgroups, extent None for one.")
      .def_prop_ro("args", &Kernel::args,
                   "One dict per argument, inputs first: name, role "
                   "('input'/'output'), dtype, dims (names), shape (None "
                   "where dynamic).")
      .def("launch", &launchArgs,
           nb::sig("def launch(self, *arrays, max_threads: int = 0) -> None"),
           "Runs the kernel on the given arrays (inputs, then outputs), "
           "writing the outputs in place. No array is copied; the GIL is "
           "released while the kernel runs. max_threads limits this launch "
           "(0 = all of the context's threads).")
      .def("__call__", &launchArgs,
           nb::sig("def __call__(self, *arrays, max_threads: int = 0) -> None"),
           "Same as launch().")
      .def("run", &Kernel::run, nb::sig("def run(self, **inputs) -> object"),
           "Runs the kernel on the inputs given by name, allocating the "
           "outputs as numpy arrays; returns the output (a tuple if there "
           "are several: out, state_out for a scan kernel with a carried "
           "state, whose input 'state' may be left out or given as None: "
           "the empty, all-zero state). bfloat16 outputs are "
           "ml_dtypes.bfloat16 arrays, or numpy uint16 bit patterns when "
           "every bfloat16 input is one (femc.bfloat16_bits, "
           "femc.bfloat16_values).")
      .def("__repr__", &Kernel::repr);

  nb::class_<Module>(m, "Module", "A loaded femc kernel library.")
      .def_prop_ro("kernels", &Module::kernels, "The kernel names.")
      .def("kernel", &Module::kernelByKey,
           nb::sig("def kernel(self, name: str) -> Kernel"),
           "The kernel called name (femc.Error listing the names there are "
           "if there is none).")
      .def("__getitem__", &Module::kernelByKey,
           nb::sig("def __getitem__(self, name: str) -> Kernel"))
      .def_prop_ro("path", &Module::path)
      .def_prop_ro("producer",
                   [](const Module &mod) { return mod.info().first; })
      .def_prop_ro("target",
                   [](const Module &mod) { return mod.info().second; })
      .def_prop_ro("num_threads", &Module::numThreads,
                   "Threads of the context the module runs on.")
      .def("__repr__", [](const Module &mod) {
        return "<femc.Module '" + mod.path() + "'>";
      });

  m.def("load", &load, "path"_a, "threads"_a = nb::none(),
        nb::sig("def load(path: object, threads: int | None = None) -> "
                "Module"),
        "Loads a kernel library written by femc (NAME.so); path is a str or "
        "os.PathLike, relative to the working directory (a bare name that is "
        "no file here is searched like dlopen does). With threads=N "
        "the module gets its own thread pool of N threads (0 = one per "
        "core); otherwise it shares the default one (femc.set_num_threads).");
  m.def("set_num_threads", &setNumThreads, "n"_a,
        nb::sig("def set_num_threads(n: int) -> None"),
        "Sets the threads of the default context (0 = one per core, at most "
        "femc.max_threads). On failure the context keeps its threads.");
  m.def("get_num_threads", &getNumThreads,
        "The threads of the default context.");
  m.def(
      "_data_pointer",
      [](nb::handle array) {
        Imported imported;
        importArray("_data_pointer", nullptr, 0, array, imported);
        return reinterpret_cast<uintptr_t>(
                   static_cast<char *>(imported.tensor.data)) +
               imported.tensor.byte_offset;
      },
      "array"_a,
      "The address of the first element as a launch sees it (for tests: "
      "equal to the array's own address when nothing is copied).");
}
