// baypr/version.hpp: the library version. CMakeLists.txt reads the version from this file, so it
// is the single place to change it.
#pragma once

#define BAYPR_VERSION_MAJOR 0
#define BAYPR_VERSION_MINOR 1
#define BAYPR_VERSION_PATCH 0
#define BAYPR_VERSION_STRING "0.1.0"

namespace baypr {
inline constexpr int version_major = BAYPR_VERSION_MAJOR;
inline constexpr int version_minor = BAYPR_VERSION_MINOR;
inline constexpr int version_patch = BAYPR_VERSION_PATCH;
inline constexpr const char* version_string = BAYPR_VERSION_STRING;
}  // namespace baypr
