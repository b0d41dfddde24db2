<?php

declare(strict_types=1);

namespace Keyward;

use FFI;
use Keyward\Exception\LibraryException;

/**
 * Loads libkeyward through FFI, once per request (CLI: once per script).
 *
 * Where the library comes from, first match wins:
 *  1. the FFI scope "KEYWARD" that opcache.preload created with FFI::load() (see preload.php:
 *     the production set-up under PHP-FPM, loaded once per pool, nothing parsed per request);
 *  2. FFI::cdef() of the package's directive-free header copy (keyward.h) over the library
 *     named by the KEYWARD_LIB environment variable, else Library::$path when set, else
 *     "libkeyward.so.<KW_ABI_VERSION>", the SONAME `make install` installs (found by the
 *     dynamic loader: ld.so.cache after ldconfig, LD_LIBRARY_PATH).
 *
 * Either way kw_abi_version() is compared with Abi::KW_ABI_VERSION first, and a mismatch is a
 * LibraryException: the binding never talks to a library it was not written for.
 */
final class Library
{
    /** FFI scope name of the preloaded library (FFI_SCOPE of keyward.preload.h). */
    public const SCOPE = 'KEYWARD';

    /** FFI scope name of the preloaded libc declarations (see preload.php). */
    public const LIBC_SCOPE = 'KEYWARD_LIBC';

    /** Process environment variable set once the preloaded library's ABI version was checked. */
    public const ABI_CHECKED_ENV = 'KEYWARD_PHP_ABI_CHECKED';

    /** Process environment variable: pid of the process that registered kw_release_persistent at exit. */
    public const RELEASE_AT_EXIT_ENV = 'KEYWARD_PHP_RELEASE_AT_EXIT';

    /**
     * Library name used when neither KEYWARD_LIB nor Library::$path is set: the SONAME of the
     * ABI this binding was written for, as installed by `make install` (scripts/install-c.sh),
     * found by the dynamic loader. A literal (LibraryTest checks it against
     * Abi::KW_ABI_VERSION): an expression naming another class would be evaluated again in
     * every request that reads a static property of this class (Guard reads $useExtension).
     */
    public const DEFAULT_PATH = 'libkeyward.so.1';

    /**
     * The few libc functions the binding needs: the process environment (where a PHP-FPM
     * worker remembers its persistent store handle between requests: PHP's own putenv() is
     * undone at the end of each request) and dlopen (to keep the library mapped for the life
     * of the process when it was loaded with FFI::cdef, which unloads it with the FFI object)
     * and __cxa_atexit (to close stores, flushing their usage, when the process exits; glibc's
     * atexit() itself is not an exported symbol).
     * Keep keyward-libc.preload.h in sync (a test checks it).
     */
    public const LIBC_DECLARATIONS = <<<'C'
        char *getenv(const char *name);
        int setenv(const char *name, const char *value, int overwrite);
        int unsetenv(const char *name);
        void *dlopen(const char *filename, int flags);
        int __cxa_atexit(void (*func)(void *), void *arg, void *dso_handle);
        C;

    private const RTLD_NOW = 0x2;
    private const RTLD_NODELETE = 0x1000;

    /** Library path to use when KEYWARD_LIB is not set (null: DEFAULT_PATH). */
    public static ?string $path = null;

    /**
     * Whether stores verify requests through the keyward_native extension when it is loaded
     * (ext/README.md): set false to use FFI only. Read when a Store object is made.
     */
    public static bool $useExtension = true;

    private static ?FFI $ffi = null;
    private static ?FFI $libc = null;
    private static string $source = '';

    /**
     * The loaded library (loading and checking it on first use).
     *
     * @throws LibraryException when the library cannot be loaded or its ABI version differs
     */
    public static function ffi(): FFI
    {
        return self::$ffi ?? self::load();
    }

    /**
     * For the keyward_native extension: the address of $ffi's kw_verify_headers_ex, which the
     * extension checks and then calls (so a store handle goes back to the library copy that
     * issued it); 0 when the extension is not loaded, or is switched off ($useExtension, unless
     * $ignoreSwitch).
     *
     * @internal
     */
    public static function extensionVerify(FFI $ffi, bool $ignoreSwitch = false): int
    {
        if ((!self::$useExtension && !$ignoreSwitch) || !function_exists('keyward_native_verify')) {
            return 0;
        }
        return FFI::cast('uintptr_t', $ffi->kw_verify_headers_ex)->cdata;
    }

    /** Where the library in use came from ("" before the first load), for messages. */
    public static function source(): string
    {
        return self::$source;
    }

    /** The library path FFI::cdef() would load: KEYWARD_LIB, else Library::$path, else DEFAULT_PATH. */
    public static function configuredPath(): string
    {
        $env = getenv('KEYWARD_LIB', true); // the process environment only, never FastCGI parameters
        if (is_string($env) && $env !== '') {
            return $env;
        }
        return self::$path ?? self::DEFAULT_PATH;
    }

    /**
     * The preload header (keyward.preload.h) with FFI_LIB naming $libraryPath instead of
     * DEFAULT_PATH: for FFI::load() or the ffi.preload ini setting, which take a file whose
     * FFI_LIB must name the library (bin/preload-header.php writes it).
     */
    public static function preloadHeader(string $libraryPath): string
    {
        $file = dirname(__DIR__) . '/keyward.preload.h';
        $text = @file_get_contents($file);
        if ($text === false) {
            throw new LibraryException("cannot read $file");
        }
        if (str_contains($libraryPath, '"') || str_contains($libraryPath, "\n")) {
            throw new LibraryException('the library path cannot contain a double quote or a newline');
        }
        $default = '#define FFI_LIB "' . self::DEFAULT_PATH . '"';
        if (!str_contains($text, $default)) {
            throw new LibraryException("$file does not contain $default: regenerate it (bin/generate-header.php)");
        }
        return str_replace($default, '#define FFI_LIB "' . $libraryPath . '"', $text);
    }

    /** Path of the directive-free header copy given to FFI::cdef(). */
    public static function headerPath(): string
    {
        return dirname(__DIR__) . '/keyward.h';
    }

    /**
     * Loads the library now: the preloaded scope when there is one (and $path is null), else
     * FFI::cdef() of $path (default: configuredPath()). Replaces the library in use.
     *
     * @throws LibraryException
     */
    public static function load(?string $path = null): FFI
    {
        if (!extension_loaded('ffi')) {
            throw new LibraryException('keyward needs the FFI extension: install php-ffi / enable '
                . 'extension=ffi, with ffi.enable=preload (PHP-FPM, see preload.php) or ffi.enable=true');
        }
        $ffi = null;
        $source = '';
        if ($path === null) {
            try {
                $ffi = FFI::scope(self::SCOPE);
                $source = 'the FFI scope "' . self::SCOPE . '" created by opcache.preload';
            } catch (\FFI\Exception) {
                $ffi = null; // not preloaded: fall back to FFI::cdef
            }
            // A preloaded library cannot change under the process: check its ABI version in
            // the first request of each process only (remembered in the process environment,
            // which outlives requests), not in every request.
            if ($ffi !== null && self::processEnv(self::ABI_CHECKED_ENV) !== (string) Abi::KW_ABI_VERSION) {
                self::checkAbi($ffi, $source);
                self::setProcessEnv(self::ABI_CHECKED_ENV, (string) Abi::KW_ABI_VERSION);
            }
            if ($ffi !== null) {
                self::$ffi = $ffi;
                self::$source = $source;
                return $ffi;
            }
        }
        if ($ffi === null) {
            $path ??= self::configuredPath();
            $source = "'$path'";
            $declarations = @file_get_contents(self::headerPath());
            if ($declarations === false) {
                throw new LibraryException('cannot read the header copy ' . self::headerPath());
            }
            try {
                $ffi = FFI::cdef($declarations, $path);
            } catch (\FFI\Exception $e) {
                if (str_contains($e->getMessage(), 'restricted')) {
                    throw new LibraryException(self::ffiDisabledMessage(), $e);
                }
                $hint = $path === self::DEFAULT_PATH
                    ? 'install the C library (make install, then ldconfig; or LD_LIBRARY_PATH=<prefix>/lib) '
                        . 'or set KEYWARD_LIB to the full path of ' . self::DEFAULT_PATH
                    : 'set KEYWARD_LIB to the full path of ' . self::DEFAULT_PATH
                        . ' (make install puts it in <prefix>/lib; cargo build --release: target/release/libkeyward.so)';
                throw new LibraryException("cannot load libkeyward from '$path': {$e->getMessage()}; $hint", $e);
            }
            self::keepMapped($path);
        }
        self::checkAbi($ffi, $source);
        self::$ffi = $ffi;
        self::$source = $source;
        return $ffi;
    }

    /**
     * What to change when PHP refuses FFI here (the ffi.enable setting), for this SAPI: the
     * default ffi.enable=preload allows FFI only in the CLI and in code preloaded by
     * opcache.preload, so `php -S` and PHP-FPM without preload are refused.
     */
    public static function ffiDisabledMessage(): string
    {
        $setting = (string) ini_get('ffi.enable');
        $ini = php_ini_loaded_file();
        $where = $ini === false ? 'php.ini' : $ini;
        $preload = dirname(__DIR__) . '/preload.php';
        $message = "keyward cannot use PHP's FFI extension here: ffi.enable is '$setting' for the "
            . PHP_SAPI . ' SAPI. ';
        return $message . match (PHP_SAPI) {
            'cli-server' => "ffi.enable=preload allows FFI only in the CLI and in preloaded code, not in `php -S`: "
                . "start the development server with `php -d ffi.enable=1 -S ...`, or set ffi.enable = true in $where",
            'cli', 'phpdbg' => "run the script with `php -d ffi.enable=1 ...`, or set ffi.enable = true (or preload, "
                . "which allows the CLI) in $where",
            default => "in production load keyward once per pool: ffi.enable = preload with opcache.preload = $preload "
                . "(README.md, \"PHP-FPM in production\"); for development set ffi.enable = true in $where",
        };
    }

    /**
     * Refuses a library whose ABI version is not the one of the header copy (Abi::KW_ABI_VERSION).
     *
     * @throws LibraryException
     */
    public static function checkAbi(FFI $ffi, string $source): void
    {
        $version = $ffi->kw_abi_version();
        if ($version !== Abi::KW_ABI_VERSION) {
            throw new LibraryException(sprintf(
                'libkeyward from %s has ABI version %d, but this PHP binding was written for ABI version %d: '
                    . 'install the library and the keyward/keyward package from the same release',
                $source,
                $version,
                Abi::KW_ABI_VERSION,
            ));
        }
    }

    /**
     * A variable of this process's environment, as set by setProcessEnv() (not by a request's
     * FastCGI parameters, which a client could influence).
     */
    public static function processEnv(string $name): ?string
    {
        $value = getenv($name, true);
        return is_string($value) ? $value : null;
    }

    /**
     * Sets (or, with null, removes) a variable of this process's environment. Unlike PHP's
     * putenv(), the change outlives the request: a PHP-FPM worker keeps it until it exits.
     */
    public static function setProcessEnv(string $name, ?string $value): void
    {
        $libc = self::libc();
        $status = $value === null ? $libc->unsetenv($name) : $libc->setenv($name, $value, 1);
        if ($status !== 0) {
            throw new LibraryException("cannot set the process environment variable $name");
        }
    }

    /**
     * Makes the process close a store handle when it exits normally (exit() or the end of
     * main(): a PHP-FPM worker stopping gracefully or recycled by pm.max_requests, a CLI script
     * ending). When it is the store's last handle, kw_close flushes the usage counted since the
     * last background flush; without it up to one flush interval of counts is lost at every
     * worker exit.
     *
     * The C ABI has no exit hook, so this registers kw_close itself with libc's
     * __cxa_atexit(func, arg): func(arg) is kw_close(handle), the 64-bit handle passed as the
     * pointer argument (same register on the LP64 ABIs keyward supports: x86-64 and AArch64).
     * The library stays mapped until then (preloaded, or pinned by keepMapped()). A handle
     * closed earlier makes the call a harmless KW_CLOSED.
     */
    public static function closeAtExit(int $handle): void
    {
        $libc = self::libc();
        $close = $libc->cast('void (*)(void *)', self::ffi()->kw_close);
        if ($libc->__cxa_atexit($close, $libc->cast('void *', $handle), null) !== 0) {
            throw new LibraryException('cannot register the exit handler that flushes the persistent store');
        }
    }

    /**
     * Registers kw_release_persistent() to run at exit (libc __cxa_atexit), once per process: stores pinned with
     * KW_OPEN_PERSISTENT (Store::open(pin: true)) are then flushed and closed when the process
     * exits normally, instead of losing up to one flush interval of usage counts.
     */
    public static function releasePersistentAtExit(): void
    {
        $pid = (string) getmypid();
        if (self::processEnv(self::RELEASE_AT_EXIT_ENV) === $pid) {
            return;
        }
        $libc = self::libc();
        // kw_release_persistent(void) called as func(NULL): the argument is ignored.
        $release = $libc->cast('void (*)(void *)', self::ffi()->kw_release_persistent);
        if ($libc->__cxa_atexit($release, null, null) !== 0) {
            throw new LibraryException('cannot register kw_release_persistent() with atexit()');
        }
        self::setProcessEnv(self::RELEASE_AT_EXIT_ENV, $pid);
    }

    /** The libc functions of LIBC_DECLARATIONS (preloaded scope, else FFI::cdef). */
    private static function libc(): FFI
    {
        if (self::$libc !== null) {
            return self::$libc;
        }
        try {
            self::$libc = FFI::scope(self::LIBC_SCOPE);
        } catch (\FFI\Exception) {
            self::$libc = FFI::cdef(self::LIBC_DECLARATIONS);
        }
        return self::$libc;
    }

    /**
     * Keeps the library mapped until the process exits. FFI::cdef() unloads its library when the
     * FFI object is freed (at the end of every request without preloading), while the library
     * keeps a background flush thread and stores opened with KW_OPEN_PERSISTENT: unmapping it
     * under them would crash the process. dlopen(RTLD_NODELETE) pins it.
     */
    private static function keepMapped(string $path): void
    {
        $handle = self::libc()->dlopen($path, self::RTLD_NOW | self::RTLD_NODELETE);
        if ($handle === null) {
            throw new LibraryException("cannot pin libkeyward '$path' in memory (dlopen failed)");
        }
    }
}
