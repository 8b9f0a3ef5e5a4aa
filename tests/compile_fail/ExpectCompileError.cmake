# cmake -DCOMPILER=... -DSOURCE=... -DINCLUDES="dir|dir|..." -DEXPECT="text|text|..." -P ExpectCompileError.cmake
# Passes only if SOURCE compiles with -DBAYPR_COMPILE_FAIL_CONTROL (so the include paths and the
# rest of the file are fine) and fails without it with a diagnostic containing every EXPECT text
# (so it fails for the intended reason). Prints the first lines of the diagnostic.
string(REPLACE "|" ";" _dirs "${INCLUDES}")
set(_flags -std=c++20 -fsyntax-only)
foreach(_d IN LISTS _dirs)
  list(APPEND _flags "-I${_d}")
endforeach()

execute_process(COMMAND "${COMPILER}" ${_flags} -DBAYPR_COMPILE_FAIL_CONTROL "${SOURCE}"
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "control build of ${SOURCE} failed; the test setup is broken:\n${_out}")
endif()

execute_process(COMMAND "${COMPILER}" ${_flags} "${SOURCE}"
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
if(_rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must not")
endif()
string(REPLACE "|" ";" _expected "${EXPECT}")
foreach(_e IN LISTS _expected)
  string(FIND "${_out}" "${_e}" _at)
  if(_at EQUAL -1)
    message(FATAL_ERROR "${SOURCE} failed to compile, but the diagnostic does not mention '${_e}':\n${_out}")
  endif()
endforeach()
string(SUBSTRING "${_out}" 0 1500 _head)
message(STATUS "${SOURCE} fails as expected; the diagnostic begins:\n${_head}")
