//===- LayerIO.cpp - Layer configurations and parameters from files -------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "reference/LayerIO.h"

#include "support/Npz.h"
#include "support/Json.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace femc::ref {

std::optional<LayerConfig> layerConfigFromJson(const tune::Json &object,
                                               ConfigForm form,
                                               std::string &error) {
  if (!object.isObject()) {
    error = "the layer configuration must be a JSON object";
    return std::nullopt;
  }
  std::vector<std::pair<std::string, ConfigValue>> fields;
  for (const auto &[key, value] : object.object) {
    ConfigValue v;
    switch (value.kind) {
    case tune::Json::Kind::Null:
      break;
    case tune::Json::Kind::Bool:
      v = ConfigValue::ofBool(value.boolean);
      break;
    case tune::Json::Kind::Number:
      if (value.number == std::floor(value.number) &&
          std::fabs(value.number) <= 9007199254740992.0)
        v = ConfigValue::ofInteger(int64_t(value.number));
      else
        v = ConfigValue::ofFloat(value.number);
      break;
    case tune::Json::Kind::String:
      v = ConfigValue::ofString(value.string);
      break;
    case tune::Json::Kind::Array:
    case tune::Json::Kind::Object:
      error = "key '" + key + "' holds a JSON " +
              (value.isArray() ? "array" : "object") +
              "; every field of FreeEnergyMixerConfig is a number, bool, "
              "string or null";
      return std::nullopt;
    }
    fields.emplace_back(key, v);
  }
  return parseLayerConfig(fields, form, error);
}

std::optional<LayerConfig> parseLayerConfigJson(std::string_view text,
                                                ConfigForm form,
                                                std::string &error) {
  tune::Json json;
  if (!tune::parseJson(text, json, error))
    return std::nullopt;
  return layerConfigFromJson(json, form, error);
}

std::optional<LayerConfig> readLayerConfig(const std::string &path,
                                           ConfigForm form,
                                           std::string &error) {
  std::ifstream in(path);
  if (!in) {
    error = path + ": cannot open";
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::optional<LayerConfig> config =
      parseLayerConfigJson(text.str(), form, error);
  if (!config)
    error = path + ": " + error;
  return config;
}

std::optional<ParameterMap> readParameters(const std::string &path,
                                           std::string &error) {
  std::optional<std::vector<npz::Member>> members = npz::readNpz(path, error);
  if (!members)
    return std::nullopt;
  ParameterMap out;
  for (npz::Member &m : *members) {
    Tensor t;
    t.shape = m.array.shape;
    if (!npy::toFloat32(m.array, t.data, error)) {
      error = path + ": parameter '" + m.name + "': " + error;
      return std::nullopt;
    }
    out[m.name] = std::move(t);
  }
  return out;
}

} // namespace femc::ref
