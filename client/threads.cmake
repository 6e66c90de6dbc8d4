# In-process Thread, Timer, local and the module functions of threading.
list(APPEND PT_THREAD_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/thread.c
  ${CMAKE_CURRENT_SOURCE_DIR}/thread_module.c
  ${CMAKE_CURRENT_SOURCE_DIR}/thread_state.c
  ${CMAKE_CURRENT_SOURCE_DIR}/thread_util.c
  ${CMAKE_CURRENT_SOURCE_DIR}/timer.c
  ${CMAKE_CURRENT_SOURCE_DIR}/local.c)
