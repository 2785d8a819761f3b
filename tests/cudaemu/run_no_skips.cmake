# Runs a GoogleTest binary (BIN, with --gtest_filter=FILTER) on the emulated
# device. Default: fails when the binary fails, runs no test or skips any
# (on the emulated device every CUDA test must execute, so a skip, "no CUDA
# device: ...", is a failure). With EXPECT_FAIL=<text> (fault injection):
# passes only when the tests fail (exit 1, not a crash) and the output
# contains <text>.
execute_process(COMMAND ${BIN} --gtest_filter=${FILTER}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(DEFINED EXPECT_FAIL)
  if(NOT rc EQUAL 1 OR NOT out MATCHES "\\[  FAILED  \\]")
    message(FATAL_ERROR "expected failing tests (exit 1), got exit ${rc}")
  endif()
  string(FIND "${out}${err}" "${EXPECT_FAIL}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the failure does not say '${EXPECT_FAIL}'")
  endif()
  return()
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} failed (exit ${rc})")
endif()
if(out MATCHES "\\[  SKIPPED \\]")
  message(FATAL_ERROR "tests were skipped on the emulated device")
endif()
if(NOT out MATCHES "\\[  PASSED  \\] [1-9]")
  message(FATAL_ERROR "no test ran")
endif()
