<?php

/*
 * opcache.preload script for PHP-FPM (and any SAPI): loads libkeyward once per pool, in the
 * master, before the workers fork. php.ini:
 *
 *     ffi.enable = preload
 *     opcache.enable = 1
 *     opcache.preload = /path/to/vendor/keyward/keyward/preload.php
 *     opcache.preload_user = www-data          ; required when php-fpm starts as root
 *
 * It creates the FFI scope "KEYWARD" with FFI::load() (keyward.preload.h: FFI_SCOPE "KEYWARD",
 * FFI_LIB "libkeyward.so", or the KEYWARD_LIB environment variable of the master when set),
 * the scope "KEYWARD_LIBC" (getenv/setenv/dlopen, keyward-libc.preload.h), checks the
 * library's ABI version, and preloads the Keyward classes, which with ffi.enable=preload are
 * the only code allowed to use FFI at run time (Library::ffi() then uses FFI::scope()).
 * Keyward\Middleware is preloaded only when the PSR-15 interfaces can be loaded at that point
 * (require your Composer autoloader first, e.g. from your own preload script); otherwise it is
 * autoloaded per request as usual, which works too.
 *
 * Any problem stops the server from starting, with the reason on stderr.
 */

declare(strict_types=1);

(static function (): void {
    $dir = __DIR__;
    $fail = static function (string $message): never {
        throw new \RuntimeException("keyward preload ($dir/preload.php): $message");
    };

    // 1. The library, as FFI scope KEYWARD.
    $header = "$dir/keyward.preload.h";
    $lib = getenv('KEYWARD_LIB', true);
    if (is_string($lib) && $lib !== '') {
        // FFI_LIB has to name the library inside the header: write a copy naming KEYWARD_LIB.
        $text = file_get_contents($header);
        if ($text === false) {
            $fail("cannot read $header");
        }
        $text = preg_replace('~^#define FFI_LIB ".*"$~m', '#define FFI_LIB ' . json_encode($lib, JSON_UNESCAPED_SLASHES), $text, 1);
        $copy = sys_get_temp_dir() . '/keyward-preload-' . hash('sha256', (string) $text) . '.h';
        if (!is_file($copy)) {
            $tmp = $copy . '.' . getmypid();
            if (file_put_contents($tmp, $text) === false || !rename($tmp, $copy)) {
                $fail("cannot write $copy");
            }
        }
        $header = $copy;
    }
    try {
        $ffi = \FFI::load($header);
    } catch (\Throwable $e) {
        $fail("FFI::load($header) failed: {$e->getMessage()}");
    }
    if ($ffi === null) {
        $fail("FFI::load($header) failed (is libkeyward.so on the library path? set KEYWARD_LIB to its full path)");
    }
    try {
        $libc = \FFI::load("$dir/keyward-libc.preload.h");
    } catch (\Throwable $e) {
        $fail("FFI::load($dir/keyward-libc.preload.h) failed: {$e->getMessage()}");
    }
    if ($libc === null) {
        $fail("FFI::load($dir/keyward-libc.preload.h) failed");
    }

    // 2. The classes (compiled into shared memory, marked as preloaded).
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
        'Library', 'Native', 'KeyRecord', 'CreatedKey', 'Page', 'UsageStats', 'CreditBalance', 'StoreStats',
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

    // 3. The ABI version, once for the pool.
    try {
        \Keyward\Library::checkAbi($ffi, "FFI_LIB of $header");
    } catch (\Throwable $e) {
        $fail($e->getMessage());
    }
})();
