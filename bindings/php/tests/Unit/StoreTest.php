<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use FFI;
use Keyward\Abi;
use Keyward\CreatedKey;
use Keyward\Credits;
use Keyward\Exception\ArgumentException;
use Keyward\Exception\ClosedException;
use Keyward\Exception\KeywardException;
use Keyward\Exception\NotFoundException;
use Keyward\Exception\PolicyException;
use Keyward\Exception\StorageException;
use Keyward\KeyRecord;
use Keyward\Keyward;
use Keyward\Library;
use Keyward\Native;
use Keyward\Store;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * Every Store method: results, and the refusal of bad input (wrong types, oversize values,
 * closed store, unknown ids, policies).
 */
final class StoreTest extends TestCase
{
    use TempStores;

    private static function nowMs(): int
    {
        return (int) floor(microtime(true) * 1000);
    }

    /** Runs $fn and returns the KeywardException it must throw. */
    private static function failure(callable $fn, string $class, string $statusName): KeywardException
    {
        try {
            $fn();
        } catch (KeywardException $e) {
            self::assertInstanceOf($class, $e, $e->getMessage());
            self::assertSame($statusName, $e->getStatusName(), $e->getMessage());
            self::assertSame(constant(Abi::class . '::KW_' . $statusName), $e->getCode());
            return $e;
        }
        self::fail("expected $class ($statusName)");
    }

    // --- open, persistent, close ---------------------------------------------------------

    public function testOpenCreatesTheStoreAndAPrivatePepperFile(): void
    {
        $path = self::newPath();
        $store = Store::open($path);
        self::assertFileExists($path);
        self::assertFileExists("$path.pepper");
        self::assertSame(0600, fileperms("$path.pepper") & 0777);
        self::assertSame($path, $store->path());
        self::assertFalse($store->isPersistent());
        self::assertGreaterThan(0, $store->handle());
        self::assertLessThan(2 ** 53, $store->handle());
        $store->close();
    }

    public function testReopeningAPathSharesTheStore(): void
    {
        $path = self::newPath();
        $a = Store::open($path);
        $b = Store::open($path);
        $other = self::newStore();
        self::assertNotSame($a->handle(), $b->handle());
        self::assertTrue($a->sameStore($b));
        self::assertFalse($a->sameStore($other));
        $created = $a->create('acct');
        self::assertTrue($b->verify($created->key)->valid);
        $a->close();
        self::assertTrue($b->verify($created->key)->valid, 'the store stays open while a handle remains');
        $b->close();
        $other->close();
    }

    public function testOpenOptions(): void
    {
        $path = self::newPath();
        $pepper = bin2hex(random_bytes(32));
        $store = Store::open($path, pepper: $pepper, prefix: 'acme', singleProcess: false, maxActiveKeysPerOwner: 5,
            keepLastKey: false, maxLifetimeMs: 0, flushIntervalMs: 250, indexCapacity: 1000);
        $key = $store->create('acct', env: 'live')->key;
        self::assertStringStartsWith('acme_live_', $key);
        self::assertFileDoesNotExist("$path.pepper", 'an explicit pepper writes no pepper file');
        $store->close();
        $again = Store::open($path, pepper: hex2bin($pepper), prefix: 'acme', maxActiveKeysPerOwner: 5, flushIntervalMs: 250,
            indexCapacity: 1000);
        self::assertTrue($again->verify($key)->valid, 'the same pepper as 32 raw bytes');
        $again->close();
        self::failure(fn () => Store::open($path, pepper: str_repeat('0', 64)), StorageException::class, 'WRONG_PEPPER');
        self::failure(fn () => Store::open($path), StorageException::class, 'PEPPER_MISSING');
    }

    public function testPepperFileOption(): void
    {
        $path = self::newPath();
        $pepperFile = self::newPath('pepper') . '.hex';
        file_put_contents($pepperFile, bin2hex(random_bytes(32)));
        chmod($pepperFile, 0600);
        $store = Store::open($path, pepperFile: $pepperFile);
        $key = $store->create('acct')->key;
        $store->close();
        self::assertTrue(Store::open($path, pepperFile: $pepperFile)->verify($key)->valid);
        chmod($pepperFile, 0644);
        self::failure(fn () => Store::open(self::newPath(), pepperFile: $pepperFile), StorageException::class, 'PEPPER_PERMISSIONS');
        self::failure(fn () => Store::open(self::newPath(), pepper: str_repeat('a', 64), pepperFile: $pepperFile),
            ArgumentException::class, 'INVALID_ARGUMENT');
    }

    public function testOpenRefusesBadInput(): void
    {
        self::failure(fn () => Store::open(''), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => Store::open("/tmp/a\0b.redb"), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => Store::open('/tmp/' . str_repeat('a', Abi::KW_MAX_PATH_LEN)), ArgumentException::class, 'TOO_LONG');
        self::failure(fn () => Store::open('/nonexistent-dir-' . bin2hex(random_bytes(4)) . '/k.redb'),
            StorageException::class, 'DIRECTORY_MISSING');
        self::failure(fn () => Store::open(self::newPath(), pepper: 'short'), StorageException::class, 'PEPPER_INVALID');
        self::failure(fn () => Store::open(self::newPath(), prefix: 'Bad-Prefix'), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => Store::open(self::newPath(), prefix: "\xff"), ArgumentException::class, 'INVALID_UTF8');
        self::failure(fn () => Store::open(self::newPath(), flushIntervalMs: -5), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => Store::open(self::newPath(), maxActiveKeysPerOwner: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => Store::open(self::newPath(), maxLifetimeMs: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => Store::open(self::newPath(), indexCapacity: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        $e = self::failure(fn () => Store::open('/nonexistent-dir/k.redb'), StorageException::class, 'DIRECTORY_MISSING');
        self::assertStringContainsString('/nonexistent-dir/k.redb', $e->getMessage());
        self::assertStringContainsString('(KW_DIRECTORY_MISSING)', $e->getMessage());
    }

    public function testAPinnedStoreStaysOpenAfterItsLastHandle(): void
    {
        $path = self::newPath();
        $store = Store::open($path, pin: true, flushIntervalMs: Store::FLUSH_MANUAL);
        $created = $store->create('acct');
        $store->verify($created->key);
        $store->close(); // not flushed: the store stays open, pinned
        $again = Store::open($path, pin: true, flushIntervalMs: Store::FLUSH_MANUAL);
        self::assertSame(1, $again->stats()->dirtyKeys, 'the same store, its pending usage still in memory');
        self::assertSame(1, $again->flush());
        $again->close();
    }

    public function testReleasePersistentFlushesAndClosesPinnedStores(): void
    {
        $path = self::newPath();
        $store = Store::open($path, pin: true, flushIntervalMs: Store::FLUSH_MANUAL);
        $created = $store->create('acct');
        $store->verify($created->key);
        $store->verify($created->key);
        $store->close(); // pinned: nothing written
        Store::releasePersistent(); // no handle left: flushed and closed
        $fresh = Store::open($path, flushIntervalMs: Store::FLUSH_MANUAL);
        self::assertSame(0, $fresh->stats()->dirtyKeys, 'a fresh open, not the pinned store');
        self::assertSame(2, $fresh->usage($created->id())->uses);
        $fresh->close();
        Store::releasePersistent(); // nothing pinned: a no-op
    }

    /** A process that pinned a store and exits without closing it still writes its usage. */
    public function testAPinnedStoreIsFlushedWhenTheProcessExits(): void
    {
        $path = self::newPath('pin-exit');
        $store = Store::open($path, flushIntervalMs: Store::FLUSH_MANUAL);
        $created = $store->create('acct');
        $script = sprintf(
            '<?php require %s; Keyward\Library::$path = %s; $s = Keyward\Store::open(%s, pin: true, flushIntervalMs: Keyward\Store::FLUSH_MANUAL);'
                . ' for ($i = 0; $i < 5; $i++) { $s->verify(%s); } $s->close(); echo "closed";',
            var_export(dirname(__DIR__) . '/autoload.php', true), var_export(Library::configuredPath(), true),
            var_export($path, true), var_export($created->key, true),
        );
        $file = self::newPath('pin-exit-script') . '.php';
        file_put_contents($file, $script);
        exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($file) . ' 2>&1', $out, $status);
        self::assertSame([0, ['closed']], [$status, $out]);
        self::assertSame(5, $store->usage($created->id())->uses, 'flushed by kw_release_persistent at exit');
        $store->close();
    }

    public function testConflictingOptionsForAnOpenPathAreRefused(): void
    {
        $path = self::newPath();
        $store = Store::open($path);
        self::failure(fn () => Store::open($path, singleProcess: true), ArgumentException::class, 'CONFIG_MISMATCH');
        self::failure(fn () => Store::open($path, keepLastKey: true), ArgumentException::class, 'CONFIG_MISMATCH');
        $store->close();
    }

    public function testWrongArgumentTypesAreTypeErrors(): void
    {
        $store = self::newStore();
        $calls = [
            fn () => Store::open(['not a path']),
            fn () => Store::open(self::newPath(), flushIntervalMs: '100'),
            fn () => $store->verify(12345),
            fn () => $store->verify('k', 'read'),
            fn () => $store->create(42),
            fn () => $store->create('acct', credits: 5),
            fn () => $store->list('acct', '0'),
            fn () => $store->verifyHeaders('x-api-key: k'),
            fn () => $store->rotate('id', 1.5),
        ];
        foreach ($calls as $i => $call) {
            try {
                $call();
                self::fail("call $i: expected a TypeError");
            } catch (\TypeError) {
                $this->addToAssertionCount(1);
            }
        }
        $store->close();
    }

    public function testWrongValueTypesInsideArraysAreArgumentErrors(): void
    {
        $store = self::newStore();
        $e = self::failure(fn () => $store->create('acct', scopes: ['read', 7]), ArgumentException::class, 'INVALID_ARGUMENT');
        self::assertStringContainsString('scopes[1] must be a string, got int', $e->getMessage());
        self::failure(fn () => $store->verify('k', [null]), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->verifyHeaders([['x-api-key']]), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->verifyHeaders([['x-api-key', 5]]), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->verifyHeaders(['x-api-key' => [1]]), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => new Credits(-1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => new Credits(1, cost: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        $store->close();
    }

    public function testHeaderBlockMatchesTheCStructAndIsReusedAndGrown(): void
    {
        // Native::writeHeaders() packs kw_header by hand: its size must be the C type's.
        self::assertSame(FFI::sizeof(Library::ffi()->type('kw_header')), Native::HEADER_SIZE);
        $store = self::newStore();
        $key = $store->create('acct', scopes: ['read'])->key;
        $parsed = Keyward::parseKey($key);
        $cases = [
            // [headers, expected code]: the block's first use, reuse, growth past its size
            [[['x-api-key', $key]], 'VALID'],
            [[['authorization', "Bearer $key"]], 'VALID'],
            [[['x-api-token-id', $parsed->id], ['x-api-token-secret-key', $parsed->secret]], 'VALID'],
            [[['host', str_repeat('h', 3000)], ['X-Api-Key', " $key "], ['accept', '*/*']], 'VALID'],
            [[['x-api-key', $key], ['authorization', 'Bearer kw_other']], 'AMBIGUOUS_CREDENTIAL'],
            [[['x-api-key', str_repeat('k', 9000)]], 'MALFORMED_KEY'],
            [[['host', 'example']], 'CREDENTIAL_MISSING'],
            [[['x-api-key', $key]], 'VALID'],
        ];
        $uses = 0;
        foreach ($cases as $i => [$headers, $code]) {
            $verdict = $store->verifyHeaders($headers, ['read']);
            self::assertSame($code, $verdict->code, "case $i");
            $uses += $verdict->valid ? 1 : 0;
            // The general path (a name => value map) judges the same way.
            $map = [];
            foreach ($headers as [$name, $value]) {
                $map[$name][] = $value;
            }
            self::assertSame($code, $store->verifyHeaders($map, ['read'])->code, "case $i, as a map");
            $uses += $verdict->valid ? 1 : 0;
        }
        $store->flush();
        self::assertSame($uses, $store->usage($parsed->id)->uses);
        $store->close();
    }

    public function testPersistentStoreIsOpenedOncePerProcess(): void
    {
        $path = self::newPath();
        $first = Store::persistent($path);
        $second = Store::persistent($path);
        self::assertTrue($first->isPersistent());
        self::assertSame($first->handle(), $second->handle(), 'the same handle, remembered by the process');
        $env = Library::processEnv(Store::HANDLE_ENV_PREFIX . substr(self::envSuffix($path), 0));
        self::assertSame(getmypid() . ':' . $first->handle() . ':' . Library::extensionVerify(Library::ffi(), ignoreSwitch: true), $env);
        $created = $first->create('acct');
        $handle = $first->handle();
        unset($first, $second); // objects die (end of request): nothing is closed
        $again = Store::persistent($path);
        self::assertSame($handle, $again->handle());
        self::assertTrue($again->verify($created->key)->valid);
        self::assertSame(1, $again->stats()->indexedKeys, 'the warm index survived');

        $own = Store::open($path);
        self::assertTrue($own->sameStore($again));
        $own->close();

        $again->close(); // forgets the handle (the last one: the store closes)
        self::assertNull(Library::processEnv(Store::HANDLE_ENV_PREFIX . self::envSuffix($path)));
        $fresh = Store::persistent($path);
        self::assertNotSame($handle, $fresh->handle());
        self::assertTrue($fresh->verify($created->key)->valid);
        self::assertSame(1, $fresh->stats()->indexedKeys);

        $other = Store::persistent($path, flushIntervalMs: 500);
        self::assertNotSame($fresh->handle(), $other->handle(), 'other options are another cache entry');
    }

    /** The hash part of the persistent handle's variable for default options. */
    private static function envSuffix(string $path): string
    {
        return hash('md5', implode("\0", [$path, '-', '-', '-', 0, 0, 0, 0, 0, 0]));
    }

    /**
     * A process that exits without closing its persistent store (a PHP-FPM worker) still
     * writes its usage: the exit handler closes the handle. The background flush is off here,
     * so nothing else could have written the counts.
     */
    public function testAPersistentStoreIsFlushedWhenTheProcessExits(): void
    {
        $path = self::newPath('exit');
        $store = Store::open($path, flushIntervalMs: Store::FLUSH_MANUAL);
        $created = $store->create('acct');
        $script = sprintf(
            '<?php require %s; Keyward\Library::$path = %s; $s = Keyward\Store::persistent(%s, flushIntervalMs: Keyward\Store::FLUSH_MANUAL);'
                . ' for ($i = 0; $i < 7; $i++) { $s->verify(%s); } echo $s->stats()->dirtyKeys;',
            var_export(dirname(__DIR__) . '/autoload.php', true), var_export(Library::configuredPath(), true),
            var_export($path, true), var_export($created->key, true),
        );
        $file = self::newPath('exit-script') . '.php';
        file_put_contents($file, $script);
        exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($file) . ' 2>&1', $out, $status);
        self::assertSame([0, ['1']], [$status, $out], 'the child verified 7 times, left 1 key dirty and exited');
        self::assertSame(7, $store->usage($created->id())->uses);
        $store->close();
    }

    public function testAPersistentHandleFromAnotherProcessIsNotUsed(): void
    {
        $path = self::newPath();
        $name = Store::HANDLE_ENV_PREFIX . self::envSuffix($path);
        Library::setProcessEnv($name, '1:16777217'); // as inherited from a parent process
        $store = Store::persistent($path);
        self::assertStringStartsWith(getmypid() . ':' . $store->handle() . ':', Library::processEnv($name));
        $store->create('acct');
    }

    public function testCloseIsIdempotentAndEveryCallAfterItThrows(): void
    {
        $store = self::newStore();
        $id = $store->create('acct')->id();
        $store->close();
        $store->close();
        self::assertTrue($store->isClosed());
        self::assertSame(0, $store->handle());
        $calls = [
            'verify' => fn () => $store->verify('kw_x'),
            'verifyPair' => fn () => $store->verifyPair($id, 'secret'),
            'verifyHeaders' => fn () => $store->verifyHeaders([['x-api-key', 'k']]),
            'verifyServer' => fn () => $store->verifyServer(['HTTP_X_API_KEY' => 'k']),
            'create' => fn () => $store->create('acct'),
            'get' => fn () => $store->get($id),
            'list' => fn () => $store->list('acct'),
            'allKeys' => fn () => $store->allKeys(),
            'update' => fn () => $store->update($id, name: 'x'),
            'revoke' => fn () => $store->revoke($id),
            'delete' => fn () => $store->delete($id),
            'rotate' => fn () => $store->rotate($id),
            'usage' => fn () => $store->usage($id),
            'usageByDay' => fn () => $store->usageByDay($id, 0, 1),
            'unusedSince' => fn () => $store->unusedSince('acct', 0),
            'credits' => fn () => $store->credits($id),
            'flush' => fn () => $store->flush(),
            'stats' => fn () => $store->stats(),
            'sameStore' => fn () => $store->sameStore($store),
        ];
        foreach ($calls as $name => $call) {
            $e = self::failure($call, ClosedException::class, 'CLOSED');
            self::assertStringContainsString('is closed', $e->getMessage(), $name);
        }
    }

    public function testDestroyingAStoreClosesItsHandle(): void
    {
        $store = self::newStore();
        $handle = $store->handle();
        unset($store);
        self::assertSame(Abi::KW_CLOSED, Library::ffi()->kw_close($handle));
    }

    public function testAStoreClosedByAnotherPathIsReportedClosed(): void
    {
        $store = self::newStore();
        self::assertSame(Abi::KW_OK, Library::ffi()->kw_close($store->handle()));
        self::failure(fn () => $store->verify('kw_x'), ClosedException::class, 'CLOSED');
        self::failure(fn () => $store->get('x'), ClosedException::class, 'CLOSED');
    }

    // --- create, get, list, update, revoke, delete, rotate -------------------------------

    public function testCreateReturnsTheKeyOnceAndItsRecord(): void
    {
        $store = self::newStore();
        $expires = new \DateTimeImmutable('+1 day');
        $metadata = "\x00\xffbinary{\"plan\":\"pro\"}";
        $created = $store->create('acct_42', name: 'CI deploy', scopes: ['write', 'read', 'read'], env: 'live',
            metadata: $metadata, expiresAt: $expires, credits: new Credits(10, cost: 2, refillAmount: 10,
            refillInterval: Credits::REFILL_DAILY));
        $record = $created->record;
        self::assertSame($created->id(), $record->id);
        self::assertSame('acct_42', $record->owner);
        self::assertSame('CI deploy', $record->name);
        self::assertSame(['read', 'write'], $record->scopes);
        self::assertSame('live', $record->env);
        self::assertSame($metadata, $record->metadata);
        self::assertSame(intdiv((int) $expires->format('Uu'), 1000), $record->expiresAt);
        self::assertEqualsWithDelta(self::nowMs(), $record->createdAt, 60_000);
        self::assertNull($record->revokedAt);
        self::assertSame(2, $record->credits['cost']);
        self::assertTrue($record->isActive());
        $parsed = Keyward::parseKey($created->key, 'kw');
        self::assertTrue($parsed->valid);
        self::assertSame($record->id, $parsed->id);
        self::assertSame('live', $parsed->env);
        self::assertSame(Abi::KW_SECRET_LEN, strlen($parsed->secret));
        self::assertEquals($record, $store->get($record->id));
        self::assertSame(json_decode(json_encode($record), true), json_decode(json_encode($store->get($record->id)), true));
        $store->close();
    }

    public function testCreatedKeysAndSecretsAreRedactedInDumps(): void
    {
        $store = self::newStore();
        $created = $store->create('acct');
        $parsed = Keyward::parseKey($created->key);
        $credential = Keyward::extractCredential([['x-api-key', $created->key]]);
        foreach ([$created, $parsed, $credential] as $object) {
            $dump = print_r($object, true);
            self::assertStringNotContainsString($parsed->secret, $dump);
            self::assertStringContainsString('[redacted]', $dump);
        }
        $store->close();
    }

    public function testCreateRefusesBadInput(): void
    {
        $store = self::newStore();
        self::failure(fn () => $store->create(''), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->create('   '), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->create(str_repeat('o', Abi::KW_MAX_OWNER_LEN + 1)), ArgumentException::class, 'TOO_LONG');
        self::failure(fn () => $store->create("acct\xff"), ArgumentException::class, 'INVALID_UTF8');
        self::failure(fn () => $store->create('acct', name: str_repeat('n', Abi::KW_MAX_NAME_LEN + 1)), ArgumentException::class, 'TOO_LONG');
        self::failure(fn () => $store->create('acct', scopes: ['']), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->create('acct', scopes: [str_repeat('s', Abi::KW_MAX_SCOPE_LEN + 1)]), ArgumentException::class, 'TOO_LONG');
        self::failure(fn () => $store->create('acct', scopes: array_map(fn ($i) => "s$i", range(0, Abi::KW_MAX_SCOPES))),
            ArgumentException::class, 'TOO_LONG');
        self::failure(fn () => $store->create('acct', env: 'LIVE'), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->create('acct', metadata: str_repeat('m', Abi::KW_MAX_METADATA_LEN + 1)), ArgumentException::class, 'TOO_LONG');
        self::failure(fn () => $store->create('acct', expiresAt: -5), ArgumentException::class, 'INVALID_ARGUMENT');
        self::assertSame([], $store->allKeys(), 'nothing was created');
        $store->close();
    }

    public function testListPagesAndStates(): void
    {
        $store = self::newStore();
        $ids = [];
        for ($i = 0; $i < 5; $i++) {
            $ids[] = $store->create('acct', name: "k$i")->id();
        }
        $store->create('other');
        $store->revoke($ids[1]);
        $page = $store->list('acct', limit: 2);
        self::assertSame([$ids[0], $ids[1]], array_map(fn (KeyRecord $r) => $r->id, $page->keys));
        self::assertNotNull($page->next);
        $page2 = $store->list('acct', $page->next, 2);
        self::assertSame([$ids[2], $ids[3]], array_map(fn (KeyRecord $r) => $r->id, $page2->keys));
        $last = $store->list('acct', $page2->next, 2);
        self::assertSame([$ids[4]], array_map(fn (KeyRecord $r) => $r->id, $last->keys));
        self::assertNull($last->next);
        self::assertSame($ids, array_map(fn (KeyRecord $r) => $r->id, iterator_to_array($store->listAll('acct'), false)));
        self::assertSame([$ids[1]], array_map(fn (KeyRecord $r) => $r->id, $store->list('acct', state: Store::STATE_REVOKED)->keys));
        self::assertCount(4, $store->list('acct', state: Store::STATE_ACTIVE)->keys);
        self::assertCount(0, $store->list('acct', state: Store::STATE_EXPIRED)->keys);
        self::assertCount(0, $store->list('nobody')->keys);
        self::assertCount(6, $store->allKeys());
        self::failure(fn () => $store->list('acct', limit: Abi::KW_MAX_PAGE_SIZE + 1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->list('acct', state: 9), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->list('acct', after: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::assertCount(0, $store->list('')->keys);
        $store->close();
    }

    public function testLargeOutputsGrowTheBuffer(): void
    {
        $store = self::newStore();
        for ($i = 0; $i < 12; $i++) {
            $store->create('acct', metadata: str_repeat('m', Abi::KW_MAX_METADATA_LEN));
        }
        // 12 records of ~5.5 KB of base64 metadata: past the first 64 KiB buffer.
        self::assertCount(12, $store->allKeys());
        self::assertCount(12, $store->list('acct')->keys);
        self::assertCount(12, $store->unusedSince('acct', self::nowMs() + 1000));
        $store->close();
    }

    public function testUpdateChangesOnlyTheGivenFields(): void
    {
        $store = self::newStore();
        $created = $store->create('acct', name: 'old', scopes: ['read'], metadata: 'm', expiresAt: self::nowMs() + 3_600_000,
            credits: new Credits(3));
        $id = $created->id();
        $record = $store->update($id, name: 'new');
        self::assertSame('new', $record->name);
        self::assertSame(['read'], $record->scopes);
        self::assertSame('m', $record->metadata);
        $record = $store->update($id, scopes: ['admin'], metadata: '', expiresAt: 0, credits: false);
        self::assertSame(['admin'], $record->scopes);
        self::assertSame('', $record->metadata);
        self::assertNull($record->expiresAt);
        self::assertNull($record->credits);
        self::assertFalse($store->credits($id)->limited);
        self::assertSame('INSUFFICIENT_SCOPE', $store->verify($created->key, ['read'])->code);
        self::assertTrue($store->verify($created->key, ['admin'])->valid);
        $record = $store->update($id, credits: new Credits(1), expiresAt: new \DateTimeImmutable('+1 hour'));
        self::assertNotNull($record->expiresAt);
        self::assertTrue($store->credits($id)->limited);
        self::failure(fn () => $store->update('0000000000000000', name: 'x'), NotFoundException::class, 'NOT_FOUND');
        self::failure(fn () => $store->update($id, scopes: ['']), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->update($id, name: str_repeat('n', Abi::KW_MAX_NAME_LEN + 1)), ArgumentException::class, 'TOO_LONG');
        $store->close();
    }

    public function testRevokeDeleteAndNotFound(): void
    {
        $store = self::newStore();
        $created = $store->create('acct');
        $id = $created->id();
        $record = $store->revoke($id, 'leaked in a log');
        self::assertNotNull($record->revokedAt);
        self::assertSame('leaked in a log', $record->revokeReason);
        self::assertFalse($record->isActive());
        self::assertSame($record->revokedAt, $store->revoke($id)->revokedAt, 'revoking twice changes nothing');
        $verdict = $store->verify($created->key);
        self::assertSame('REVOKED', $verdict->code);
        self::assertSame(401, $verdict->httpStatus);
        self::assertTrue($verdict->revoked());
        self::failure(fn () => $store->revoke($id, str_repeat('r', Abi::KW_MAX_REASON_LEN + 1)), ArgumentException::class, 'TOO_LONG');
        $store->delete($id);
        foreach (['get' => fn () => $store->get($id), 'revoke' => fn () => $store->revoke($id), 'delete' => fn () => $store->delete($id),
            'rotate' => fn () => $store->rotate($id), 'usage' => fn () => $store->usage($id), 'credits' => fn () => $store->credits($id),
            'usageByDay' => fn () => $store->usageByDay($id, 0, 1), 'garbage id' => fn () => $store->get("not an id\x00"),
        ] as $name => $call) {
            $e = self::failure($call, NotFoundException::class, 'NOT_FOUND');
            self::assertStringContainsString('no key with that id exists', $e->getMessage(), $name);
        }
        self::assertSame('NOT_FOUND', $store->verify($created->key)->code);
        self::failure(fn () => $store->get("\xff"), ArgumentException::class, 'INVALID_UTF8');
        $store->close();
    }

    public function testRotate(): void
    {
        $store = self::newStore();
        $old = $store->create('acct', name: 'n', scopes: ['read'], env: 'test');
        $new = $store->rotate($old->id(), 0);
        self::assertInstanceOf(CreatedKey::class, $new);
        self::assertNotSame($old->key, $new->key);
        self::assertSame($old->id(), $new->record->rotatedFrom);
        self::assertSame(['read'], $new->record->scopes);
        self::assertSame('test', $new->record->env);
        self::assertSame($new->id(), $store->get($old->id())->rotatedTo);
        self::assertTrue($store->verify($new->key, ['read'])->valid);
        $stale = $store->verify($old->key, at: self::nowMs() + 10);
        self::assertSame('EXPIRED', $stale->code);
        self::assertTrue($stale->rotated());
        $graced = $store->rotate($new->id());
        self::assertTrue($store->verify($new->key)->valid, 'the default grace period is 24 hours');
        self::assertSame('EXPIRED', $store->verify($new->key, at: self::nowMs() + Abi::KW_DEFAULT_ROTATION_GRACE_MS + 1000)->code);
        self::assertTrue($store->verify($graced->key)->valid);
        $store->revoke($graced->id());
        self::failure(fn () => $store->rotate($graced->id()), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->rotate($graced->id(), -1), ArgumentException::class, 'INVALID_ARGUMENT');
        $store->close();
    }

    public function testPolicies(): void
    {
        $store = self::newStore(maxActiveKeysPerOwner: 2, keepLastKey: true, maxLifetimeMs: 86_400_000);
        $soon = self::nowMs() + 3_600_000;
        self::failure(fn () => $store->create('acct'), PolicyException::class, 'POLICY_MAX_LIFETIME');
        self::failure(fn () => $store->create('acct', expiresAt: self::nowMs() + 2 * 86_400_000), PolicyException::class, 'POLICY_MAX_LIFETIME');
        $a = $store->create('acct', expiresAt: $soon);
        $b = $store->create('acct', expiresAt: $soon);
        self::failure(fn () => $store->create('acct', expiresAt: $soon), PolicyException::class, 'POLICY_MAX_ACTIVE_KEYS');
        $store->revoke($a->id());
        $e = self::failure(fn () => $store->revoke($b->id()), PolicyException::class, 'POLICY_LAST_ACTIVE_KEY');
        self::assertStringContainsString("kw_revoke('{$b->id()}')", $e->getMessage());
        self::failure(fn () => $store->delete($b->id()), PolicyException::class, 'POLICY_LAST_ACTIVE_KEY');
        $store->close();
    }

    // --- verify ---------------------------------------------------------------------------

    public function testDryRunCountsNoUseAndSpendsNoCredit(): void
    {
        $store = self::newStore();
        $plain = $store->create('acct', scopes: ['read']);
        $limited = $store->create('acct', credits: new Credits(5));
        $secret = Keyward::parseKey($limited->key)->secret;
        for ($i = 0; $i < 100; $i++) {
            $v = $store->verify($plain->key, ['read'], withRecord: true, dryRun: true);
            self::assertTrue($v->valid);
            self::assertSame('acct', $v->record->owner);
            self::assertSame('INSUFFICIENT_SCOPE', $store->verify($plain->key, ['admin'], dryRun: true)->code);
            self::assertSame('NOT_FOUND', $store->verifyPair($plain->id(), $secret, dryRun: true)->code);
            self::assertTrue($store->verify($limited->key, cost: 5, dryRun: true)->valid);
            self::assertSame('USAGE_EXCEEDED', $store->verifyPair($limited->id(), $secret, cost: 6, dryRun: true)->code);
            self::assertTrue($store->verifyHeaders(['x-api-key' => $limited->key], dryRun: true)->valid);
        }
        $store->flush();
        foreach ([$plain->id(), $limited->id()] as $id) {
            $usage = $store->usage($id);
            self::assertSame([0, 0, null], [$usage->uses, $usage->refused, $usage->lastUsedAt]);
        }
        self::assertSame(5, $store->credits($limited->id())->remaining);
        self::assertTrue($store->verify($limited->key, cost: 5)->valid, 'a real verify spends');
        self::assertSame('USAGE_EXCEEDED', $store->verify($limited->key, dryRun: true)->code);
        self::assertSame(1, $store->usage($limited->id())->uses);
        $store->close();
    }

    public function testWarningsListKeysExpiringSoonAndLowOnCredits(): void
    {
        $store = self::newStore();
        $day = 86_400_000;
        $soon = $store->create('acct', expiresAt: self::nowMs() + $day);
        $later = $store->create('acct', expiresAt: self::nowMs() + 3 * $day);
        $store->create('acct', expiresAt: self::nowMs() + 30 * $day);
        $store->create('acct');
        $ids = fn (array $records): array => array_map(fn (KeyRecord $r): string => $r->id, $records);
        self::assertSame([$soon->id(), $later->id()], $ids($store->expiringWithin(7 * $day)));
        self::assertSame([$soon->id()], $ids($store->expiringWithin(2 * $day)));
        self::assertSame([], $store->expiringWithin(0));
        $low = $store->create('acct', credits: new Credits(2));
        $store->create('acct', credits: new Credits(100));
        $below = $store->creditsBelow(10);
        self::assertCount(1, $below);
        self::assertSame([$low->id(), 2], [$below[0]['record']->id, $below[0]['remaining']]);
        self::assertTrue($store->verify($low->key)->valid);
        self::assertSame(1, $store->creditsBelow(2)[0]['remaining']);
        self::assertSame([], $store->creditsBelow(1));
        $store->close();
    }

    public function testVerifyVerdictFields(): void
    {
        $store = self::newStore();
        $expires = self::nowMs() + 3_600_000;
        $created = $store->create('acct_7', scopes: ['read'], env: 'live', expiresAt: $expires, credits: new Credits(100));
        $v = $store->verify($created->key, ['read']);
        self::assertTrue($v->valid);
        self::assertSame(200, $v->httpStatus);
        self::assertSame('VALID', $v->code);
        self::assertSame(Abi::KW_REASON_VALID, $v->reason);
        self::assertNull($v->credentialStatus);
        self::assertSame('the API key is valid', $v->message);
        self::assertSame($created->id(), $v->keyId());
        self::assertSame('acct_7', $v->owner());
        self::assertSame('live', $v->env());
        self::assertSame($created->record->createdAt, $v->createdAt());
        self::assertSame($expires, $v->expiresAt());
        self::assertTrue($v->limited());
        self::assertFalse($v->revoked());
        self::assertFalse($v->rotated());
        self::assertNull($v->record);
        self::assertSame(['ok' => true, 'code' => 'VALID', 'message' => 'the API key is valid'], $v->jsonSerialize());

        $withRecord = $store->verify($created->key, ['read'], withRecord: true);
        self::assertEquals($store->get($created->id())->scopes, $withRecord->record->scopes);

        $scope = $store->verify($created->key, ['read', 'admin']);
        self::assertFalse($scope->valid);
        self::assertSame(403, $scope->httpStatus);
        self::assertSame('INSUFFICIENT_SCOPE', $scope->code);
        self::assertSame($created->id(), $scope->keyId(), 'a refused but recognised key still names itself');

        $unknown = $store->verify('kw_live_garbage');
        self::assertSame('MALFORMED', $unknown->code);
        self::assertNull($unknown->keyId());
        self::assertNull($unknown->owner());
        self::assertNull($store->verify('kw_live_garbage', withRecord: true)->record);
        $store->close();
    }

    public function testVerifyTreatsHostileKeyTextAsMalformed(): void
    {
        $store = self::newStore();
        $key = $store->create('acct')->key;
        foreach (['', str_repeat('A', 100_000), "$key\0", "\0$key", substr($key, 0, -1) . "\xff", str_repeat("\xff", 80),
            $key . str_repeat('x', Abi::KW_MAX_PRESENTED_LEN)] as $i => $text) {
            $verdict = $store->verify($text);
            self::assertSame('MALFORMED', $verdict->code, "text $i");
            self::assertSame(401, $verdict->httpStatus);
        }
        $store->close();
    }

    // --- the six-argument hot path (kw_verify_key) ---------------------------------------

    public function testKwVerifyKeyFromPhp(): void
    {
        $store = self::newStore();
        $created = $store->create('acct_1', scopes: ['read']);
        $ffi = Library::ffi();
        $v = $ffi->new('kw_verdict');
        $read = $ffi->new('kw_str[1]');
        $name = $ffi->new('char[4]');
        FFI::memcpy($name, 'read', 4);
        $read[0]->ptr = FFI::addr($name[0]);
        $read[0]->len = 4;
        $write = $ffi->new('kw_str[1]');
        $wname = $ffi->new('char[5]');
        FFI::memcpy($wname, 'write', 5);
        $write[0]->ptr = FFI::addr($wname[0]);
        $write[0]->len = 5;
        $key = $created->key;
        $h = $store->handle();

        self::assertSame(Abi::KW_OK, $ffi->kw_verify_key($h, $key, strlen($key), null, 0, FFI::addr($v)));
        self::assertSame([Abi::KW_REASON_VALID, 200, 1], [$v->reason, $v->http_status, $v->key_found]);
        self::assertSame(Abi::KW_OK, $ffi->kw_verify_key($h, $key, strlen($key), $read, 1, FFI::addr($v)));
        self::assertSame(Abi::KW_REASON_VALID, $v->reason);
        self::assertSame(Abi::KW_OK, $ffi->kw_verify_key($h, $key, strlen($key), $write, 1, FFI::addr($v)));
        self::assertSame([Abi::KW_REASON_INSUFFICIENT_SCOPE, 403, 1], [$v->reason, $v->http_status, $v->key_found]);
        $bad = substr($key, 0, -2) . "\xff\xfe";
        self::assertSame(Abi::KW_OK, $ffi->kw_verify_key($h, $bad, strlen($bad), null, 0, FFI::addr($v)));
        self::assertSame([Abi::KW_REASON_MALFORMED, 401, 0], [$v->reason, $v->http_status, $v->key_found]);
        self::assertSame(Abi::KW_NULL_ARGUMENT, $ffi->kw_verify_key($h, $key, strlen($key), null, 0, null));
        $store->close();
        self::assertSame(Abi::KW_CLOSED, $ffi->kw_verify_key($h, $key, strlen($key), null, 0, FFI::addr($v)));
    }

    public function testPlainVerifyAgreesWithTheFullCall(): void
    {
        // verify() without cost/at/record goes through kw_verify_key; withRecord: true and
        // an explicit time through kw_verify. Both must give the same verdicts.
        $store = self::newStore();
        $read = $store->create('acct_1', scopes: ['read'], env: 'live');
        $revoked = $store->create('acct_2');
        $store->revoke($revoked->id());
        // Expired a minute before every verify below (a past expiry is accepted at creation):
        // no wait for the clock to pass it.
        $expired = $store->create('acct_3', expiresAt: self::nowMs() - 60_000);
        $unknown = substr($read->key, 0, 12) . strrev(substr($read->key, 12));
        $cases = [
            [$read->key, []], [$read->key, ['read']], [$read->key, ['write']], [$read->key, ['read', 'write']],
            [$revoked->key, []], [$expired->key, []], [$unknown, []], ['garbage', ['read']], ['', []],
            [substr($read->key, 0, -1) . "\xff", []], ["\xc3\x28", ['read']],
        ];
        foreach ($cases as $i => [$key, $scopes]) {
            $plain = $store->verify($key, $scopes);
            $full = $store->verify($key, $scopes, withRecord: true);
            $at = $store->verify($key, $scopes, at: self::nowMs());
            foreach ([$full, $at] as $other) {
                self::assertSame([$other->valid, $other->httpStatus, $other->code, $other->reason, $other->keyId(), $other->owner(),
                    $other->env(), $other->createdAt(), $other->expiresAt(), $other->revoked()],
                    [$plain->valid, $plain->httpStatus, $plain->code, $plain->reason, $plain->keyId(), $plain->owner(),
                    $plain->env(), $plain->createdAt(), $plain->expiresAt(), $plain->revoked()], "case $i");
            }
            self::assertNull($plain->record);
        }
        self::assertSame('VALID', $store->verify($read->key)->code);
        self::assertSame('INSUFFICIENT_SCOPE', $store->verify($read->key, ['write'])->code);
        self::assertSame('REVOKED', $store->verify($revoked->key)->code);
        self::assertSame('EXPIRED', $store->verify($expired->key)->code);
        self::assertSame('MALFORMED', $store->verify("\xc3\x28")->code);
        $store->close();
    }

    public function testPlainVerdictsKeepTheirOwnDetails(): void
    {
        $store = self::newStore();
        $a = $store->create('acct_a', scopes: ['read'], env: 'live');
        $b = $store->create('acct_b', scopes: ['write']);
        $va = $store->verify($a->key, ['read']);
        $vb = $store->verify($b->key, ['read']);
        $vg = $store->verify('garbage');
        $va2 = $store->verify($a->key);
        self::assertSame([true, 'VALID', $a->id(), 'acct_a', 'live'], [$va->valid, $va->code, $va->keyId(), $va->owner(), $va->env()]);
        self::assertSame([false, 'INSUFFICIENT_SCOPE', $b->id(), 'acct_b', null], [$vb->valid, $vb->code, $vb->keyId(), $vb->owner(), $vb->env()]);
        self::assertSame([false, 'MALFORMED', null], [$vg->valid, $vg->code, $vg->keyId()]);
        self::assertSame([true, $a->id()], [$va2->valid, $va2->keyId()]);
        self::assertNotSame($va, $va2);
        // The last scope list is remembered; other lists and a reset of the scope cache (64) do not confuse it.
        $route = ['read'];
        self::assertTrue($store->verify($a->key, $route)->valid);
        self::assertTrue($store->verify($a->key, $route)->valid);
        for ($i = 0; $i < 70; $i++) {
            self::assertSame('INSUFFICIENT_SCOPE', $store->verify($a->key, ["s$i"])->code);
        }
        self::assertTrue($store->verify($a->key, $route)->valid);
        self::assertSame('INSUFFICIENT_SCOPE', $store->verify($a->key, ['read', 'write'])->code);
        self::assertTrue($store->verify($a->key, ['read'])->valid);
        self::assertSame('INSUFFICIENT_SCOPE', $store->verify($b->key, $route)->code);
        $store->close();
    }

    public function testPlainVerifyOnAClosedStore(): void
    {
        $store = self::newStore();
        $key = $store->create('acct')->key;
        self::assertTrue($store->verify($key)->valid);
        $store->close();
        foreach ([fn () => $store->verify($key), fn () => $store->verify($key, ['read']), fn () => $store->verify("kw_\xff")] as $call) {
            self::failure($call, ClosedException::class, 'CLOSED');
        }
    }

    public function testVerifyRefusesBadArguments(): void
    {
        $store = self::newStore();
        $key = $store->create('acct', scopes: ['read'])->key;
        self::failure(fn () => $store->verify($key, array_fill(0, Abi::KW_MAX_SCOPES + 1, 'read')), ArgumentException::class, 'TOO_LONG');
        self::failure(fn () => $store->verify($key, ["\xff"]), ArgumentException::class, 'INVALID_UTF8');
        self::failure(fn () => $store->verify($key, cost: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->verify($key, cost: 2 ** 32), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->verify($key, at: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        $e = self::failure(fn () => $store->verifyPair('id', 'secret', at: -1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::assertStringNotContainsString('secret', strtolower(str_replace('kw_verify_pair', '', $e->getMessage())));
        // The refused calls verified nothing: the key is still unused.
        self::assertSame(0, $store->usage(Keyward::parseKey($key)->id)->uses);
        $store->close();
    }

    public function testSecretsNeverAppearInExceptionMessages(): void
    {
        $store = self::newStore();
        $key = $store->create('acct')->key;
        $messages = [];
        foreach ([
            fn () => $store->verify($key, [42]),
            fn () => $store->verify($key, at: -1),
            fn () => $store->verifyHeaders([['x-api-key', $key]], ["\xff"]),
            fn () => $store->get($key),
        ] as $call) {
            try {
                $call();
            } catch (KeywardException $e) {
                $messages[] = $e->getMessage();
            }
        }
        self::assertCount(4, $messages);
        $secret = Keyward::parseKey($key)->secret;
        foreach ($messages as $message) {
            self::assertStringNotContainsString($secret, $message);
        }
        $store->close();
    }

    public function testVerifyPair(): void
    {
        $store = self::newStore();
        $created = $store->create('acct', scopes: ['read']);
        $parsed = Keyward::parseKey($created->key);
        self::assertTrue($store->verifyPair($parsed->id, $parsed->secret, ['read'])->valid);
        self::assertTrue($store->verifyPair($parsed->id, $created->key)->valid, 'the full key as the secret');
        self::assertSame('NOT_FOUND', $store->verifyPair($parsed->id, strrev($parsed->secret))->code);
        self::assertSame('INSUFFICIENT_SCOPE', $store->verifyPair($parsed->id, $parsed->secret, ['admin'])->code);
        self::assertSame($created->record->name, $store->verifyPair($parsed->id, $parsed->secret, withRecord: true)->record->name);
        $store->close();
    }

    public function testVerifyHeadersAcceptsPairsAndMaps(): void
    {
        $store = self::newStore();
        $created = $store->create('acct');
        $parsed = Keyward::parseKey($created->key);
        self::assertTrue($store->verifyHeaders([['Authorization', "Bearer {$created->key}"]])->valid);
        self::assertTrue($store->verifyHeaders(['X-Api-Key' => $created->key, 'Accept' => ['a', 'b']])->valid);
        self::assertTrue($store->verifyHeaders(['X-Api-Token-Id' => $parsed->id, 'X-Api-Token-Secret-Key' => $parsed->secret])->valid);
        self::assertSame('AMBIGUOUS_CREDENTIAL', $store->verifyHeaders(['x-api-key' => [$created->key, 'other']])->code);
        $missing = $store->verifyHeaders([]);
        self::assertSame('CREDENTIAL_MISSING', $missing->code);
        self::assertSame(Abi::KW_CREDENTIAL_MISSING, $missing->credentialStatus);
        self::assertSame('no API key in the request', $missing->message);
        self::assertSame(401, $missing->httpStatus);
        // What the client sent is a verdict, never an argument error: other headers are not
        // counted, an over-long name is no credential header, more than KW_MAX_HEADERS
        // credential headers are ambiguous, an over-long credential value is MALFORMED_KEY,
        // one that is not UTF-8 is read with U+FFFD (a malformed key).
        self::assertSame('CREDENTIAL_MISSING', $store->verifyHeaders(array_fill(0, Abi::KW_MAX_HEADERS + 1, ['accept', '*/*']))->code);
        $many = array_merge(array_fill(0, Abi::KW_MAX_HEADERS + 1, ['accept', '*/*']), [['x-api-key', $created->key]]);
        self::assertTrue($store->verifyHeaders($many)->valid);
        self::assertSame('CREDENTIAL_MISSING', $store->verifyHeaders([[str_repeat('h', Abi::KW_MAX_HEADER_NAME_LEN + 1), 'v']])->code);
        $ambiguous = $store->verifyHeaders(array_fill(0, Abi::KW_MAX_HEADERS + 1, ['x-api-key', $created->key]));
        self::assertSame(['AMBIGUOUS_CREDENTIAL', 401, Abi::KW_AMBIGUOUS_CREDENTIAL], [$ambiguous->code, $ambiguous->httpStatus, $ambiguous->credentialStatus]);
        $long = $store->verifyHeaders([['x-api-key', str_repeat('A', Abi::KW_MAX_HEADER_VALUE_LEN + 1)]]);
        self::assertSame(['MALFORMED_KEY', 401], [$long->code, $long->httpStatus]);
        $bytes = $store->verifyHeaders([['x-api-key', "\xff\xfe"]]);
        self::assertSame(['MALFORMED', 401, Abi::KW_REASON_MALFORMED], [$bytes->code, $bytes->httpStatus, $bytes->reason]);
        self::assertSame($created->id(), $store->verifyHeaders([['x-api-key', $created->key]], withRecord: true)->record->id);
        $store->close();
    }

    public function testVerifyServerReadsEveryServerShape(): void
    {
        $store = self::newStore();
        $created = $store->create('acct');
        $key = $created->key;
        $parsed = Keyward::parseKey($key);
        $shapes = [
            'x-api-key' => ['HTTP_X_API_KEY' => $key],
            'bearer' => ['HTTP_AUTHORIZATION' => "Bearer $key"],
            'after a rewrite' => ['REDIRECT_HTTP_AUTHORIZATION' => "Bearer $key"],
            'mod_php basic' => ['PHP_AUTH_USER' => $key, 'PHP_AUTH_PW' => ''],
            'mod_php basic without password' => ['PHP_AUTH_USER' => $key],
            'pair' => ['HTTP_X_API_TOKEN_ID' => $parsed->id, 'HTTP_X_API_TOKEN_SECRET_KEY' => $parsed->secret],
        ];
        foreach ($shapes as $name => $server) {
            self::assertTrue($store->verifyServer($server + ['REQUEST_METHOD' => 'GET'])->valid, $name);
        }
        self::assertSame('CREDENTIAL_MISSING', $store->verifyServer(['REQUEST_METHOD' => 'GET'])->code);
        self::assertSame('HALF_PAIR', $store->verifyServer(['HTTP_X_API_TOKEN_ID' => $parsed->id])->code);
        self::assertSame('UNSUPPORTED_SCHEME', $store->verifyServer(['HTTP_AUTHORIZATION' => 'Digest x', 'PHP_AUTH_USER' => $key])->code);
        $_SERVER['HTTP_X_API_KEY'] = $key;
        try {
            self::assertTrue($store->verifyServer()->valid, 'defaults to $_SERVER');
        } finally {
            unset($_SERVER['HTTP_X_API_KEY']);
        }
        $store->close();
    }

    public function testScopeArraysAreCachedCorrectly(): void
    {
        $store = self::newStore();
        $key = $store->create('acct', scopes: ['a', 'b'])->key;
        for ($i = 0; $i < 3; $i++) {
            self::assertTrue($store->verify($key, ['a'])->valid);
            self::assertSame('INSUFFICIENT_SCOPE', $store->verify($key, ['c'])->code);
            self::assertTrue($store->verify($key, ['a', 'b'])->valid);
            self::assertSame('INSUFFICIENT_SCOPE', $store->verify($key, ['ab'])->code, 'no confusion of joined names');
        }
        for ($i = 0; $i < 100; $i++) {
            self::assertSame('INSUFFICIENT_SCOPE', $store->verify($key, ["s$i"])->code);
        }
        self::assertTrue($store->verify($key, ['b'])->valid);
        $store->close();
    }

    // --- usage, credits, flush, stats -----------------------------------------------------

    public function testUsageCountsAndFlush(): void
    {
        $store = self::newStore(flushIntervalMs: Store::FLUSH_MANUAL);
        $created = $store->create('acct', scopes: ['read']);
        $id = $created->id();
        self::assertSame(0, $store->usage($id)->uses);
        self::assertNull($store->usage($id)->lastUsedAt);
        for ($i = 0; $i < 5; $i++) {
            $store->verify($created->key, ['read']);
        }
        $store->verify($created->key, ['admin']);
        $usage = $store->usage($id);
        self::assertSame(5, $usage->uses, 'pending counts are included');
        self::assertSame(1, $usage->refused);
        self::assertEqualsWithDelta(self::nowMs(), $usage->lastUsedAt, 60_000);
        self::assertSame(1, $store->stats()->dirtyKeys);
        self::assertSame([], $store->usageByDay($id, new \DateTimeImmutable('-1 day'), new \DateTimeImmutable()),
            'by-day counts are flushed counts only');
        self::assertSame(1, $store->flush());
        self::assertSame(0, $store->flush());
        self::assertSame(0, $store->stats()->dirtyKeys);
        $today = gmdate('Y-m-d');
        self::assertSame([$today => 5], $store->usageByDay($id, new \DateTimeImmutable('-3 days'), new \DateTimeImmutable('+1 day')));
        $day = Store::day(new \DateTimeImmutable('now', new \DateTimeZone('UTC')));
        self::assertSame([$today => 5], $store->usageByDay($id, $day, $day));
        self::assertSame([], $store->usageByDay($id, $day - 10, $day - 1));
        self::failure(fn () => $store->usageByDay($id, $day, $day - 1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->usageByDay($id, 0, Abi::KW_MAX_USAGE_DAYS + 1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::assertSame(5, Store::open($store->path(), flushIntervalMs: Store::FLUSH_MANUAL)->usage($id)->uses);
        $store->close();
    }

    public function testStoreDayConversion(): void
    {
        self::assertSame(0, Store::day(new \DateTimeImmutable('1970-01-01T23:59:59Z')));
        self::assertSame(1, Store::day(new \DateTimeImmutable('1970-01-02T00:00:00Z')));
        self::assertSame(-1, Store::day(new \DateTimeImmutable('1969-12-31T12:00:00Z')));
        self::assertSame(20_000, Store::day(20_000));
    }

    public function testUnusedSince(): void
    {
        $store = self::newStore();
        $used = $store->create('acct');
        $idle = $store->create('acct');
        $store->verify($used->key);
        $ids = array_map(fn (KeyRecord $r) => $r->id, $store->unusedSince('acct', self::nowMs() - 60_000));
        self::assertSame([$idle->id()], $ids);
        self::assertCount(2, $store->unusedSince('acct', new \DateTimeImmutable('+1 minute')));
        self::failure(fn () => $store->unusedSince('acct', -1), ArgumentException::class, 'INVALID_ARGUMENT');
        self::failure(fn () => $store->unusedSince(str_repeat('o', Abi::KW_MAX_OWNER_LEN + 1), 0), ArgumentException::class, 'TOO_LONG');
        $store->close();
    }

    public function testCredits(): void
    {
        $store = self::newStore();
        $limited = $store->create('acct', credits: new Credits(5, cost: 2, refillAmount: 7, refillInterval: Credits::REFILL_MONTHLY));
        $unlimited = $store->create('acct');
        $balance = $store->credits($limited->id());
        self::assertTrue($balance->limited);
        self::assertSame(5, $balance->remaining);
        self::assertSame(2, $balance->cost);
        self::assertSame(7, $balance->refillAmount);
        self::assertSame(Credits::REFILL_MONTHLY, $balance->refillInterval);
        self::assertTrue($store->verify($limited->key)->valid);
        self::assertSame(3, $store->credits($limited->id())->remaining);
        self::assertTrue($store->verify($limited->key, cost: 3)->valid);
        $exceeded = $store->verify($limited->key);
        self::assertSame('USAGE_EXCEEDED', $exceeded->code);
        self::assertSame(403, $exceeded->httpStatus);
        self::assertSame(0, $store->credits($limited->id())->remaining);
        $none = $store->credits($unlimited->id());
        self::assertFalse($none->limited);
        self::assertSame(0, $none->remaining);
        self::failure(fn () => $store->create('acct', credits: new Credits(1, refillInterval: 9)), ArgumentException::class, 'INVALID_ARGUMENT');
        $store->close();
    }

    public function testStats(): void
    {
        $store = self::newStore();
        $key = $store->create('acct')->key;
        $store->verify($key);
        $stats = $store->stats();
        self::assertGreaterThanOrEqual(1, $stats->commits);
        self::assertSame(1, $stats->indexedKeys);
        self::assertTrue($stats->indexComplete);
        self::assertGreaterThanOrEqual(0, $stats->refreshes);
        // The shared verify table: mapped, holding the key, its lookup part a fraction of the file.
        self::assertTrue($stats->table['mapped']);
        self::assertNotSame(0, $stats->table['generation']);
        self::assertSame(1, $stats->table['keys']);
        self::assertGreaterThanOrEqual(1, $stats->table['slots']);
        self::assertGreaterThan(0, $stats->table['lookupBytes']);
        self::assertLessThan($stats->table['fileBytes'], $stats->table['lookupBytes']);
        // A verify through the C ABI reads the key's record in place: nothing decoded, nothing
        // cached in this process; asking for the record decodes it (and caches it).
        self::assertSame(0, $stats->table['cachedRecords']);
        $store->verify($key, withRecord: true);
        self::assertSame(1, $store->stats()->table['cachedRecords']);
        $store->close();
    }
    public function testCreateManyMakesEveryKeyValidOrNoneOfThem(): void
    {
        $store = self::newStore();
        $specs = [];
        for ($i = 0; $i < 300; $i++) {
            $specs[] = ['owner' => 'bulk_' . ($i % 3), 'scopes' => ['read'], 'env' => 'live'];
        }
        $made = $store->createMany($specs);
        self::assertCount(300, $made);
        foreach ($made as $i => $one) {
            self::assertStringStartsWith('kw_live_', $one['key']);
            self::assertSame(Keyward::parseKey($one['key'])->id, $one['id']);
            $verdict = $store->verify($one['key'], ['read']);
            self::assertSame('VALID', $verdict->code);
            self::assertSame($one['id'], $verdict->keyId());
            self::assertSame('bulk_' . ($i % 3), $verdict->owner());
        }
        $bad = array_fill(0, 10, ['owner' => 'atomic']);
        $bad[6] = ['owner' => '   '];
        $e = self::failure(fn () => $store->createMany($bad), ArgumentException::class, 'INVALID_ARGUMENT');
        self::assertStringContainsString('new key 6 of the batch', $e->getMessage());
        $bad[6] = ['owner' => 'atomic', 'name' => str_repeat('n', 10000)];
        $e = self::failure(fn () => $store->createMany($bad), ArgumentException::class, 'TOO_LONG');
        self::assertStringContainsString('new key 6 of the batch', $e->getMessage());
        self::assertSame([], $store->list('atomic')->keys);
        self::failure(fn () => $store->createMany([]), ArgumentException::class, 'INVALID_ARGUMENT');
        try {
            $store->createMany([['owner' => 'a'], ['owner' => 'b', 'colour' => 'red']]);
            self::fail('expected a TypeError');
        } catch (\TypeError $e) {
            self::assertStringContainsString('spec 1', $e->getMessage());
        }
        self::assertSame([], $store->list('a')->keys);
        $store->close();
    }
}
