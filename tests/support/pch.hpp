// The test executables' precompiled header (tests/CMakeLists.txt, BAYPR_TEST_PCH): the headers
// nearly every test file includes, parsed once per build instead of once per file.
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "baypr/baypr.hpp"
#include "baypr/eval/episodes.hpp"
#include "baypr/io/idx.hpp"
#include "baypr/io/npy.hpp"
#include "baypr/io/pat.hpp"
#include "baypr/meta/adapt.hpp"
#include "baypr/meta/baselines.hpp"
#include "baypr/meta/conv.hpp"
#include "baypr/meta/embedding.hpp"
#include "baypr/meta/gradcheck.hpp"
#include "baypr/meta/learned_anomaly.hpp"
#include "baypr/meta/learned_prior.hpp"
#include "baypr/meta/mlp.hpp"
#include "baypr/meta/progress.hpp"
#include "baypr/meta/trainer.hpp"
#include "baypr_bench/methods.hpp"
#include "baypr_bench/textures.hpp"
#include "support/catch.hpp"
#include "support/finite_differences.hpp"
#include "support/fixtures.hpp"
#include "support/messages.hpp"
