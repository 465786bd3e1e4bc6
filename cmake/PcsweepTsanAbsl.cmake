# ThreadSanitizer builds: Debian's libabsl is not TSan-instrumented, so its Mutex, CondVar,
# Notification and BlockingCounter are invisible to TSan (false races everywhere). Every
# target created after this file is included links common/testing/tsan_absl_sync.cc, and the
# linker routes our calls of those classes' entry points through it (-Wl,--wrap), which
# reports their happens-before edges to TSan. See that file.
include_guard(GLOBAL)

get_target_property(_absl_includes absl::base INTERFACE_INCLUDE_DIRECTORIES)
find_file(_absl_options absl/base/options.h PATHS ${_absl_includes} /usr/include NO_DEFAULT_PATH)
file(STRINGS ${_absl_options} _ns_line REGEX "^#define ABSL_OPTION_INLINE_NAMESPACE_NAME ")
string(REGEX REPLACE ".*NAME[ \t]+([A-Za-z0-9_]+).*" "\\1" _absl_ns "${_ns_line}")
if(NOT _absl_ns)
  message(FATAL_ERROR "TSan build: cannot find Abseil's inline namespace in ${_absl_options}")
endif()
string(LENGTH ${_absl_ns} _ns_length)
set(_mangled_ns "${_ns_length}${_absl_ns}")

add_library(pcsweep_tsan_absl_sync OBJECT ${PCSWEEP_SOURCE_ROOT}/common/testing/tsan_absl_sync.cc)
target_link_libraries(pcsweep_tsan_absl_sync PUBLIC absl::synchronization absl::time)
target_compile_definitions(pcsweep_tsan_absl_sync PRIVATE PCSWEEP_ABSL_MANGLED_NS=${_mangled_ns})

foreach(tail
    5Mutex4LockEv 5Mutex10ReaderLockEv 5Mutex7TryLockEv 5Mutex13ReaderTryLockEv
    5Mutex6UnlockEv 5Mutex12ReaderUnlockEv 5Mutex8LockWhenERKNS0_9ConditionE
    5Mutex14ReaderLockWhenERKNS0_9ConditionE
    5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE
    5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE 5Mutex5AwaitERKNS0_9ConditionE
    5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE
    5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE 7CondVar4WaitEPNS0_5MutexE
    7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE
    7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE 12Notification6NotifyEv
    15BlockingCounter14DecrementCountEv 15BlockingCounter4WaitEv)
  add_link_options(LINKER:--wrap=_ZN4absl${_mangled_ns}${tail})
endforeach()
foreach(tail
    12Notification19WaitForNotificationEv
    12Notification30WaitForNotificationWithTimeoutENS0_8DurationE
    12Notification31WaitForNotificationWithDeadlineENS0_4TimeE)
  add_link_options(LINKER:--wrap=_ZNK4absl${_mangled_ns}${tail})
endforeach()
link_libraries(pcsweep_tsan_absl_sync)
