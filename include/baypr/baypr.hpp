// baypr/baypr.hpp: the umbrella header for baypr's core (needs Eigen only).
#pragma once

#include "baypr/core/errors.hpp"
#include "baypr/core/traits.hpp"
#include "baypr/version.hpp"
