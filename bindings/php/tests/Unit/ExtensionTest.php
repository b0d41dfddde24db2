<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Credits;
use Keyward\Exception\ArgumentException;
use Keyward\Exception\ClosedException;
use Keyward\Guard;
use Keyward\Library;
use Keyward\RateLimit;
use Keyward\Store;
use Keyward\Tests\TempStores;
use Keyward\Verdict;
use PHPUnit\Framework\TestCase;

/**
 * The optional keyward_native extension (bindings/php/ext): Store::verifyCredentials() — the
 * path of Guard, Middleware and the Laravel guard — gives the same verdicts through it as
 * through FFI, falls back to FFI for arguments it does not take, and calls only a checked
 * libkeyward address. Skipped when the extension is not loaded, unless
 * KEYWARD_REQUIRE_EXTENSION=1 (scripts/test-php.sh runs the unit suite a second time with it).
 */
final class ExtensionTest extends TestCase
{
    use TempStores;

    protected function setUp(): void
    {
        if (!extension_loaded('keyward_native')) {
            if (getenv('KEYWARD_REQUIRE_EXTENSION') === '1') {
                self::fail('KEYWARD_REQUIRE_EXTENSION=1 but keyward_native is not loaded (php -d extension=...)');
            }
            self::markTestSkipped('the keyward_native extension is not loaded');
        }
        Library::$useExtension = true;
    }

    protected function tearDown(): void
    {
        Library::$useExtension = true;
    }

    /** A Store object on $path whose verifies go through FFI only. */
    private static function ffiStore(string $path): Store
    {
        Library::$useExtension = false;
        try {
            return Store::open($path);
        } finally {
            Library::$useExtension = true;
        }
    }

    /** Whether $store verified through FFI: its kw_verdict buffer exists only on that path. */
    private static function usedFfi(Store $store): bool
    {
        return (new \ReflectionProperty(Store::class, 'verdict'))->getValue($store) !== null;
    }

    /**
     * What two verdicts of twin keys (same settings, same history) must share: everything but
     * the key id, the creation time and the reset instants.
     *
     * @return array<string, mixed>
     */
    private static function view(Verdict $v): array
    {
        $rate = $v->rate();
        if ($rate !== null) {
            unset($rate['resetMs'], $rate['retryAfterMs']);
        }
        $headers = $v->rateHeaders();
        return ['valid' => $v->valid, 'http' => $v->httpStatus, 'code' => $v->code, 'message' => $v->message,
            'reason' => $v->reason, 'credentialStatus' => $v->credentialStatus, 'found' => $v->keyId() !== null,
            'owner' => $v->owner(), 'env' => $v->env(), 'expires' => $v->expiresAt() !== null, 'limited' => $v->limited(),
            'revoked' => $v->revoked(), 'rotated' => $v->rotated(), 'rate' => $rate,
            'rateHeaderNames' => array_keys($headers), 'policy' => $headers['RateLimit-Policy'] ?? null];
    }

    public function testTheExtensionAndFfiGiveTheSameVerdicts(): void
    {
        $path = self::newPath();
        $native = Store::open($path);
        $ffi = self::ffiStore($path);
        /** @var array<string, array{0: list<array{0: string, 1: string}>, 1: list<string>, 2: int}> one twin per path */
        $twins = [];
        $plainIds = [];
        $elsewhere = self::newStore('elsewhere');
        $unknown = $elsewhere->create('acct_x')->key; // well formed, not in this store
        $elsewhere->close();
        foreach (['native' => $native, 'ffi' => $ffi] as $which => $store) {
            $plain = $store->create('acct_a', scopes: ['read'], env: 'live');
            $expiring = $store->create('acct_b', expiresAt: time() * 1000 + 3_600_000);
            $limited = $store->create('acct_c', credits: new Credits(2));
            $rated = $store->create('acct_d', rateLimit: new RateLimit(2, 60_000));
            $revoked = $store->create('acct_e');
            $store->revoke($revoked->id());
            $plainIds[$which] = $plain->id();
            $bearer = fn (string $key): array => [['authorization', "Bearer $key"]];
            $twins[$which] = [
                [[['x-api-key', $plain->key]], ['read'], 0],
                [[['X-API-Key', $plain->key]], ['read', 'write'], 0],   // insufficient scope
                [$bearer($expiring->key), [], 0],
                [[['x-api-key', $limited->key]], [], 0],
                [[['x-api-key', $limited->key]], [], 1],
                [[['x-api-key', $limited->key]], [], 0],                // credits used up
                [[['x-api-key', $rated->key]], [], 0],
                [[['x-api-key', $rated->key]], [], 0],
                [[['x-api-key', $rated->key]], [], 0],                  // RATE_LIMITED, Retry-After
                [[['x-api-key', $revoked->key]], [], 0],
                [[['x-api-key', 'kw_live_' . str_repeat('A', 40)]], [], 0], // malformed
                [[['x-api-key', $unknown]], [], 0],                    // not found
                [[['authorization', 'Digest abc']], [], 0],             // unsupported scheme
                [[['x-api-token-id', $plain->id()]], [], 0],            // half pair
                [[['x-api-key', $plain->key], ['authorization', "Bearer {$expiring->key}"]], [], 0], // ambiguous
                [[['accept', 'text/html']], [], 0],                     // no credential at all
            ];
        }
        $reached = [];
        foreach ($twins['native'] as $i => [$headers, $scopes, $cost]) {
            $viaExtension = $native->verifyCredentials($headers, $scopes, $cost);
            [$ffiHeaders, $ffiScopes, $ffiCost] = $twins['ffi'][$i];
            $viaFfi = $ffi->verifyCredentials($ffiHeaders, $ffiScopes, $ffiCost);
            self::assertSame(self::view($viaFfi), self::view($viaExtension), "request $i");
            $reached[$viaExtension->code] = true;
        }
        ksort($reached);
        self::assertSame(['AMBIGUOUS_CREDENTIAL', 'CREDENTIAL_MISSING', 'HALF_PAIR', 'INSUFFICIENT_SCOPE', 'MALFORMED',
            'NOT_FOUND', 'RATE_LIMITED', 'REVOKED', 'UNSUPPORTED_SCHEME', 'USAGE_EXCEEDED', 'VALID'], array_keys($reached),
            'every outcome was reached');
        self::assertFalse(self::usedFfi($native), 'the extension store never took the FFI path');
        self::assertTrue(self::usedFfi($ffi), 'the control store did');

        // The extension counts as FFI does (one accepted use each; a refusal counts no use).
        $native->flush();
        self::assertSame([1, 1], [$native->usage($plainIds['native'])->uses, $ffi->usage($plainIds['ffi'])->uses]);
        $native->close();
        $ffi->close();
    }

    public function testArgumentsTheExtensionDoesNotTakeGoThroughFfi(): void
    {
        $store = self::newStore();
        $key = $store->create('acct', scopes: ['read'])->key;
        try {
            $store->verifyCredentials([['x-api-key', $key]], ['read', 42]); // @phpstan-ignore-line
            self::fail('a non-string scope was accepted');
        } catch (ArgumentException $e) {
            self::assertStringContainsString('scopes[1] must be a string, got int', $e->getMessage());
        }
        self::assertTrue(self::usedFfi($store), 'the FFI path answered');
        self::assertSame(\KEYWARD_NATIVE_UNSUPPORTED, \keyward_native_verify(
            Library::extensionVerify(Library::ffi()), $store->handle(), [['x-api-key', $key]], ['read', 42], 0, $raw));
        self::assertNull($raw, 'nothing was verified');

        $tooMany = array_map(fn (int $i): string => "s$i", range(0, \Keyward\Abi::KW_MAX_SCOPES));
        $this->expectException(ArgumentException::class);
        $store->verifyCredentials([['x-api-key', $key]], $tooMany);
    }

    public function testAClosedStoreThrowsAsThroughFfi(): void
    {
        $store = self::newStore();
        $key = $store->create('acct')->key;
        self::assertTrue($store->verifyCredentials([['x-api-key', $key]])->valid);
        self::assertFalse(self::usedFfi($store));
        $store->close();
        $this->expectException(ClosedException::class);
        $store->verifyCredentials([['x-api-key', $key]]);
    }

    public function testOnlyLibkeywardsVerifyFunctionIsCalled(): void
    {
        $store = self::newStore();
        $ffi = Library::ffi();
        $verify = Library::extensionVerify($ffi);
        self::assertNotSame(0, $verify);
        $refused = 0;
        foreach ([
            $verify + 1,                                              // inside the function
            \FFI::cast('uintptr_t', $ffi->kw_abi_version)->cdata,     // another libkeyward export
            \FFI::cast('uintptr_t', \FFI::cdef('size_t strlen(const char *s);')->strlen)->cdata, // libc
            1,
        ] as $address) {
            try {
                \keyward_native_verify($address, $store->handle(), [], [], 0, $raw);
                self::fail(sprintf('address %#x was called', $address));
            } catch (\ValueError $e) {
                self::assertStringContainsString('must be the address of kw_verify_headers_ex', $e->getMessage());
                $refused++;
            }
        }
        self::assertSame(4, $refused);
        self::assertSame(\Keyward\Abi::KW_CREDENTIAL_MISSING, \keyward_native_verify($verify, $store->handle(), [], [], 0, $raw));
        $store->close();
    }

    public function testAPersistentStoreRemembersTheAddressForLaterRequests(): void
    {
        $path = self::newPath();
        $first = Store::persistent($path);
        $key = $first->create('acct')->key;
        unset($first); // the end of a request
        $again = Store::persistent($path);
        self::assertTrue($again->verifyCredentials([['x-api-key', $key]])->valid);
        self::assertFalse(self::usedFfi($again), 'the address came back with the handle');

        Library::$useExtension = false; // switched off: the same persistent store verifies through FFI
        $ffiOnly = Store::persistent($path);
        self::assertTrue($ffiOnly->verifyCredentials([['x-api-key', $key]])->valid);
        self::assertTrue(self::usedFfi($ffiOnly));
        $ffiOnly->close();
    }

    public function testGuardUsesTheExtension(): void
    {
        $store = self::newStore();
        $key = $store->create('acct', scopes: ['read'])->key;
        $verdict = Guard::check(['read'], $store, ['HTTP_X_API_KEY' => $key]);
        self::assertTrue($verdict->valid);
        self::assertSame('acct', $verdict->owner());
        self::assertFalse(self::usedFfi($store));
        $store->close();
    }
    /**
     * Guard's default path (the store from KEYWARD_STORE, the headers from $_SERVER) is one
     * keyward_native_guard() call once the process's first check bound the store: the same
     * verdicts as the PHP path for every header style, the PHP path for what the extension
     * leaves to it, and no use of a store that was closed or of another configuration.
     */
    public function testGuardsDefaultPathIsOneExtensionCall(): void
    {
        $path = self::newPath('guard-native');
        $store = Store::open($path);
        $key = $store->create('acct_g', scopes: ['read'])->key;
        $other = $store->create('acct_h')->key;
        $parsed = \Keyward\Keyward::parseKey($key);
        [$id, $secret] = [(string) $parsed->id, (string) $parsed->secret];
        $savedEnv = [];
        foreach (['KEYWARD_STORE', 'KEYWARD_PEPPER', 'KEYWARD_PEPPER_FILE'] as $name) {
            $savedEnv[$name] = getenv($name);
            putenv($name);
        }
        $savedServer = $_SERVER;
        $credentialKeys = ['HTTP_X_API_KEY', 'HTTP_AUTHORIZATION', 'HTTP_X_API_TOKEN_ID', 'HTTP_X_API_TOKEN_SECRET_KEY',
            'REDIRECT_HTTP_AUTHORIZATION', 'PHP_AUTH_USER', 'PHP_AUTH_PW'];
        $request = static function (array $headers) use ($credentialKeys): void {
            foreach ($credentialKeys as $k) {
                unset($_SERVER[$k]);
            }
            $_SERVER = $headers + $_SERVER;
        };
        try {
            putenv("KEYWARD_STORE=$path");
            $request(['HTTP_X_API_KEY' => $key]);
            self::assertSame(\KEYWARD_NATIVE_UNSUPPORTED, \keyward_native_guard(['read'], 0, $raw), 'not bound for this store yet');
            self::assertTrue(Guard::check(['read'])->valid); // the PHP path, which binds
            self::assertSame(0, \keyward_native_guard(['read'], 0, $raw));
            $uses = 2;
            self::assertTrue(Verdict::fromBytes($raw)->valid);

            // With $accepted: the usual answer's Verdict made by the extension, property for
            // property (private ones included) what Verdict::fromBytes() makes of the same
            // bytes; any other answer leaves it null. (The CLI keeps globals for the whole
            // process: no ACCEPTED entry here; the FPM pool tests see the web SAPI's.)
            self::assertSame(2, \KEYWARD_NATIVE_GUARD);
            $limited = $store->create('acct_g', scopes: ['read'], rateLimit: new \Keyward\RateLimit(1000, 60000, 1000))->key;
            $made = [];
            foreach (['accepted' => [$key, ['read']], 'refused' => [$key, ['admin']], 'rate limited' => [$limited, []]]
                     as $name => [$presented, $scopes]) {
                $request(['HTTP_X_API_KEY' => $presented]);
                $accepted = null;
                self::assertSame(0, \keyward_native_guard($scopes, 0, $raw, $accepted), $name);
                $decoded = Verdict::fromBytes($raw) ?? Verdict::fromBytesWithLibrary(\Keyward\Library::ffi(), $raw);
                if ($accepted !== null) {
                    self::assertInstanceOf(Verdict::class, $accepted, $name);
                    self::assertSame((array) $decoded, (array) $accepted, $name);
                    self::assertNotSame($decoded, $accepted);
                }
                $made[$name] = $accepted !== null;
                $uses += $decoded->valid && $presented === $key ? 1 : 0;
            }
            self::assertSame(['accepted' => true, 'refused' => false, 'rate limited' => false], $made);
            self::assertArrayNotHasKey(Guard::ACCEPTED, $GLOBALS);

            $cases = [
                'x-api-key' => [['HTTP_X_API_KEY' => $key], ['read'], true],
                'bearer' => [['HTTP_AUTHORIZATION' => "Bearer $key"], ['read'], true],
                'basic' => [['HTTP_AUTHORIZATION' => 'Basic ' . base64_encode("$key:")], [], true],
                'token pair' => [['HTTP_X_API_TOKEN_ID' => $id, 'HTTP_X_API_TOKEN_SECRET_KEY' => $secret], [], true],
                'scope' => [['HTTP_X_API_KEY' => $key], ['admin'], true],
                'none' => [[], [], true],
                'malformed' => [['HTTP_X_API_KEY' => 'kw_live_nonsense'], [], true],
                'ambiguous' => [['HTTP_X_API_KEY' => $key, 'HTTP_AUTHORIZATION' => "Bearer $other"], [], true],
                'redirect' => [['REDIRECT_HTTP_AUTHORIZATION' => "Bearer $key"], [], false],
                'php auth' => [['PHP_AUTH_USER' => $key, 'PHP_AUTH_PW' => ''], [], false],
                'not a string' => [['HTTP_X_API_KEY' => [$key]], [], false],
            ];
            $reached = [];
            foreach ($cases as $name => [$headers, $scopes, $native]) {
                $request($headers);
                $server = $_SERVER;
                $status = \keyward_native_guard($scopes, 0, $raw);
                self::assertSame($native, $status !== \KEYWARD_NATIVE_UNSUPPORTED, "$name: taken by the extension");
                if ($native && $status === 0) {
                    $uses += Verdict::fromBytes($raw)->valid ? 1 : 0;
                }
                $viaGuard = Guard::check($scopes);               // the extension's path, or PHP's
                $viaPhp = Guard::check($scopes, null, $server);  // always PHP's
                self::assertSame(self::view($viaPhp), self::view($viaGuard), $name);
                $uses += $viaGuard->valid ? 2 : 0;
                $reached[$viaGuard->code] = true;
            }
            ksort($reached);
            self::assertSame(['AMBIGUOUS_CREDENTIAL', 'CREDENTIAL_MISSING', 'INSUFFICIENT_SCOPE', 'MALFORMED', 'VALID'],
                array_keys($reached));
            $store->flush();
            self::assertSame($uses, $store->usage($id)->uses, 'one use per accepted check, whichever path');

            // Closed: the extension no longer uses the handle; the next check opens and binds again.
            $request(['HTTP_X_API_KEY' => $key]);
            Guard::store()->close();
            self::assertSame(\KEYWARD_NATIVE_UNSUPPORTED, \keyward_native_guard([], 0, $raw));
            self::assertTrue(Guard::check([])->valid);
            self::assertSame(0, \keyward_native_guard([], 0, $raw));
            // Another store configured: not this binding; the next check binds that one.
            $second = self::newPath('guard-native-second');
            $secondStore = Store::open($second);
            $request(['HTTP_X_API_KEY' => $secondStore->create('acct_s')->key]);
            $secondStore->close();
            putenv("KEYWARD_STORE=$second");
            self::assertSame(\KEYWARD_NATIVE_UNSUPPORTED, \keyward_native_guard([], 0, $raw));
            self::assertSame('acct_s', Guard::check([])->owner());
            self::assertSame(0, \keyward_native_guard([], 0, $raw));
            self::assertSame('acct_s', Verdict::fromBytes($raw)->owner());
            // A pepper given itself (another store: this process has the first one open with its
            // file): never bound, the extension keeps no copy of a secret.
            $peppered = self::newPath('guard-native-pepper');
            $other = Store::open($peppered);
            $request(['HTTP_X_API_KEY' => $other->create('acct_p')->key]);
            $other->close();
            putenv('KEYWARD_PEPPER_FILE');
            putenv("KEYWARD_STORE=$peppered");
            putenv('KEYWARD_PEPPER=' . trim((string) file_get_contents($peppered . '.pepper')));
            self::assertSame(\KEYWARD_NATIVE_UNSUPPORTED, \keyward_native_guard([], 0, $raw));
            self::assertSame('acct_p', Guard::check([])->owner());
            self::assertSame(\KEYWARD_NATIVE_UNSUPPORTED, \keyward_native_guard([], 0, $raw));
        } finally {
            $_SERVER = $savedServer;
            foreach ($savedEnv as $name => $value) {
                putenv($value === false ? $name : "$name=$value");
            }
            $store->close();
        }
    }
}
