// A small downstream program: includes the umbrella header and checks a result.
#include <baypr/baypr.hpp>

#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(baypr::version_string, "0.1.0") != 0) {
    std::fprintf(stderr, "unexpected baypr version %s\n", baypr::version_string);
    return 1;
  }
  std::printf("baypr %s consumer ok\n", baypr::version_string);
  return 0;
}
