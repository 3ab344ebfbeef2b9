/*
 * banned.h — functions resortd must not call (after git's banned.h).
 *
 * Each is either unbounded (strcpy, sprintf, strcat), not thread-safe (strtok, gmtime,
 * localtime), or easy to misuse; the bounded or reentrant twin is named beside it.
 * Included last by every .c file, so a use is a compile error.
 */
#ifndef RSD_BANNED_H
#define RSD_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy) /* use snprintf or memcpy with a length */
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy) /* does not terminate */
#undef sprintf
#define sprintf(...) BANNED(sprintf) /* use snprintf */
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok) /* use strtok_r or a scanner */
#undef gmtime
#define gmtime(t) BANNED(gmtime) /* use gmtime_r */
#undef localtime
#define localtime(t) BANNED(localtime) /* use localtime_r */
#undef asctime
#define asctime(t) BANNED(asctime)
#undef ctime
#define ctime(t) BANNED(ctime)
#undef atoi
#define atoi(s) BANNED(atoi) /* no error reporting: use strtol */

#endif
