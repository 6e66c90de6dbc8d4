# Installs the Python binding (bindings/python/pythread) into Python's
# module directory for the install prefix. Run by `cmake --install` when
# PT_INSTALL_PYTHON is ON (the prefix is then final), and at configure time
# with PT_PYTHON_DRY_RUN to report the directory.
#
# In: CMAKE_INSTALL_PREFIX, PT_PYTHON (the interpreter), PT_PYTHON_SITEDIR
# (empty: ask the interpreter), PT_PYTHON_PACKAGE (the package's directory).
# Out: PT_PYTHON_DESTINATION, the absolute directory (before DESTDIR).

if(PT_PYTHON_SITEDIR)
  set(pt_sitedir "${PT_PYTHON_SITEDIR}")
else()
  # The scheme the interpreter itself installs the prefix's modules with.
  # Debian's python3 has deb_system (/usr/lib/python3/dist-packages) for /usr
  # and posix_local (/usr/local/lib/python3.X/dist-packages, "local/" after
  # the base /usr) for /usr/local, the directories on its sys.path; any
  # other prefix, or another interpreter, gets posix_prefix.
  execute_process(
    COMMAND "${PT_PYTHON}" -c [=[
import os, sys, sysconfig
prefix = os.path.normpath(sys.argv[1])
schemes = sysconfig.get_scheme_names()
if prefix == "/usr" and "deb_system" in schemes:
    scheme, base = "deb_system", prefix
elif prefix == "/usr/local" and "posix_local" in schemes:
    scheme, base = "posix_local", "/usr"
else:
    scheme, base = "posix_prefix", prefix
path = sysconfig.get_path("purelib", scheme, vars={"base": base, "platbase": base})
print(os.path.relpath(path, prefix))
]=] "${CMAKE_INSTALL_PREFIX}"
    OUTPUT_VARIABLE pt_sitedir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE pt_rc)
  if(NOT pt_rc EQUAL 0 OR pt_sitedir STREQUAL "")
    message(FATAL_ERROR "${PT_PYTHON} did not name its module directory for ${CMAKE_INSTALL_PREFIX}; set PT_PYTHON_SITEDIR")
  endif()
endif()
if(IS_ABSOLUTE "${pt_sitedir}")
  set(PT_PYTHON_DESTINATION "${pt_sitedir}")
else()
  set(PT_PYTHON_DESTINATION "${CMAKE_INSTALL_PREFIX}/${pt_sitedir}")
endif()

if(NOT PT_PYTHON_DRY_RUN)
  # file(INSTALL) puts $DESTDIR in front, as every install rule does.
  file(INSTALL DESTINATION "${PT_PYTHON_DESTINATION}" TYPE DIRECTORY FILES "${PT_PYTHON_PACKAGE}"
       FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
endif()
