// src/federation/cli.hpp (internal): the command-line parsing the federation's and the pooling's
// server programs share. Usage errors print the reason and the usage text and exit with status 2.
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "baypr/federated/grpc.hpp"

namespace baypr::federated::cli {

class Arguments {
 public:
  Arguments(const char* program, const char* usage, int argc, char** argv)
      : program_(program), usage_(usage), argc_(argc), argv_(argv) {}

  [[noreturn]] void usage(const std::string& why) const {
    std::cerr << program_ << ": " << why << "\n\n" << usage_;
    std::exit(2);
  }

  // The value after option i (advancing i).
  std::string value(int& i) const {
    if (i + 1 >= argc_) usage(std::string("missing value after ") + argv_[i]);
    return argv_[++i];
  }

  long long integer(int& i, long long lo, long long hi) const {
    const std::string name = argv_[i];
    const std::string v = value(i);
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < lo || n > hi) {
      usage(name + " needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
            "], got '" + v + "'");
    }
    return n;
  }

  double positive(int& i) const {
    const std::string name = argv_[i];
    const std::string v = value(i);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || std::isnan(x) || x <= 0.0) {
      usage(name + " needs a positive number, got '" + v + "'");
    }
    return x;
  }

  // The options both server programs share: TLS (--certs DIR, or --ca, --cert and --key),
  // --listen, --port-file and --quiet. True when argv[i] was one of them (i is then past its
  // value).
  bool server_option(int& i, TlsFiles& tls, std::string& address, std::filesystem::path& port_file,
                     bool& log) const {
    const std::string a = argv_[i];
    if (a == "--certs") {
      const std::filesystem::path dir = value(i);
      tls = {dir / "ca.crt", dir / "server.crt", dir / "server.key"};
    } else if (a == "--ca") {
      tls.ca = value(i);
    } else if (a == "--cert") {
      tls.certificate = value(i);
    } else if (a == "--key") {
      tls.key = value(i);
    } else if (a == "--listen") {
      address = value(i);
    } else if (a == "--port-file") {
      port_file = value(i);
    } else if (a == "--quiet") {
      log = false;
    } else {
      return false;
    }
    return true;
  }

  void require_tls(const TlsFiles& tls) const {
    if (tls.ca.empty() || tls.certificate.empty() || tls.key.empty()) {
      usage("needs --certs DIR (or --ca, --cert and --key)");
    }
  }

  // A comma-separated list (the allow list of sites).
  std::vector<std::string> list(int& i) const {
    std::vector<std::string> out;
    std::stringstream in(value(i));
    for (std::string item; std::getline(in, item, ',');) out.push_back(item);
    return out;
  }

 private:
  const char* program_;
  const char* usage_;
  int argc_;
  char** argv_;
};

}  // namespace baypr::federated::cli
