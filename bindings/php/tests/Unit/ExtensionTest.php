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
}
