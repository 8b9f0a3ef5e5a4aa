# baypr_project_target(<target>): warnings (and -Werror when BAYPR_WARNINGS_AS_ERRORS) for
# baypr's own tests, benchmarks and examples. Never applied to the baypr interface target itself,
# so consumers' builds keep their own warning policy.
function(baypr_project_target target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
      -Wconversion -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast)
    if(BAYPR_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
    if(BAYPR_NATIVE)
      target_compile_options(${target} PRIVATE -march=native)
      if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        # GCC 12 reports (maybe-)uninitialized inside Eigen 3.4's AVX-512 packet code (pload1, plog,
        # predux, the GEMM kernels) once it is inlined into our functions, where the system-header
        # exemption no longer applies: false positives that made -Werror builds with
        # -march=native on AVX-512 machines fail.
        target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized)
      endif()
    endif()
  endif()
  target_link_libraries(${target} PRIVATE baypr::baypr)
  if(TARGET baypr_bench)
    target_link_libraries(${target} PRIVATE baypr_bench)
  endif()
endfunction()
