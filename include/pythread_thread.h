/*
 * pythread_thread.h - in-process Thread, Timer, local and the module
 * functions of threading/_thread. Included by pythread.h; not used alone.
 */
#ifndef PYTHREAD_THREAD_H
#define PYTHREAD_THREAD_H

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* PYTHREAD_THREAD_H */
