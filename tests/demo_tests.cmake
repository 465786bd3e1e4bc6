# The paper demo's tests (included from tests/CMakeLists.txt): the shipped specs parse, and a
# reduced demo runs end to end through `pcsweep local` (label `system`; skipped when
# pcsweep-run is not part of the build).
pcsweep_cc_test(NAME demo_specs_test SRCS demo_specs_test.cc
  DEPS pcsweep::spec LABELS unit)

pcsweep_cc_test(NAME demo_system_test SRCS demo_system_test.cc
  DEPS pcsweep::child_process pcsweep::coordinator_store LABELS system TIMEOUT 900)
add_dependencies(demo_system_test pcsweep)
if(TARGET pcsweep-run)
  add_dependencies(demo_system_test pcsweep-run)
endif()
