// Test support for the transports over gRPC: certificates made once per test program by
// scripts/federation-certs, a server program started on a free loopback port, and a hand-made
// mutual-TLS channel for tests that speak the protocol directly.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "baypr/federated/grpc.hpp"
#include "support/catch.hpp"
#include "support/process.hpp"
#include "support/scratch_dir.hpp"

namespace baypr::test {

// The project CA with a server and sites a, b, c, d and z (z is on no server's list), a second CA
// with its own "site-a", and an expired "site-a" from the project CA.
struct Certificates {
  ScratchDir dir{"baypr-federation-certs"};
  std::filesystem::path project = dir.path / "project", other = dir.path / "other",
                        expired = dir.path / "expired";
  Certificates() {
    const std::string script = BAYPR_FEDERATION_CERTS;
    const auto run = [&](const std::string& args) {
      const std::string cmd = script + " " + args;
      if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    };
    run(project.string() + " site-a site-b site-c site-d site-z");
    run(other.string() + " site-a");
    std::filesystem::create_directories(expired);
    for (const char* f : {"ca.crt", "ca.key", "server.crt", "server.key"}) {
      std::filesystem::copy_file(project / f, expired / f);
    }
    run(expired.string() + " --expired site-a");
  }
};

inline const Certificates& certificates() {
  static const Certificates c;
  return c;
}

inline baypr::federated::TlsFiles site_tls(const std::filesystem::path& dir,
                                           const std::string& name) {
  return {dir / "ca.crt", dir / (name + ".crt"), dir / (name + ".key")};
}

// A server program (`binary`) with the project's certificates and a port file; `port` once it
// listens.
struct ServerProcess {
  std::string binary;
  ScratchDir work{"baypr-federation-run"};
  std::unique_ptr<ChildProcess> process;
  int port = 0;

  explicit ServerProcess(std::string program) : binary(std::move(program)) {}
  void start(std::vector<std::string> args) {
    using namespace std::chrono_literals;
    const std::filesystem::path port_file = work.path / "port";
    std::filesystem::remove(port_file);
    std::vector<std::string> all{"--certs", certificates().project.string(), "--port-file",
                                 port_file.string()};
    all.insert(all.end(), args.begin(), args.end());
    process = std::make_unique<ChildProcess>(binary, all, work.path / "log");
    port = std::stoi(wait_for_line(port_file, 30s));
  }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  int finish() {
    const auto status = process->wait(std::chrono::minutes(2));
    REQUIRE(status.has_value());
    return *status;
  }
  [[nodiscard]] std::string log() const { return process->log(); }
};

// SiteOptions for the named site's certificate in `dir`, against a server on loopback.
inline baypr::federated::SiteOptions site_options(const std::string& address,
                                                  const std::filesystem::path& dir,
                                                  const std::string& name,
                                                  std::chrono::milliseconds reconnect) {
  using namespace std::chrono_literals;
  baypr::federated::SiteOptions o;
  o.server = address;
  o.tls = site_tls(dir, name);
  o.server_name = "localhost";
  o.call_deadline = 30s;
  o.reconnect = reconnect;
  return o;
}

// A mutual-TLS channel with the named project site's certificate, for hand-made clients.
inline std::shared_ptr<grpc::Channel> site_channel(const std::string& address,
                                                   const std::string& name) {
  const auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const auto tls = site_tls(certificates().project, name);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = read(tls.ca);
  ssl.pem_private_key = read(tls.key);
  ssl.pem_cert_chain = read(tls.certificate);
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

}  // namespace baypr::test
