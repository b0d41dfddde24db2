<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Exception\ArgumentException;
use Keyward\Exception\NotFoundException;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * Owner controls through the PHP binding: suspend / resume (OWNER_SUSPENDED, 403), allowed
 * scopes (effective scopes), owner records, audit events, bad input.
 */
final class OwnersTest extends TestCase
{
    use TempStores;

    public function testSuspendResumeAndScopes(): void
    {
        $store = self::newStore('owners');
        $key = $store->create('acct', scopes: ['read', 'write'])->key;
        $ops = $store->withActor('ops');
        $info = $ops->suspendOwner('acct', 'unpaid');
        self::assertTrue($info->isSuspended());
        self::assertSame('unpaid', $info->suspendReason);
        self::assertSame(1, $info->keys);
        $refused = $store->verify($key);
        self::assertSame('OWNER_SUSPENDED', $refused->code);
        self::assertSame(403, $refused->httpStatus);
        self::assertFalse($refused->valid);
        self::assertFalse($ops->resumeOwner('acct')->isSuspended());
        self::assertTrue($store->verify($key, ['write'])->valid);
        $ops->setOwnerScopes('acct', ['read']);
        self::assertSame('INSUFFICIENT_SCOPE', $store->verify($key, ['write'])->code);
        self::assertSame(['read'], $store->verify($key, ['read'], withRecord: true)->record?->scopes);
        self::assertNull($ops->setOwnerScopes('acct', null)->allowedScopes);
        $ops->close();
        self::assertTrue($store->verify($key, ['write'])->valid);
        self::assertSame(['acct'], array_map(static fn ($o) => $o->owner, $store->owners()));
        self::assertNotNull($store->owner('acct')->createdAt);
        $events = array_values(array_filter($store->audit(owner: 'acct')->events, static fn ($e) => $e->keyId === null));
        self::assertSame([
            ['owner_suspend', 'ops'],
            ['owner_resume', 'ops'],
            ['owner_scopes', 'ops'],
            ['owner_scopes', 'ops'],
        ], array_map(static fn ($e) => [$e->action, $e->actor], $events));
        self::assertSame(['suspended_at', 'suspend_reason'], $events[0]->changed);
        $store->close();
    }

    public function testBadOwnersAreRefused(): void
    {
        $store = self::newStore('owners-bad');
        try {
            $store->owner('nobody');
            self::fail('expected NotFoundException');
        } catch (NotFoundException $e) {
            self::assertSame('OWNER_NOT_FOUND', $e->getStatusName());
        }
        $this->expectException(ArgumentException::class);
        try {
            $store->setOwnerScopes('acct', ['has space']);
        } finally {
            self::assertSame([], $store->owners());
            $store->close();
        }
    }
}
