// examples/cli_args.hpp: the command-line value readers shared by the meta-training examples
// (meta_training.cpp, meta_textures.cpp). Each reads the value after argv[i], advances i, and calls
// the program's usage(why) (which exits) on a missing or malformed value. integer_list splits a
// comma-separated list, and experiment_args reads the arguments of the Fashion-MNIST programs of
// examples/experiments/.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cli {

// "3,4,5" -> {3, 4, 5}; std::stoll's exceptions for an item that is not an integer.
inline std::vector<long long> integer_list(const std::string& v) {
  std::vector<long long> out;
  std::stringstream in(v);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoll(item));
  return out;
}

// The Fashion-MNIST experiments' arguments: --<list_flag> a,b,.. (a list of integers), --seeds N,
// --episodes E (per class), --data DIR; std::invalid_argument for anything else.
struct ExperimentArgs {
  std::vector<long long> list;
  int seeds = 5;
  int per_class = 0;
  std::string data;
};

inline ExperimentArgs experiment_args(int argc, char** argv, const std::string& list_flag,
                                      ExperimentArgs defaults) {
  ExperimentArgs a = std::move(defaults);
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + flag);
    const std::string v = argv[i + 1];
    if (flag == list_flag) {
      a.list = integer_list(v);
    } else if (flag == "--seeds") {
      a.seeds = std::stoi(v);
    } else if (flag == "--episodes") {
      a.per_class = std::stoi(v);
    } else if (flag == "--data") {
      a.data = v;
    } else {
      throw std::invalid_argument("unknown argument " + flag);
    }
  }
  return a;
}

template <class Usage>
class ArgReader {
 public:
  ArgReader(int argc, char** argv, Usage usage) : argc_(argc), argv_(argv), usage_(usage) {}

  std::string value(int& i) const {
    if (i + 1 >= argc_) usage_(std::string("missing value after ") + argv_[i]);
    return argv_[++i];
  }

  int positive_int(int& i) const {
    const std::string name = argv_[i];
    const std::string v = value(i);
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > 1000000)
      usage_(name + " needs a positive integer, got '" + v + "'");
    return static_cast<int>(n);
  }

  double number(int& i, bool allow_zero) const {
    const std::string name = argv_[i];
    const std::string v = value(i);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(x) || x < 0.0 || (x == 0.0 && !allow_zero))
      usage_(name + " needs a " + (allow_zero ? "non-negative" : "positive") + " number, got '" +
             v + "'");
    return x;
  }

  std::uint64_t seed(int& i) const {
    const std::string v = value(i);
    char* end = nullptr;
    const std::uint64_t s = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') usage_("--seed needs a non-negative integer, got '" + v + "'");
    return s;
  }

 private:
  int argc_;
  char** argv_;
  Usage usage_;
};

}  // namespace cli
