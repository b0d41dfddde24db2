dnl keyward_native: the optional PHP extension of the keyward PHP binding (README.md there).
dnl Build: phpize && ./configure && make && make install (needs the PHP headers: Debian
dnl php-dev). It needs no libkeyward to build or link: it calls the library that the binding
dnl loaded through FFI, whose kw_verify_headers_ex address the binding passes in.
PHP_ARG_ENABLE([keyward-native], [whether to enable keyward_native],
  [AS_HELP_STRING([--disable-keyward-native], [Do not build keyward_native])], [yes])

if test "$PHP_KEYWARD_NATIVE" != "no"; then
  dnl dladdr is in libc since glibc 2.34, in libdl before.
  AC_SEARCH_LIBS([dladdr], [dl], [], [AC_MSG_ERROR([keyward_native needs dladdr])])
  PHP_NEW_EXTENSION([keyward_native], [keyward_native.c], [$ext_shared], [], [-D_GNU_SOURCE])
fi
