<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Exception\ArgumentException;
use Keyward\Exception\KeywardException;
use Keyward\Exception\NotFoundException;
use Keyward\Exception\PolicyException;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * The audit log through the PHP binding: an event per change with the actor, a policy
 * refusal, filters, paging, retention, and no secret in any event.
 */
final class AuditTest extends TestCase
{
    use TempStores;

    public function testEveryChangeIsLoggedWithItsActor(): void
    {
        $store = self::newStore('audit');
        $alice = $store->withActor('alice');
        $a = $alice->create('acct', 'a', ['read']);
        $b = $store->create('acct');
        $alice->update($a->id(), name: 'renamed');
        $rotated = $alice->rotate($a->id(), 0);
        $alice->revoke($rotated->id(), 'leaked');
        $alice->delete($b->id());
        try {
            $alice->delete($b->id()); // a failed change logs nothing
            self::fail('expected NotFoundException');
        } catch (NotFoundException) {
        }
        $alice->close();
        $events = $store->audit(limit: 1000)->events;
        self::assertSame([
            ['create', $a->id(), 'alice'],
            ['create', $b->id(), null],
            ['update', $a->id(), 'alice'],
            ['rotate', $a->id(), 'alice'],
            ['rotate', $rotated->id(), 'alice'],
            ['revoke', $rotated->id(), 'alice'],
            ['delete', $b->id(), 'alice'],
        ], array_map(fn ($e) => [$e->action, $e->keyId, $e->actor], $events));
        self::assertSame(['name'], $events[2]->changed);
        self::assertSame($rotated->id(), $events[3]->detail);
        $dump = serialize($events);
        foreach ([$a, $b, $rotated] as $created) {
            self::assertStringNotContainsString($created->key, $dump);
            self::assertStringNotContainsString(substr($created->key, -38, 32), $dump);
        }
    }

    public function testAPolicyRefusalIsLogged(): void
    {
        $store = self::newStore('audit', keepLastKey: true);
        $k = $store->create('acct');
        $ops = $store->withActor('ops');
        try {
            $ops->revoke($k->id());
            self::fail('expected PolicyException');
        } catch (PolicyException) {
        }
        $events = $store->audit()->events;
        $last = end($events);
        self::assertSame(
            ['policy_refused', $k->id(), 'ops', 'POLICY_LAST_ACTIVE_KEY'],
            [$last->action, $last->keyId, $last->actor, $last->detail],
        );
    }

    public function testFiltersPagingLimitsAndRetention(): void
    {
        $store = self::newStore('audit');
        $ids = [];
        for ($i = 0; $i < 7; $i++) {
            $h = $store->withActor($i % 2 === 0 ? 'even' : 'odd');
            $ids[] = $h->create('acct_' . ($i % 2))->id();
            $h->close();
        }
        $keyIds = fn ($page) => array_map(fn ($e) => $e->keyId, $page->events);
        self::assertSame([$ids[1], $ids[3], $ids[5]], $keyIds($store->audit(actor: 'odd')));
        self::assertSame([$ids[0], $ids[2], $ids[4], $ids[6]], $keyIds($store->audit(owner: 'acct_0')));
        self::assertSame([$ids[3]], $keyIds($store->audit(keyId: $ids[3])));
        self::assertSame([], $store->audit(since: new \DateTimeImmutable('+1 day'))->events);
        self::assertCount(7, $store->audit(until: new \DateTimeImmutable('+1 day'))->events);
        $first = $store->audit(limit: 3);
        self::assertCount(3, $first->events);
        self::assertNotNull($first->next);
        self::assertCount(4, $store->audit(after: $first->next)->events);
        self::assertSame($ids, array_map(fn ($e) => $e->keyId, iterator_to_array($store->auditAll(), false)));
        try {
            $store->audit(limit: 5000);
            self::fail('expected ArgumentException');
        } catch (ArgumentException) {
        }
        try {
            $store->withActor(str_repeat('a', 257));
            self::fail('expected a refusal');
        } catch (KeywardException) {
        }
        $store->setAuditRetention(30);
        $this->expectException(ArgumentException::class);
        $store->setAuditRetention(-1);
    }
}
