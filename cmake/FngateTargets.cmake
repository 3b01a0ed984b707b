# fngate_cc_library / fngate_cc_binary / fngate_cc_test: one place for warnings, the include
# root and aliases, so each folder's CMakeLists only says what it builds from what.

set(FNGATE_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(FNGATE_WERROR)
  list(APPEND FNGATE_WARNINGS -Werror)
endif()

function(fngate_apply_defaults target)
  target_compile_options(${target} PRIVATE ${FNGATE_WARNINGS})
endfunction()

# fngate_cc_library(NAME name SRCS ... DEPS ... [PUBLIC_INCLUDE dir])
function(fngate_cc_library)
  cmake_parse_arguments(ARG "" "NAME;PUBLIC_INCLUDE" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(fngate::${ARG_NAME} ALIAS ${ARG_NAME})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  if(ARG_PUBLIC_INCLUDE)
    target_include_directories(${ARG_NAME} PUBLIC ${ARG_PUBLIC_INCLUDE})
  endif()
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  fngate_apply_defaults(${ARG_NAME})
endfunction()

# fngate_cc_binary(NAME name SRCS ... DEPS ... [SERVER])
# SERVER: a long-running server process, linked with jemalloc when available.
function(fngate_cc_binary)
  cmake_parse_arguments(ARG "SERVER" "NAME;OUTPUT_NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  if(ARG_SERVER AND FNGATE_JEMALLOC_LIBRARY)
    target_link_libraries(${ARG_NAME} PRIVATE ${FNGATE_JEMALLOC_LIBRARY})
  endif()
  if(ARG_OUTPUT_NAME)
    set_target_properties(${ARG_NAME} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  fngate_apply_defaults(${ARG_NAME})
endfunction()

# fngate_cc_test(NAME name SRCS ... DEPS ... [LABELS ...] [DEFINES ...] [ARGS ...])
# ARGS: arguments of the test binary in CTest (e.g. a --gtest_filter).
# Each test binary is one CTest test (not one per case): on 2 cores, process start-up of
# per-case discovery costs more than it buys.
function(fngate_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS;DEFINES;ARGS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${ARG_NAME} PRIVATE ${ARG_DEFINES})
  fngate_apply_defaults(${ARG_NAME})
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME} ${ARG_ARGS})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
