# Run by `cmake --install` (from PythreadInstall.cmake), when the prefix is
# known for certain: `cmake --install --prefix` may change it after
# configuration. Writes PT_GEN/pythread.pc and PT_GEN/pythreadd.service,
# which the install rules that follow copy into place.
#
# In: CMAKE_INSTALL_PREFIX (set by cmake --install), PT_SRC, PT_GEN,
# PT_VERSION, PT_LIBDIR, PT_INCLUDEDIR, PT_SBINDIR (GNUInstallDirs values).

# dir as given if absolute, else base/dir.
function(pt_full out dir base)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${base}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

# The .pc names its directories from ${prefix}, so pkg-config's
# --define-variable=prefix=... still works.
set(PT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
pt_full(PT_PC_LIBDIR "${PT_LIBDIR}" "\${prefix}")
pt_full(PT_PC_INCLUDEDIR "${PT_INCLUDEDIR}" "\${prefix}")
set(PROJECT_VERSION "${PT_VERSION}")
configure_file("${PT_SRC}/cmake/pythread.pc.in" "${PT_GEN}/pythread.pc" @ONLY)

# The unit in the tree starts /usr/sbin/pythreadd; the installed one starts
# the daemon where it was installed.
pt_full(PT_SBIN "${PT_SBINDIR}" "${CMAKE_INSTALL_PREFIX}")
file(READ "${PT_SRC}/systemd/pythreadd.service" unit)
string(REPLACE "ExecStart=/usr/sbin/pythreadd" "ExecStart=${PT_SBIN}/pythreadd" unit "${unit}")
file(WRITE "${PT_GEN}/pythreadd.service" "${unit}")
