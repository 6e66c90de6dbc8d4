#include "pythread.h"

/* One table makes the codes, their names, texts and Python classes. */
#define PT_ERR_CASE_TEXT(name, val, exc, text)                                                     \
    case PT_##name:                                                                                \
        return text;
#define PT_ERR_CASE_NAME(name, val, exc, text)                                                     \
    case PT_##name:                                                                                \
        return "PT_" #name;
#define PT_ERR_CASE_EXC(name, val, exc, text)                                                      \
    case PT_##name:                                                                                \
        return exc;

const char *pt_strerror(int err)
{
    if (err >= 0)
        return "success";
    switch (err) {
        PT_ERRNO_MAP(PT_ERR_CASE_TEXT)
    }
    return "unknown error";
}

const char *pt_err_name(int err)
{
    if (err >= 0)
        return "PT_OK";
    switch (err) {
        PT_ERRNO_MAP(PT_ERR_CASE_NAME)
    }
    return "PT_EUNKNOWN";
}

const char *pt_err_exception(int err)
{
    if (err >= 0)
        return "";
    switch (err) {
        PT_ERRNO_MAP(PT_ERR_CASE_EXC)
    }
    return "OSError";
}
