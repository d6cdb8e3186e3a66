// libstdc++ from GCC 11 on throws std::bad_array_new_length from its allocator
// headers through std::__throw_bad_array_new_length(), a function only its own
// 11+ shared library exports (GLIBCXX_3.4.29): the addon would then not load on
// the libstdc++ of RHEL 8 (GCC 8), Ubuntu 20.04 or Debian 11 (GCC 10). Defining
// it here (the same one line as libstdc++'s) leaves no such reference; everything
// else the addon takes from libstdc++ dates from GCC 5 (GLIBCXX_3.4.21, the
// C++11 std::string). test/unit/native-glibc.test.ts holds that floor.
#include <new>

#if defined(__GLIBCXX__) && defined(_GLIBCXX_RELEASE) && _GLIBCXX_RELEASE >= 11
namespace std {
void __throw_bad_array_new_length() { throw bad_array_new_length(); }
}  // namespace std
#endif
