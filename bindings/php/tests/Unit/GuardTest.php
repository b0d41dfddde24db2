<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Exception\LibraryException;
use Keyward\Guard;
use Keyward\Store;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * The framework-free helper. Guard::require()'s status line and exit are checked for real
 * under PHP-FPM (tests/Fpm); here: check(), the body and headers, the configured store, and
 * require() in a CLI subprocess (body printed, script stopped).
 */
final class GuardTest extends TestCase
{
    use TempStores;

    public function testCheckBodyAndHeaders(): void
    {
        $store = self::newStore('guard');
        $key = $store->create('acct', scopes: ['read'])->key;
        self::assertTrue(Guard::check(['read'], $store, ['HTTP_X_API_KEY' => $key])->valid);
        $denied = Guard::check(['admin'], $store, ['HTTP_AUTHORIZATION' => "Bearer $key"]);
        self::assertSame(403, $denied->httpStatus);
        self::assertSame('{"ok":false,"code":"INSUFFICIENT_SCOPE","message":"the API key lacks a scope this route requires"}' . "\n",
            Guard::body($denied));
        self::assertSame(['Content-Type' => 'application/json', 'Cache-Control' => 'no-store',
            'WWW-Authenticate' => 'Bearer error="insufficient_scope"'], Guard::headers($denied));
        $missing = Guard::check([], $store, []);
        self::assertSame('CREDENTIAL_MISSING', $missing->code);
        self::assertSame('Bearer', Guard::headers($missing)['WWW-Authenticate']);
        $store->close();
    }

    public function testTheStoreComesFromKeywardStore(): void
    {
        $path = self::newPath('guard-env');
        $key = Store::open($path)->create('acct_env')->key;
        $previous = getenv('KEYWARD_STORE');
        try {
            putenv('KEYWARD_STORE');
            try {
                Guard::store();
                self::fail('expected a LibraryException');
            } catch (LibraryException $e) {
                self::assertStringContainsString('KEYWARD_STORE', $e->getMessage());
            }
            putenv("KEYWARD_STORE=$path");
            $store = Guard::store();
            self::assertTrue($store->isPersistent());
            self::assertSame('acct_env', Guard::check([], null, ['HTTP_X_API_KEY' => $key])->owner());
        } finally {
            putenv($previous === false ? 'KEYWARD_STORE' : "KEYWARD_STORE=$previous");
        }
    }

    public function testRequireAnswersAndStopsTheScript(): void
    {
        $path = self::newPath('guard-cli');
        $key = Store::open($path)->create('acct_cli', scopes: ['read'])->key;
        $script = sprintf(
            '<?php require %s; Keyward\Library::$path = %s; $v = Keyward\Guard::require(["read"]); echo "reached ", $v->owner(), "\n";',
            var_export(dirname(__DIR__) . '/autoload.php', true),
            var_export(\Keyward\Library::configuredPath(), true),
        );
        $file = self::newPath('guard-script') . '.php';
        file_put_contents($file, $script);
        $run = static function (array $env) use ($file): array {
            $proc = proc_open([PHP_BINARY, $file], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null,
                $env + ['KEYWARD_STORE' => getenv('KEYWARD_STORE_TEST_PATH') ?: '', 'PATH' => (string) getenv('PATH')]);
            $out = stream_get_contents($pipes[1]);
            stream_get_contents($pipes[2]);
            return [proc_close($proc), $out];
        };
        putenv("KEYWARD_STORE_TEST_PATH=$path");
        try {
            [$status, $out] = $run(['HTTP_X_API_KEY' => $key]);
            self::assertSame([0, "reached acct_cli\n"], [$status, $out]);
            [$status, $out] = $run([]);
            self::assertSame(0, $status);
            self::assertSame('{"ok":false,"code":"CREDENTIAL_MISSING","message":"no API key in the request"}' . "\n", $out);
        } finally {
            putenv('KEYWARD_STORE_TEST_PATH');
        }
    }
}
