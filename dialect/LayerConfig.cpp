//===- LayerConfig.cpp - The fem.layer configuration attribute ------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "dialect/LayerConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

#include <set>

using namespace mlir;
using femc::ref::ConfigValue;

namespace {

std::string shapeText(ArrayRef<int64_t> shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    out += i ? ", " : "";
    out += ShapedType::isDynamic(shape[i]) ? "?" : std::to_string(shape[i]);
  }
  return out + (shape.size() == 1 ? ",)" : ")");
}

} // namespace

std::optional<femc::ref::LayerConfig>
fem::parseLayerConfig(Operation *op, DictionaryAttr dict) {
  std::vector<std::pair<std::string, ConfigValue>> fields;
  for (NamedAttribute entry : dict) {
    std::string key = entry.getName().str();
    Attribute value = entry.getValue();
    ConfigValue v;
    if (auto b = dyn_cast<BoolAttr>(value)) {
      v = ConfigValue::ofBool(b.getValue());
    } else if (auto i = dyn_cast<IntegerAttr>(value);
               i && !i.getType().isInteger(1)) {
      if (i.getValue().getSignificantBits() > 64) {
        op->emitError() << "'fem.layer': key '" << key
                        << "' does not fit in 64 bits";
        return std::nullopt;
      }
      v = ConfigValue::ofInteger(i.getValue().getSExtValue());
    } else if (auto f = dyn_cast<FloatAttr>(value)) {
      v = ConfigValue::ofFloat(f.getValueAsDouble());
    } else if (auto s = dyn_cast<StringAttr>(value)) {
      v = ConfigValue::ofString(s.getValue().str());
    } else {
      op->emitError() << "'fem.layer': key '" << key << "' holds " << value
                      << "; every FreeEnergyMixerConfig field is an integer, "
                         "a float, a bool or a string";
      return std::nullopt;
    }
    fields.emplace_back(key, v);
  }
  std::string error;
  std::optional<femc::ref::LayerConfig> config = femc::ref::parseLayerConfig(
      fields, femc::ref::ConfigForm::Resolved, error);
  if (!config)
    op->emitError() << "'fem.layer': " << error;
  return config;
}

LogicalResult fem::verifyLayerAttribute(Operation *op, Attribute value) {
  if (isa<StringAttr>(value))
    return success(); // fem-outline-mixers' marker: the layer's name
  auto dict = dyn_cast<DictionaryAttr>(value);
  if (!dict)
    return op->emitError()
           << "'fem.layer' must be a dictionary of FreeEnergyMixerConfig "
              "fields (docs/layers.md); found "
           << value;
  auto function = dyn_cast<FunctionOpInterface>(op);
  if (!function)
    return op->emitError() << "'fem.layer' belongs on a function (the "
                              "layer); found it on '"
                           << op->getName() << "'";
  std::optional<femc::ref::LayerConfig> config = parseLayerConfig(op, dict);
  if (!config)
    return failure();
  std::string error;
  std::optional<femc::ref::LayerSizes> sizes = femc::ref::resolve(
      *config, femc::ref::ConfigForm::Resolved, error);
  if (!sizes) // parseLayerConfig resolved it already
    return op->emitError() << "'fem.layer': " << error;
  if (function.isExternal())
    return success();

  // The arguments: x, the optional attention_mask, every parameter.
  std::map<std::string, std::pair<unsigned, Type>> byName;
  ArrayRef<Type> types = function.getArgumentTypes();
  for (unsigned i = 0; i < types.size(); ++i) {
    auto name = function.getArgAttrOfType<StringAttr>(i, "fem.name");
    if (!name)
      return op->emitError() << "'fem.layer': argument #" << i
                             << " has no fem.name; a layer's arguments are "
                                "x, attention_mask and its parameters, each "
                                "named by fem.name";
    byName[name.str()] = {i, types[i]};
  }
  auto tensorOf = [&](const std::string &name) -> RankedTensorType {
    auto it = byName.find(name);
    return it == byName.end() ? RankedTensorType()
                              : dyn_cast<RankedTensorType>(it->second.second);
  };
  std::set<std::string> known = {"x", "attention_mask"};
  if (!byName.count("x"))
    return op->emitError() << "'fem.layer': the layer has no argument named "
                              "'x' (fem.name = \"x\", a tensor<?x?x"
                           << sizes->D << "xf32>)";
  RankedTensorType x = tensorOf("x");
  if (!x || x.getRank() != 3 || !x.getElementType().isF32() ||
      x.getDimSize(2) != sizes->D)
    return op->emitError() << "'fem.layer': argument 'x' must be a (B, T, "
                              "n_embd = "
                           << sizes->D << ") f32 tensor; found "
                           << byName["x"].second;
  if (byName.count("attention_mask")) {
    RankedTensorType m = tensorOf("attention_mask");
    if (!m || m.getRank() != 2)
      return op->emitError() << "'fem.layer': argument 'attention_mask' must "
                                "be a (B, T) tensor; found "
                             << byName["attention_mask"].second;
  }
  for (const femc::ref::ParameterSpec &spec :
       femc::ref::layerParameters(*config, *sizes)) {
    known.insert(spec.name);
    auto it = byName.find(spec.name);
    if (it == byName.end())
      return op->emitError() << "'fem.layer': parameter '" << spec.name
                             << "' of shape " << shapeText(spec.shape)
                             << " has no argument (fem.name = \"" << spec.name
                             << "\")";
    RankedTensorType t = tensorOf(spec.name);
    if (!t || !t.getElementType().isF32() || t.getShape() != ArrayRef(spec.shape))
      return op->emitError()
             << "'fem.layer': parameter '" << spec.name << "' (argument #"
             << it->second.first << ") has type " << it->second.second
             << "; the configuration needs a f32 tensor of shape "
             << shapeText(spec.shape);
  }
  for (auto &[name, slot] : byName)
    if (!known.count(name))
      return op->emitError() << "'fem.layer': argument #" << slot.first
                             << " ('" << name
                             << "') is neither x, attention_mask nor a "
                                "parameter of this configuration";
  return success();
}

std::map<std::string, femc::ref::LayerConfig>
fem::collectLayerConfigs(ModuleOp module) {
  std::map<std::string, femc::ref::LayerConfig> out;
  module.walk([&](func::FuncOp f) {
    if (auto dict = f->getAttrOfType<DictionaryAttr>(kLayerAttrName))
      if (auto config = parseLayerConfig(f, dict))
        out[f.getSymName().str()] = *config;
  });
  return out;
}
