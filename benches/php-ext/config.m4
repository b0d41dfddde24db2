dnl The keyward_native experiment (benches/php-ext/README.md): a PHP extension calling
dnl libkeyward through include/keyward.h. KEYWARD_ROOT: the repository; KEYWARD_LIBDIR: the
dnl directory of libkeyward.so (default $KEYWARD_ROOT/target/release).
PHP_ARG_ENABLE([keyward_native], [whether to enable keyward_native],
  [AS_HELP_STRING([--enable-keyward-native], [Enable the keyward_native experiment])], [no])

if test "$PHP_KEYWARD_NATIVE" != "no"; then
  if test -z "$KEYWARD_ROOT"; then
    AC_MSG_ERROR([set KEYWARD_ROOT to the keyward repository])
  fi
  if test -z "$KEYWARD_LIBDIR"; then
    KEYWARD_LIBDIR="$KEYWARD_ROOT/target/release"
  fi
  PHP_ADD_INCLUDE([$KEYWARD_ROOT/include])
  PHP_ADD_LIBRARY_WITH_PATH([keyward], [$KEYWARD_LIBDIR], [KEYWARD_NATIVE_SHARED_LIBADD])
  PHP_SUBST([KEYWARD_NATIVE_SHARED_LIBADD])
  PHP_NEW_EXTENSION([keyward_native], [keyward_native.c], [$ext_shared])
fi
