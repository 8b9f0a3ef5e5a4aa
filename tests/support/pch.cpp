// The object file that carries the tests' precompiled header (see pch.hpp).
