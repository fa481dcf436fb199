# Portable prebuilds: keep every glibc symbol the addon needs at or below
# ONBUS_GLIBC_MAX (2.31: Debian 11, Ubuntu 20.04 / JetPack 5, Raspberry Pi OS
# bullseye) even when the toolchain's glibc is newer (Debian 12: 2.36).
#
#  1. glibc-compat/gen-symver.mjs reads the toolchain's libc.so.6 and libm.so.6
#     and writes onbus_glibc_symver.h: a `.symver` directive for each symbol whose
#     default version is newer than the floor but that also exists at an older
#     one (pthread_*, dl*, sem_*, timer_* since 2.34). The header is
#     force-included into the addon's sources.
#  2. glibc-compat/glibc_compat.c defines, hidden, what the header cannot reach:
#     symbols referenced by members of the static libstdc++ (std::thread,
#     std::random_device) and symbols with no older version
#     (__libc_single_threaded, arc4random, stat & co. since 2.33).
#
# scripts/check-glibc.mjs reads the result and fails on any newer version.
set(ONBUS_GLIBC_MAX "2.31" CACHE STRING "Newest GLIBC_ symbol version a prebuild may need")

function(onbus_glibc_compat target)
  set(dir ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/glibc-compat)
  set(header ${CMAKE_BINARY_DIR}/glibc-compat/onbus_glibc_symver.h)
  set(libs "")
  foreach(lib libc.so.6 libm.so.6)
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=${lib}
      OUTPUT_VARIABLE path OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT IS_ABSOLUTE "${path}" OR NOT EXISTS "${path}")
      message(FATAL_ERROR "ONBUS_GLIBC_COMPAT: ${CMAKE_C_COMPILER} cannot find ${lib}")
    endif()
    list(APPEND libs ${path})
  endforeach()
  if(NOT CMAKE_OBJDUMP)
    message(FATAL_ERROR "ONBUS_GLIBC_COMPAT: no objdump for this toolchain")
  endif()
  execute_process(
    COMMAND node ${dir}/gen-symver.mjs ${CMAKE_OBJDUMP} ${ONBUS_GLIBC_MAX} ${header} ${libs}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ONBUS_GLIBC_COMPAT: gen-symver.mjs failed (${rc})")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${dir}/gen-symver.mjs)
  message(STATUS "onbus: glibc symbols pinned to GLIBC_${ONBUS_GLIBC_MAX} (${header})")

  target_sources(${target} PRIVATE ${dir}/glibc_compat.c)
  set_source_files_properties(${dir}/glibc_compat.c PROPERTIES COMPILE_DEFINITIONS ONBUS_GLIBC_COMPAT_IMPL)
  target_compile_options(${target} PRIVATE "SHELL:-include ${header}")
endfunction()
