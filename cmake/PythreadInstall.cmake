# Install rules: binaries, libraries, headers, pkg-config and CMake package
# files, systemd units, sysusers.d, man pages and bash completion, each in its
# usual place under the prefix (GNUInstallDirs). Included last from the top
# CMakeLists.txt, so every target it names is already defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/pythread)

# --- Libraries and headers -------------------------------------------------
set_target_properties(pythread_static PROPERTIES EXPORT_NAME pythread_static)
install(TARGETS pythread pythread_static
        EXPORT pythreadTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Every header in include/ is public (pythread.h and its siblings).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")

# --- CMake package: find_package(pythread) -> pythread::pythread ------------
install(EXPORT pythreadTargets NAMESPACE pythread:: DESTINATION ${PT_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/pythreadConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cmake/pythreadConfig.cmake
                              INSTALL_DESTINATION ${PT_CMAKE_DIR}
                              PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/pythreadConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/pythreadConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/pythreadConfigVersion.cmake
        DESTINATION ${PT_CMAKE_DIR})

# --- Files that name installed paths --------------------------------------
# pythread.pc and pythreadd.service name the prefix, which `cmake --install
# --prefix` may change after configuration: PythreadInstallTime.cmake writes
# them at install time. An absolute *DIR from GNUInstallDirs is kept as given.
set(PT_INSTALL_GEN ${PROJECT_BINARY_DIR}/install-gen)
install(CODE "
  set(PT_SRC \"${PROJECT_SOURCE_DIR}\")
  set(PT_GEN \"${PT_INSTALL_GEN}\")
  set(PT_VERSION \"${PROJECT_VERSION}\")
  set(PT_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(PT_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PT_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/PythreadInstallTime.cmake\")
")
install(FILES ${PT_INSTALL_GEN}/pythread.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- systemd ---------------------------------------------------------------
# For the distribution prefix /usr, the directories systemd's pkg-config file
# names (/lib/systemd/system on Debian 12); for any other prefix the same
# layout under it (PREFIX/lib/systemd/system, which systemd also searches for
# /usr/local). Either can be set explicitly.
set(PT_UNITDIR_DEFAULT lib/systemd/system)
set(PT_SYSUSERSDIR_DEFAULT lib/sysusers.d)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  pkg_get_variable(PT_PC_UNITDIR systemd systemdsystemunitdir)
  pkg_get_variable(PT_PC_SYSUSERSDIR systemd sysusersdir)
  if(PT_PC_UNITDIR)
    set(PT_UNITDIR_DEFAULT ${PT_PC_UNITDIR})
  endif()
  if(PT_PC_SYSUSERSDIR)
    set(PT_SYSUSERSDIR_DEFAULT ${PT_PC_SYSUSERSDIR})
  endif()
endif()
set(PT_SYSTEMD_UNITDIR ${PT_UNITDIR_DEFAULT} CACHE STRING "Where the systemd units are installed")
set(PT_SYSUSERSDIR ${PT_SYSUSERSDIR_DEFAULT} CACHE STRING "Where the sysusers.d file is installed")
install(FILES ${PROJECT_SOURCE_DIR}/systemd/pythreadd.socket ${PT_INSTALL_GEN}/pythreadd.service
        DESTINATION ${PT_SYSTEMD_UNITDIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/pythread-sysusers.conf DESTINATION ${PT_SYSUSERSDIR}
        RENAME pythread.conf)

# --- pythreadctl, man pages, bash completion ---------------------------------
# pythreadctl installs itself (cli/CMakeLists.txt, into bin/); tests/install
# checks that it lands there.
install(FILES ${PROJECT_SOURCE_DIR}/man/pythreadd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${PROJECT_SOURCE_DIR}/man/libpythread.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
# man pt_lock_acquire: a .so link to libpythread(3) per exported function,
# made at install time from the library built (PythreadManLinks.cmake).
if(TARGET pythread)
  install(CODE "
    set(PT_NM \"${CMAKE_NM}\")
    set(PT_LIB \"$<TARGET_FILE:pythread>\")
    set(PT_GEN \"${PT_INSTALL_GEN}\")
    include(\"${PROJECT_SOURCE_DIR}/cmake/PythreadManLinks.cmake\")
  ")
  install(DIRECTORY ${PT_INSTALL_GEN}/man3/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/man/pythreadctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
# The completion script lives with the cli (cli/*.bash or cli/*completion*);
# bash-completion loads it by the command's name.
file(GLOB PT_COMPLETION CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/cli/*.bash ${PROJECT_SOURCE_DIR}/cli/*completion*)
if(PT_COMPLETION)
  list(GET PT_COMPLETION 0 PT_COMPLETION)
  install(FILES ${PT_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
          RENAME pythreadctl)
endif()

# For tests/install: where each kind of file goes, relative to the prefix
# unless absolute.
if(TARGET pythreadctl)
  set(PT_HAVE_CTL 1)
else()
  set(PT_HAVE_CTL 0)
endif()
file(WRITE ${PT_INSTALL_GEN}/dirs.sh
     "libdir='${CMAKE_INSTALL_LIBDIR}'\nbindir='${CMAKE_INSTALL_BINDIR}'\n"
     "sbindir='${CMAKE_INSTALL_SBINDIR}'\nincludedir='${CMAKE_INSTALL_INCLUDEDIR}'\n"
     "mandir='${CMAKE_INSTALL_MANDIR}'\ndatadir='${CMAKE_INSTALL_DATADIR}'\n"
     "unitdir='${PT_SYSTEMD_UNITDIR}'\nsysusersdir='${PT_SYSUSERSDIR}'\n"
     "have_ctl=${PT_HAVE_CTL}\n")
