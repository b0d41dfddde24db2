<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Abi;
use Keyward\Exception\ArgumentException;
use Keyward\Exception\ClosedException;
use Keyward\Exception\CredentialException;
use Keyward\Exception\InternalException;
use Keyward\Exception\KeywardException;
use Keyward\Exception\LibraryException;
use Keyward\Exception\NotFoundException;
use Keyward\Exception\PolicyException;
use Keyward\Exception\StorageException;
use Keyward\Exception\UpstreamException;
use Keyward\Keyward;
use Keyward\Library;
use PHPUnit\Framework\TestCase;

/**
 * Loading the library (ABI check, missing library), the store-less functions, the exception
 * families and the panic boundary.
 */
final class LibraryTest extends TestCase
{
    public function testTheLoadedLibraryHasTheBindingsAbi(): void
    {
        self::assertSame(Abi::KW_ABI_VERSION, Keyward::abiVersion());
        self::assertSame('libkeyward.so.' . Abi::KW_ABI_VERSION, Library::DEFAULT_PATH, 'the SONAME of the ABI');
        $cargo = (string) file_get_contents(dirname(__DIR__, 4) . '/Cargo.toml');
        preg_match('/^version = "([^"]+)"/m', $cargo, $m);
        self::assertSame($m[1], Keyward::version());
        self::assertStringContainsString('libkeyward', Library::source());
    }

    public function testAMissingLibraryIsAClearLibraryException(): void
    {
        try {
            Library::load('/nonexistent/libkeyward.so');
            self::fail('expected a LibraryException');
        } catch (LibraryException $e) {
            self::assertSame(-1, $e->getCode());
            self::assertSame('LIBRARY', $e->getStatusName());
            self::assertStringContainsString("cannot load libkeyward from '/nonexistent/libkeyward.so'", $e->getMessage());
            self::assertStringContainsString('KEYWARD_LIB', $e->getMessage());
        }
        self::assertSame(Abi::KW_ABI_VERSION, Keyward::abiVersion(), 'the library in use is unchanged');
    }

    /** A library exporting every kw_ function, whose kw_abi_version() says 999. */
    public function testALibraryWithAnotherAbiVersionIsRefused(): void
    {
        $cc = trim((string) shell_exec('command -v cc gcc 2>/dev/null | head -n 1'));
        if ($cc === '') {
            self::markTestSkipped('no C compiler (scripts/test-php.sh installs gcc)');
        }
        preg_match_all('/\b(kw_\w+)\(/', (string) file_get_contents(Library::headerPath()), $m);
        $source = "#include <stdint.h>\nuint32_t kw_abi_version(void) { return 999; }\n";
        foreach (array_unique($m[1]) as $function) {
            if ($function !== 'kw_abi_version') {
                $source .= "void $function(void) {}\n";
            }
        }
        $dir = sys_get_temp_dir() . '/keyward-fake-' . getmypid();
        @mkdir($dir);
        file_put_contents("$dir/fake.c", $source);
        exec(sprintf('%s -shared -fPIC -o %s %s 2>&1', $cc, escapeshellarg("$dir/libfake.so"), escapeshellarg("$dir/fake.c")), $out, $status);
        self::assertSame(0, $status, implode("\n", $out));
        try {
            Library::load("$dir/libfake.so");
            self::fail('expected a LibraryException');
        } catch (LibraryException $e) {
            self::assertStringContainsString('has ABI version 999', $e->getMessage());
            self::assertStringContainsString('written for ABI version ' . Abi::KW_ABI_VERSION, $e->getMessage());
        } finally {
            @unlink("$dir/fake.c");
            @unlink("$dir/libfake.so"); // stays mapped (pinned), harmless
            @rmdir($dir);
        }
        self::assertSame(Abi::KW_ABI_VERSION, Keyward::abiVersion(), 'the library in use is unchanged');
    }

    public function testStatusAndReasonNames(): void
    {
        self::assertSame('OK', Keyward::statusName(Abi::KW_OK));
        self::assertSame('NOT_FOUND', Keyward::statusName(Abi::KW_NOT_FOUND));
        self::assertSame('UNKNOWN', Keyward::statusName(999));
        self::assertSame('no key with that id exists', Keyward::statusMessage(Abi::KW_NOT_FOUND));
        self::assertSame('unknown status', Keyward::statusMessage(999));
        self::assertSame('INSUFFICIENT_SCOPE', Keyward::reasonCode(Abi::KW_REASON_INSUFFICIENT_SCOPE));
        self::assertSame('UNKNOWN', Keyward::reasonCode(99));
        self::assertSame('the API key has been revoked', Keyward::reasonMessage(Abi::KW_REASON_REVOKED));
        self::assertSame('unknown reason', Keyward::reasonMessage(99));
        self::assertSame(200, Keyward::reasonHttpStatus(Abi::KW_REASON_VALID));
        self::assertSame(401, Keyward::reasonHttpStatus(Abi::KW_REASON_EXPIRED));
        self::assertSame(403, Keyward::reasonHttpStatus(Abi::KW_REASON_USAGE_EXCEEDED));
        self::assertSame(0, Keyward::reasonHttpStatus(99));
        self::assertSame('bad_checksum', Keyward::keyErrorName(Abi::KW_KEY_BAD_CHECKSUM));
        self::assertSame('ok', Keyward::keyErrorName(0));
        self::assertSame('unknown', Keyward::keyErrorName(99));
        $this->expectException(ArgumentException::class);
        Keyward::statusName(-1);
    }

    public function testTheVerdictBytesVerdictRecognisesAreTheLayoutOfKwVerdict(): void
    {
        // Verdict::fromBytes() tells a valid verdict without a rate limit by comparing bytes.
        $constants = (new \ReflectionClass(\Keyward\Verdict::class))->getConstants();
        $ffi = Library::ffi();
        $v = $ffi->new('kw_verdict'); // zeroed: reason 0 (VALID)
        $v->http_status = 200;
        $v->key_found = 1;
        self::assertStringStartsWith($constants['VALID_HEAD'], \FFI::string(\FFI::addr($v), \FFI::sizeof($v)));
        $v->rate_scope = 0xffffffff;
        self::assertSame("\xff\xff\xff\xff", substr(\FFI::string(\FFI::addr($v), \FFI::sizeof($v)), $constants['RATE_SCOPE_AT'], 4));
    }

    public function testVerdictReasonTextsAgreeWithTheLibrary(): void
    {
        $reasons = array_filter((new \ReflectionClass(Abi::class))->getConstants(),
            fn (string $name): bool => str_starts_with($name, 'KW_REASON_'), ARRAY_FILTER_USE_KEY);
        self::assertSame(array_values($reasons), array_keys(\Keyward\Verdict::REASONS), 'one entry per kw_reason');
        foreach (\Keyward\Verdict::REASONS as $reason => [$code, $message]) {
            self::assertSame(Keyward::reasonCode($reason), $code);
            self::assertSame(Keyward::reasonMessage($reason), $message);
        }
    }

    public function testEveryStatusMapsToItsFamily(): void
    {
        $families = [
            ArgumentException::class => ['INVALID_ARGUMENT', 'NULL_ARGUMENT', 'INVALID_UTF8', 'TOO_LONG', 'CONFIG_MISMATCH',
                'LEGACY_IMPORT_INVALID'],
            InternalException::class => ['BUFFER_TOO_SMALL', 'PANIC'],
            ClosedException::class => ['CLOSED'],
            NotFoundException::class => ['NOT_FOUND', 'OWNER_NOT_FOUND'],
            PolicyException::class => ['POLICY_MAX_ACTIVE_KEYS', 'POLICY_LAST_ACTIVE_KEY', 'POLICY_MAX_LIFETIME',
                'CREDIT_SLOTS_EXHAUSTED', 'RATE_SLOTS_EXHAUSTED'],
            StorageException::class => ['DIRECTORY_MISSING', 'LOCKED', 'READ_ONLY', 'CORRUPT', 'WRONG_PEPPER', 'NEWER_FORMAT',
                'PEPPER_MISSING', 'PEPPER_INVALID', 'PEPPER_PERMISSIONS', 'STORAGE'],
            CredentialException::class => ['CREDENTIAL_MISSING', 'UNSUPPORTED_SCHEME', 'BAD_BASE64', 'HALF_PAIR', 'MALFORMED_KEY',
                'AMBIGUOUS_CREDENTIAL'],
            UpstreamException::class => ['UPSTREAM_UNAVAILABLE', 'UPSTREAM_SCHEMA', 'UPSTREAM_REQUIRED',
                'UPSTREAM_UNSUPPORTED'],
        ];
        $seen = [];
        foreach ($families as $class => $names) {
            foreach ($names as $name) {
                $status = constant(Abi::class . "::KW_$name");
                $e = KeywardException::fromStatus($status, Keyward::statusName($status), Keyward::statusMessage($status), 'kw_call');
                self::assertInstanceOf($class, $e, $name);
                self::assertSame($status, $e->getStatus());
                self::assertSame($name, $e->getStatusName());
                self::assertSame('kw_call: ' . Keyward::statusMessage($status) . " (KW_$name)", $e->getMessage());
                $seen[] = $status;
            }
        }
        // Every non-OK status of the ABI has a family.
        $all = array_filter((new \ReflectionClass(Abi::class))->getConstants(), fn ($v, $k) =>
            is_int($v) && $v > 0 && in_array(Keyward::statusName($v), [substr($k, 3)], true), ARRAY_FILTER_USE_BOTH);
        self::assertEqualsCanonicalizing(array_values($all), $seen);
    }

    public function testAPanicInsideTheLibraryIsAnInternalExceptionAndTheProcessGoesOn(): void
    {
        // kw_test_panic is a test hook: exported only by a library built with
        // `cargo build --lib --features test-hooks` (scripts/test-php.sh builds the one
        // KEYWARD_LIB names so) and declared in no header, so the test declares it itself, on
        // the library the binding loaded.
        Library::ffi();
        $path = Library::configuredPath();
        try {
            $hooks = \FFI::cdef('uint32_t kw_test_panic(void);', $path);
        } catch (\FFI\Exception $e) {
            self::fail("$path has no kw_test_panic: build it with `cargo build --lib --features test-hooks` ({$e->getMessage()})");
        }
        $status = $hooks->kw_test_panic(); // the panic hook prints one line to stderr, by design
        self::assertSame(Abi::KW_PANIC, $status);
        try {
            \Keyward\Native::fail(Library::ffi(), $status, 'kw_test_panic');
            self::fail('Native::fail did not throw for KW_PANIC');
        } catch (InternalException $e) {
            self::assertSame('PANIC', $e->getStatusName());
            self::assertStringContainsString('a panic was caught at the C boundary', $e->getMessage());
        }
        self::assertSame(Abi::KW_ABI_VERSION, Keyward::abiVersion(), 'the library still works');
    }

    public function testParseKeyRefusesANonUtf8Prefix(): void
    {
        $this->expectException(ArgumentException::class);
        Keyward::parseKey('kw_live_x', "\xff");
    }

    public function testExtractCredentialErrorsAreCredentialExceptions(): void
    {
        try {
            Keyward::extractCredential([]);
            self::fail('expected a CredentialException');
        } catch (CredentialException $e) {
            self::assertSame('CREDENTIAL_MISSING', $e->getStatusName());
            self::assertStringStartsWith('kw_extract_credential: no API key in the request (KW_CREDENTIAL_MISSING)', $e->getMessage());
            self::assertStringEndsWith(': ' . $e->getDetail(), $e->getMessage()); // the library's hint: which headers it reads
            self::assertStringContainsString('x-api-key', $e->getDetail());
        }
    }

    public function testProcessEnvironmentOutlivesPutenv(): void
    {
        $name = 'KEYWARD_PHP_TEST_' . getmypid();
        self::assertNull(Library::processEnv($name));
        Library::setProcessEnv($name, 'value');
        self::assertSame('value', Library::processEnv($name));
        Library::setProcessEnv($name, null);
        self::assertNull(Library::processEnv($name));
    }
}
