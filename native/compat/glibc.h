// Force-included into every translation unit (binding.gyp and CMakeLists.txt pass
// `-include native/compat/glibc.h`): keeps the addon's glibc floor where the
// prebuild can load on glibc 2.17+ (RHEL 8, Ubuntu 20.04, Debian 11, Amazon Linux 2)
// although it is built on a newer glibc. test/unit/native-glibc.test.ts holds the
// floor (GLIBC_2.17, GLIBCXX_3.4.21) and names any symbol that raises it.
//
// glibc 2.34 moved libdl and libpthread into libc.so.6 and gave the moved functions
// a new default version, GLIBC_2.34; a binary linked on 2.34+ asks for that version
// and will not load on older glibc. libc.so.6 still defines each of them at its old
// version too (GLIBC_2.2.5 on x86-64, the same function), so binding to that one
// works on both sides: on glibc < 2.34 it is found in libdl.so.2 / libpthread.so.0,
// which every Node process on such a system has loaded (libuv needs them).
//
// Only these symbols: the list is what `readelf -V` showed at GLIBC_2.34 (dlopen,
// dlsym, dlclose, dlerror from native/iptc/libiptc.cc; pthread_once and
// pthread_mutex_trylock from std::call_once and std::mutex::try_lock). A symbol
// added later at a new version fails the test instead of silently raising the floor.
#pragma once

#include <features.h>

#if defined(__GLIBC__) && defined(__x86_64__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dlclose,dlclose@GLIBC_2.2.5");
__asm__(".symver dlerror,dlerror@GLIBC_2.2.5");
__asm__(".symver pthread_once,pthread_once@GLIBC_2.2.5");
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@GLIBC_2.2.5");
#endif
