/* Small helpers shared by the VMM's files. */
#ifndef VMM_UTIL_H
#define VMM_UTIL_H

#include <stddef.h>

/* Writes a sentence to err (if err and errlen), printf-style. */
void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
