# pcsweep_cc_library(NAME <name> [SRCS ...] [HDRS ...] [DEPS ...] [PUBLIC_DEPS ...])
#   Creates target pcsweep_<name> and alias pcsweep::<name>. Header-only when SRCS is empty.
# pcsweep_cc_test(NAME <name> SRCS ... DEPS ...)
#   A GoogleTest binary registered with CTest (gtest_discover_tests), labelled by folder.
# pcsweep_cc_binary(NAME <name> SRCS ... DEPS ...)
include_guard(GLOBAL)

function(pcsweep_cc_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;HDRS;DEPS;PUBLIC_DEPS" ${ARGN})
  set(target pcsweep_${A_NAME})
  if(A_SRCS)
    add_library(${target} STATIC ${A_SRCS} ${A_HDRS})
    target_include_directories(${target} PUBLIC ${PCSWEEP_SOURCE_ROOT} ${PCSWEEP_BINARY_ROOT})
    target_link_libraries(${target} PUBLIC ${A_PUBLIC_DEPS} ${A_DEPS})
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PCSWEEP_SOURCE_ROOT} ${PCSWEEP_BINARY_ROOT})
    target_link_libraries(${target} INTERFACE ${A_PUBLIC_DEPS} ${A_DEPS})
  endif()
  add_library(pcsweep::${A_NAME} ALIAS ${target})
endfunction()

function(pcsweep_cc_test)
  cmake_parse_arguments(A "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT PCSWEEP_BUILD_TESTS)
    return()
  endif()
  add_executable(${A_NAME} ${A_SRCS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gmock GTest::gtest_main)
  target_include_directories(${A_NAME} PRIVATE ${PCSWEEP_SOURCE_ROOT} ${PCSWEEP_BINARY_ROOT})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 600)
  endif()
  gtest_discover_tests(${A_NAME}
    WORKING_DIRECTORY ${PCSWEEP_SOURCE_ROOT}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS "${A_LABELS}"
               ENVIRONMENT "PCSWEEP_SOURCE_ROOT=${PCSWEEP_SOURCE_ROOT};PCSWEEP_BINARY_ROOT=${PCSWEEP_BINARY_ROOT};PCSWEEP_SHARED_ROOT=${PCSWEEP_SOURCE_ROOT}/../shared")
endfunction()

function(pcsweep_cc_binary)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS})
  target_include_directories(${A_NAME} PRIVATE ${PCSWEEP_SOURCE_ROOT} ${PCSWEEP_BINARY_ROOT})
  set_target_properties(${A_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PCSWEEP_BINARY_ROOT}/bin)
endfunction()

# Adds every immediate sub-folder of the current folder that has a CMakeLists.txt.
function(pcsweep_add_subfolders)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child ${children})
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child} AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()
