<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Exception\ArgumentException;
use Keyward\Store;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * Legacy keys through the PHP binding (issue 18, item 1): exports made with the real
 * algorithms of Sanctum, djangorestframework-api-key, Unkey and Better Auth
 * (tests/legacy/make_exports.py: Python's hashlib, SQLite tables shaped like theirs) are
 * imported with Store::importLegacy; their keys verify VALID, wrong ones are refused, the first
 * use upgrades the record (KeyRecord::$legacy['upgraded_at']), a second process sees the keys
 * and the upgrade, and the store's files hold no raw legacy hash.
 */
final class LegacyTest extends TestCase
{
    use TempStores;

    private static ?string $exports = null;
    /** @var array<string, mixed> */
    private static array $cases = [];

    public static function setUpBeforeClass(): void
    {
        self::$exports = sys_get_temp_dir() . '/keyward-php-legacy-' . getmypid() . '-' . bin2hex(random_bytes(4));
        $script = dirname(__DIR__, 4) . '/tests/legacy/make_exports.py';
        exec(sprintf('python3 %s --now %d %s 2>&1', escapeshellarg($script), time(), escapeshellarg(self::$exports)), $out, $code);
        self::assertSame(0, $code, implode("\n", $out));
        self::$cases = json_decode((string) file_get_contents(self::$exports . '/cases.json'), true, flags: JSON_THROW_ON_ERROR);
    }

    public static function tearDownAfterClass(): void
    {
        foreach (glob(self::$exports . '/*') ?: [] as $file) {
            @unlink($file);
        }
        @rmdir((string) self::$exports);
    }

    /** @return array<string, array{string}> */
    public static function sources(): array
    {
        return ['sanctum' => ['sanctum'], 'drf' => ['drf'], 'unkey' => ['unkey'], 'better-auth' => ['better-auth']];
    }

    /** @return array<string, mixed> */
    private static function options(array $case): array
    {
        $o = $case['options'];
        return [
            'sanctumExpirationMinutes' => $o['sanctum_expiration_minutes'] ?? null,
            'allScopes' => $o['all_scopes'] ?? null,
            'defaultOwner' => $o['default_owner'] ?? null,
        ];
    }

    /** @dataProvider sources */
    public function testImportedKeysVerifyAndUpgradeOnFirstUse(string $source): void
    {
        $case = self::$cases[$source];
        $data = (string) file_get_contents(self::$exports . '/' . $case['file']);
        $path = self::newPath('legacy');
        $store = Store::open($path);
        self::assertSame('MALFORMED', $store->verify($case['valid'][0]['key'])->code);
        $importable = count($case['valid']) + count($case['revoked']) + count($case['expired']);
        $dry = $store->importLegacy($source, $data, ['dryRun' => true] + self::options($case));
        self::assertTrue($dry['dry_run']);
        self::assertSame($importable, $dry['imported']);
        self::assertSame('MALFORMED', $store->verify($case['valid'][0]['key'])->code);
        $report = $store->importLegacy($source, $data, self::options($case));
        self::assertSame([$importable, count($case['revoked']), count($case['expired'])],
            [$report['imported'], $report['revoked'], $report['expired']]);

        // Another process verifies first: it finds the keys and upgrades them.
        $child = sprintf('require %s; $s = Keyward\Store::open($argv[1]); echo json_encode(array_map(fn ($k) => $s->verify($k)->code, json_decode($argv[2], true)));',
            var_export(dirname(__DIR__) . '/autoload.php', true));
        $keys = json_encode(array_map(fn (array $v): string => $v['key'], $case['valid']));
        $cmd = sprintf('%s -d ffi.enable=1 -r %s %s %s', escapeshellarg(PHP_BINARY), escapeshellarg($child), escapeshellarg($path), escapeshellarg((string) $keys));
        exec($cmd, $out, $code);
        self::assertSame(0, $code, implode("\n", $out));
        self::assertSame(array_fill(0, count($case['valid']), 'VALID'), json_decode(implode('', $out), true));

        foreach ($case['valid'] as $valid) {
            $id = Store::legacyKeyId($source, $valid['source_id']);
            $record = $store->get($id);
            self::assertSame($source, $record->legacy['scheme']);
            self::assertSame($valid['source_id'], $record->legacy['source_id']);
            self::assertIsInt($record->legacy['upgraded_at'], 'the child process upgraded it');
            self::assertSame($valid['owner'], $record->owner);
            self::assertSame($valid['scopes'], $record->scopes);
            $verdict = $store->verify($valid['key'], $valid['scopes']);
            self::assertSame('VALID', $verdict->code);
            self::assertSame($id, $verdict->keyId());
        }
        foreach ($case['wrong'] as $wrong) {
            self::assertSame('NOT_FOUND', $store->verify($wrong)->code);
        }
        foreach ($case['revoked'] as $revoked) {
            self::assertSame('REVOKED', $store->verify($revoked['key'])->code);
        }
        foreach ($case['expired'] as $expired) {
            self::assertSame('EXPIRED', $store->verify($expired['key'])->code);
        }
        $store->close();
        $files = glob($path . '*') ?: [];
        self::assertGreaterThanOrEqual(3, count($files));
        foreach ($files as $file) {
            $bytes = (string) file_get_contents($file);
            foreach ($case['raw_hashes'] as $hash) {
                self::assertStringNotContainsString($hash, $bytes, basename($file) . ' holds a raw legacy hash');
            }
        }
    }

    public function testBadExportsAndArguments(): void
    {
        $store = self::newStore('legacy-bad');
        $data = (string) file_get_contents(self::$exports . '/sanctum.csv');
        try {
            $store->importLegacy('sanctum', $data);
            self::fail('expected LEGACY_IMPORT_INVALID');
        } catch (ArgumentException $e) {
            self::assertSame('LEGACY_IMPORT_INVALID', $e->getStatusName());
            self::assertStringContainsString('line 2', $e->getMessage());
        }
        try {
            $store->importLegacy('lotus-notes', $data);
            self::fail('expected an ArgumentException');
        } catch (ArgumentException) {
        }
        try {
            $store->importLegacy('drf', $data, ['bogus' => 1]);
            self::fail('expected a TypeError');
        } catch (\TypeError) {
        }
        try {
            Store::legacyKeyId('sanctum', '');
            self::fail('expected an ArgumentException');
        } catch (ArgumentException) {
        }
        self::assertSame(Store::legacyKeyId('sanctum', '7'), Store::legacyKeyId('sanctum', '7'));
        self::assertNotSame(Store::legacyKeyId('sanctum', '7'), Store::legacyKeyId('unkey', '7'));
        $store->close();
    }
}
