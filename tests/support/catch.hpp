// tests/support/catch.hpp: one include for Catch2 v2 (Debian's `catch2` package) and v3.
// CMake defines BAYPR_CATCH2_V3 when it found Catch2 3.
#pragma once

#if defined(BAYPR_CATCH2_V3)
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#else
#include <catch2/catch.hpp>
#endif
