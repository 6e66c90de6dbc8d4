# Run by `cmake --install` (from PythreadInstall.cmake): a page for each
# function libpythread exports, a .so link to libpythread(3), so that
# `man pt_lock_acquire` opens the library's page. The list is the built
# library's own dynamic symbol table, so a new public function gets its
# page with no list to keep up to date.
#
# In: PT_NM (nm), PT_LIB (libpythread.so), PT_GEN (where to write man3/).
execute_process(COMMAND "${PT_NM}" -D --defined-only "${PT_LIB}" OUTPUT_VARIABLE pt_syms
                RESULT_VARIABLE pt_rc)
if(NOT pt_rc EQUAL 0)
  message(FATAL_ERROR "cannot list the functions ${PT_LIB} exports with ${PT_NM} (status "
                      "${pt_rc}); install binutils' nm or set CMAKE_NM")
endif()
string(REGEX MATCHALL " [TW] pt_[A-Za-z0-9_]+" pt_found "${pt_syms}")
if(NOT pt_found)
  message(FATAL_ERROR "${PT_LIB} exports no pt_ function: no man page links made")
endif()
file(REMOVE_RECURSE "${PT_GEN}/man3")
file(MAKE_DIRECTORY "${PT_GEN}/man3")
foreach(pt_f IN LISTS pt_found)
  string(REGEX REPLACE "^ [TW] " "" pt_name "${pt_f}")
  file(WRITE "${PT_GEN}/man3/${pt_name}.3" ".so man3/libpythread.3\n")
endforeach()
