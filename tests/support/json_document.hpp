// heddle test support: reading the JSON documents heddle and its tools write
// (traces, stack reports, heddle-stack's stack_bounds.json) with
// nlohmann-json, strictly: besides nlohmann's own checks (grammar, UTF-8),
// a repeated key in an object is an error, since a writer that repeats one
// is wrong even though most readers would silently keep the last.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace heddle::support {

using Json = nlohmann::json;

namespace detail {
// A SAX pass that only looks for repeated keys. (nlohmann's parse callback
// could too, but with one its parser rescans an array at the end of every
// object in it: quadratic, minutes for a trace of 65,536 events.)
class RepeatedKeyFinder : public nlohmann::json_sax<Json> {
 public:
  bool found = false;
  std::string repeated;  // the first repeated key, when found

  bool start_object(std::size_t) override {
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (keys_.back().insert(key).second) return true;
    found = true;
    repeated = key;
    return false;  // stops the pass
  }
  bool end_object() override {
    keys_.pop_back();
    return true;
  }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  std::vector<std::set<std::string>> keys_;  // one set per open object
};
}  // namespace detail

// Throws nlohmann::json::parse_error for bad JSON, std::runtime_error for a
// repeated key.
inline Json parse_json_document(const std::string& text) {
  detail::RepeatedKeyFinder finder;
  Json::sax_parse(text, &finder);
  if (finder.found) {
    throw std::runtime_error("JSON: the key \"" + finder.repeated + "\" is repeated in an object");
  }
  return Json::parse(text);  // throws for what stopped the first pass
}

inline Json read_json_document(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_json_document(text.str());
}

}  // namespace heddle::support
