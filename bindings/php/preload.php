<?php

/*
 * opcache.preload script for PHP-FPM: libkeyward and the Keyward classes are loaded once, in
 * the master, before the workers fork. php.ini (see README.md, "Use from PHP"):
 *
 *     ffi.enable = preload
 *     opcache.enable = 1
 *     opcache.preload = /path/to/vendor/keyward/keyward/preload.php
 *
 * and, when the php-fpm master runs as root (the usual systemd set-up), also
 *
 *     opcache.preload_user = www-data
 *     ffi.preload = /path/to/vendor/keyward/keyward/keyward.preload.h:/path/to/vendor/keyward/keyward/keyward-libc.preload.h
 *
 * because PHP then runs this script in a child process as opcache.preload_user, where
 * FFI::load() is refused; ffi.preload loads the headers at start-up instead.
 * keyward.preload.h names the library by its SONAME, libkeyward.so.<KW_ABI_VERSION>, which
 * the dynamic loader finds once the C library is installed (`make install` + `ldconfig`);
 * for a library elsewhere, write a copy naming its full path with
 * `php bin/preload-header.php /opt/keyward/lib/libkeyward.so.1 /etc/php/keyward.h`.
 *
 * What it does:
 *  1. unless ffi.preload already created them, creates the FFI scopes "KEYWARD" (FFI::load of
 *     keyward.preload.h: FFI_SCOPE "KEYWARD", FFI_LIB "libkeyward.so.<N>", or a copy naming the
 *     KEYWARD_LIB environment variable of the master when set) and "KEYWARD_LIBC"
 *     (keyward-libc.preload.h: getenv, setenv, dlopen, __cxa_atexit);
 *  2. checks the library's ABI version;
 *  3. preloads the Keyward classes: with ffi.enable=preload they are the only code allowed to
 *     use FFI at run time (Library::ffi() then takes FFI::scope("KEYWARD"): nothing is parsed
 *     or loaded per request). Keyward\Middleware is preloaded only when the PSR-15 and PSR-17
 *     interfaces can be loaded at that point (require your Composer autoloader before this
 *     file); otherwise it is autoloaded per request as usual, which works too.
 *
 * Any problem stops the server from starting, with the reason in its log.
 */

declare(strict_types=1);

(static function (): void {
    $dir = __DIR__;
    $fail = static function (string $message) use ($dir): never {
        throw new \RuntimeException("keyward preload ($dir/preload.php): $message");
    };

    // The classes first: Library builds the header copy below.
    spl_autoload_register(static function (string $class) use ($dir): void {
        if (str_starts_with($class, 'Keyward\\')) {
            $file = $dir . '/src/' . str_replace('\\', '/', substr($class, 8)) . '.php';
            if (is_file($file)) {
                require_once $file;
            }
        }
    });
    $classes = [
        'Abi', 'Exception\KeywardException', 'Exception\ArgumentException', 'Exception\InternalException',
        'Exception\ClosedException', 'Exception\NotFoundException', 'Exception\PolicyException',
        'Exception\StorageException', 'Exception\CredentialException', 'Exception\LibraryException',
        'Exception\UpstreamException',
        'Library', 'Native', 'KeyRecord', 'CreatedKey', 'Page', 'AuditEvent', 'AuditPage', 'UsageStats', 'CreditBalance', 'StoreStats',
        'Credits', 'ParsedKey', 'Credential', 'Verdict', 'Credentials', 'Store', 'Keyward', 'Guard',
    ];
    foreach ($classes as $class) {
        if (!class_exists("Keyward\\$class")) {
            $fail("cannot load class Keyward\\$class from $dir/src");
        }
    }
    if (interface_exists('Psr\Http\Server\MiddlewareInterface')
        && interface_exists('Psr\Http\Message\ResponseFactoryInterface')
        && interface_exists('Psr\Http\Message\StreamFactoryInterface')) {
        class_exists('Keyward\Middleware');
    }

    // The FFI scopes, unless ffi.preload created them at start-up.
    $load = static function (string $scope, string $header) use ($fail): \FFI {
        try {
            return \FFI::scope($scope);
        } catch (\FFI\Exception) {
            // not preloaded by ffi.preload: load it here
        }
        try {
            $ffi = \FFI::load($header);
        } catch (\Throwable $e) {
            $hint = str_contains($e->getMessage(), 'preload_user')
                ? '; the master runs as root with opcache.preload_user: list the headers in ffi.preload instead (see the top of this file)'
                : '';
            $fail("FFI::load($header) failed: {$e->getMessage()}$hint");
        }
        if ($ffi === null) {
            $fail("FFI::load($header) failed (is libkeyward.so." . \Keyward\Abi::KW_ABI_VERSION . " installed where the dynamic loader finds it (make install, ldconfig)? or set KEYWARD_LIB to its full path)");
        }
        return $ffi;
    };
    $header = "$dir/keyward.preload.h";
    $lib = getenv('KEYWARD_LIB', true);
    if (is_string($lib) && $lib !== '') {
        $text = \Keyward\Library::preloadHeader($lib);
        $header = sys_get_temp_dir() . '/keyward-preload-' . hash('sha256', $text) . '.h';
        if (!is_file($header)) {
            $tmp = $header . '.' . getmypid();
            if (file_put_contents($tmp, $text) === false || !rename($tmp, $header)) {
                $fail("cannot write $header");
            }
        }
    }
    $ffi = $load(\Keyward\Library::SCOPE, $header);
    $load(\Keyward\Library::LIBC_SCOPE, "$dir/keyward-libc.preload.h");

    // The ABI version, once for the pool.
    try {
        \Keyward\Library::checkAbi($ffi, 'the FFI scope "KEYWARD"');
    } catch (\Throwable $e) {
        $fail($e->getMessage());
    }
})();
