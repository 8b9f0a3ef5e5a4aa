#include <baypr/baypr.hpp>

#include <iostream>

int main() {
  std::cout << "baypr " << baypr::version_string << "\n";
  return 0;
}
