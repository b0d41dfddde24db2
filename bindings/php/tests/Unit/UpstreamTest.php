<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Exception\ArgumentException;
use Keyward\Exception\UpstreamException;
use Keyward\Store;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * Stores opened with an upstream PostgreSQL (Store::open(upstream: URL), README "Several
 * hosts"): two hosts with one pepper on a real server (scripts/pg-test-server.sh starts it in a
 * temporary directory); keys created and revoked through host A's ordinary calls reach host B
 * once its replicator (`keyward replicate --once`, the CLI in $KEYWARD_CLI) ran; a server that
 * is down, or a URL that is not one, throws UpstreamException (or ArgumentException) and
 * changes nothing. scripts/test-php.sh builds the CLI and sets $KEYWARD_CLI.
 */
final class UpstreamTest extends TestCase
{
    use TempStores;

    private const PEPPER = '0707070707070707070707070707070707070707070707070707070707070707';

    private string $pgDir = '';
    private string $url = '';

    protected function setUp(): void
    {
        if (getenv('KEYWARD_CLI') === false || getenv('KEYWARD_CLI') === '') {
            self::markTestSkipped('needs $KEYWARD_CLI (keyward built with --features postgres; scripts/test-php.sh sets it)');
        }
        $this->pgDir = '/tmp/kw-pg-' . getmypid() . '-php-' . bin2hex(random_bytes(4));
        $this->url = $this->pg('start');
    }

    protected function tearDown(): void
    {
        if ($this->pgDir !== '') {
            $this->pg('stop');
        }
    }

    private function pg(string $action): string
    {
        $script = dirname(__DIR__, 4) . '/scripts/pg-test-server.sh';
        exec('bash ' . escapeshellarg($script) . ' ' . $action . ' ' . escapeshellarg($this->pgDir) . ' 2>&1', $out, $rc);
        self::assertSame(0, $rc, "pg-test-server.sh $action: " . implode("\n", $out));
        return trim(implode("\n", $out));
    }

    private function host(string $path, ?string $upstream): Store
    {
        return Store::open($path, pepper: self::PEPPER, flushIntervalMs: Store::FLUSH_MANUAL, upstream: $upstream);
    }

    /** Host $path's replicator: catches up with the upstream once. */
    private function replicateOnce(string $path): void
    {
        $pepper = dirname($path) . '/shared.pepper';
        if (!is_file($pepper)) {
            file_put_contents($pepper, self::PEPPER);
            chmod($pepper, 0600);
        }
        $cmd = implode(' ', array_map('escapeshellarg', [
            (string) getenv('KEYWARD_CLI'), 'replicate', '--once', '--db', $path, '--pepper-file', $pepper, '--upstream', $this->url,
        ]));
        exec($cmd . ' 2>&1', $out, $rc);
        self::assertSame(0, $rc, implode("\n", $out));
    }

    public function testCreateAndRevokeOnHostAReachHostB(): void
    {
        $pathA = self::newPath('a');
        $pathB = self::newPath('b');
        $a = $this->host($pathA, $this->url);
        $b = $this->host($pathB, $this->url);
        $created = $a->create('acct_1', scopes: ['read']);
        $other = $a->create('acct_2');
        self::assertSame('VALID', $a->verify($created->key)->code);
        self::assertSame('NOT_FOUND', $b->verify($created->key)->code);
        $this->replicateOnce($pathB);
        self::assertSame('VALID', $b->verify($created->key)->code);

        $a->revoke($created->id(), 'leaked');
        self::assertSame('REVOKED', $a->verify($created->key)->code);
        self::assertSame('VALID', $b->verify($created->key)->code); // until B's replicator ran
        $this->replicateOnce($pathB);
        self::assertSame('REVOKED', $b->verify($created->key)->code);
        self::assertSame('VALID', $b->verify($other->key)->code);

        $replica = $b->stats()->replica;
        self::assertNotNull($replica);
        self::assertSame(3, $replica['cursor']);
        self::assertGreaterThan(0, $replica['syncedAtMs']);
        self::assertNotNull($replica['stalenessMs']);

        // Update, rotate and delete made on B reach the upstream too.
        $b->update($other->id(), name: 'renamed on b');
        $rotated = $b->rotate($other->id(), graceMs: 0);
        $b->delete($rotated->id());
        $this->replicateOnce($pathA);
        self::assertSame('renamed on b', $a->get($other->id())->name);
        self::assertSame('NOT_FOUND', $a->verify($rotated->key)->code);
        $a->close();
        $b->close();
    }

    public function testAStoreOfItsOwnHasNoReplicaStats(): void
    {
        $own = $this->host(self::newPath('own'), null);
        self::assertNull($own->stats()->replica);
        $own->close();
    }

    public function testServerDownThrowsUpstreamExceptionAndLosesNothing(): void
    {
        $a = $this->host(self::newPath('a'), $this->url);
        $created = $a->create('acct_1');
        $this->pg('kill');
        try {
            $a->revoke($created->id());
            self::fail('revoke with the server down');
        } catch (UpstreamException $e) {
            self::assertSame('UPSTREAM_UNAVAILABLE', $e->getStatusName());
            self::assertStringContainsString('nothing was changed', $e->getMessage());
        }
        try {
            $a->create('acct_2');
            self::fail('create with the server down');
        } catch (UpstreamException $e) {
            self::assertSame('UPSTREAM_UNAVAILABLE', $e->getStatusName());
        }
        self::assertSame('VALID', $a->verify($created->key)->code);
        $this->pg('start');
        $a->revoke($created->id()); // reconnects by itself
        self::assertSame('REVOKED', $a->verify($created->key)->code);
        $a->close();
    }

    public function testAUrlThatIsNotOneIsRefusedAtOpen(): void
    {
        try {
            $this->host(self::newPath('bad'), 'postgresql://host:notaport/db');
            self::fail('opened with a bad URL');
        } catch (ArgumentException $e) {
            self::assertStringContainsString('not a PostgreSQL connection URL', $e->getMessage());
        }
        // Well-formed, but nothing listens: the first management call says so.
        $s = $this->host(self::newPath('nowhere'), 'postgresql://kw@%2Fnonexistent%2Fdir/kw');
        try {
            $s->create('acct_1');
            self::fail('created with nothing listening');
        } catch (UpstreamException $e) {
            self::assertSame('UPSTREAM_UNAVAILABLE', $e->getStatusName());
        }
        self::assertNotNull($s->stats()->replica);
        $s->close();
    }
}
