<?php

declare(strict_types=1);

namespace Keyward\Tests\Unit;

use Keyward\Exception\KeywardException;
use Keyward\Exception\StorageException;
use Keyward\Library;
use Keyward\Store;
use Keyward\Tests\TempStores;
use PHPUnit\Framework\TestCase;

/**
 * Exceptions name their cause: the library's kw_last_error_message (which file, which
 * permission, what to do) is part of the message of every exception for a failed call; and
 * a PHP where FFI is disabled says which setting to change.
 */
final class ErrorDetailTest extends TestCase
{
    use TempStores;

    private static function openFailure(callable $open): KeywardException
    {
        try {
            $open();
        } catch (KeywardException $e) {
            return $e;
        }
        self::fail('expected a KeywardException');
    }

    public function testOpeningADirectoryNamesIt(): void
    {
        $dir = dirname(self::newPath()) . '/a-directory';
        mkdir($dir);
        $e = self::openFailure(static fn () => Store::open($dir));
        self::assertStringContainsString("$dir is a directory", $e->getDetail());
        self::assertStringContainsString($e->getDetail(), $e->getMessage());
        self::assertStringStartsWith("cannot open the key store '$dir': ", $e->getMessage());
        rmdir($dir);
    }

    public function testAWorldReadablePepperFileNamesTheFileAndTheFix(): void
    {
        $path = self::newPath('pepper');
        $pepper = "$path.pepper";
        file_put_contents($pepper, random_bytes(32));
        chmod($pepper, 0644);
        $e = self::openFailure(static fn () => Store::open($path, pepperFile: $pepper));
        self::assertInstanceOf(StorageException::class, $e);
        self::assertSame('PEPPER_PERMISSIONS', $e->getStatusName());
        self::assertStringContainsString($pepper, $e->getDetail());
        self::assertStringContainsString('644', $e->getDetail());
        self::assertStringContainsString('chmod 600', $e->getDetail());
        self::assertStringContainsString($e->getDetail(), $e->getMessage());
        unlink($pepper);
    }

    public function testEveryMessageStartsWithTheContextAndTheStatus(): void
    {
        $store = self::newStore();
        try {
            $store->get('3hZ0bq9XcV1mT7pK');
            self::fail('expected NOT_FOUND');
        } catch (KeywardException $e) {
            self::assertSame('NOT_FOUND', $e->getStatusName());
            // Either way the message is the context, the status message and its name first.
            self::assertStringStartsWith("kw_get('3hZ0bq9XcV1mT7pK'): ", $e->getMessage());
            self::assertStringContainsString('(KW_NOT_FOUND)', $e->getMessage());
        }
        $store->close();
    }

    public function testAKeyQuotedByTheLibraryIsShownAsItsLength(): void
    {
        $store = self::newStore();
        $key = $store->create('acct_detail')->key;
        try {
            $store->get($key); // a full key where an id is expected
            self::fail('expected NOT_FOUND');
        } catch (KeywardException $e) {
            self::assertNotSame('', $e->getDetail());
            self::assertStringNotContainsString(\Keyward\Keyward::parseKey($key)->secret, $e->getMessage());
            self::assertStringContainsString(sprintf('<%d bytes>', strlen($key)), $e->getDetail());
        }
        $id = \Keyward\Keyward::parseKey($key)->id;
        self::assertSame("no key with id \"$id\" exists", \Keyward\Native::redact("no key with id \"$id\" exists"), 'ids stay');
        self::assertSame('/var/lib/app_data/keys.redb', \Keyward\Native::redact('/var/lib/app_data/keys.redb'), 'paths stay');
        $store->close();
    }

    /** PHP code that loads the library and prints the LibraryException's message. */
    private static function loader(): string
    {
        return '<?php require ' . var_export(dirname(__DIR__) . '/autoload.php', true) . ';'
            . 'try { Keyward\Library::load(' . var_export(Library::configuredPath(), true) . '); echo "loaded"; }'
            . ' catch (Keyward\Exception\LibraryException $e) { echo $e->getMessage(); }';
    }

    public function testTheCliSaysWhichSettingEnablesFfi(): void
    {
        $script = substr(self::loader(), strlen('<?php '));
        $out = [];
        exec(escapeshellarg(PHP_BINARY) . ' -d ffi.enable=0 -r ' . escapeshellarg($script) . ' 2>&1', $out);
        $text = implode("\n", $out);
        self::assertStringContainsString("ffi.enable is '0' for the cli SAPI", $text);
        self::assertStringContainsString('php -d ffi.enable=1', $text);
    }

    public function testTheDevelopmentServerSaysWhichSettingEnablesFfi(): void
    {
        // `php -S` with the default ffi.enable=preload, which refuses FFI in that SAPI.
        $dir = dirname(self::newPath());
        file_put_contents("$dir/index.php", self::loader());
        $probe = stream_socket_server('tcp://127.0.0.1:0');
        self::assertNotFalse($probe);
        $address = stream_socket_get_name($probe, false);
        fclose($probe); // a free port: php -S takes it
        $server = proc_open(
            [PHP_BINARY, '-d', 'ffi.enable=preload', '-S', $address, '-t', $dir],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']],
            $pipes,
        );
        self::assertIsResource($server);
        try {
            $body = false;
            // Wait until the server answers (bounded: it starts in milliseconds).
            $deadline = microtime(true) + 20;
            while ($body === false && microtime(true) < $deadline) {
                $body = @file_get_contents("http://$address/index.php");
                if ($body === false) {
                    usleep(20_000);
                }
            }
            self::assertIsString($body, "php -S on $address did not answer");
            self::assertStringContainsString("ffi.enable is 'preload' for the cli-server SAPI", $body);
            self::assertStringContainsString('php -d ffi.enable=1 -S', $body);
        } finally {
            proc_terminate($server);
            proc_close($server);
            @unlink("$dir/index.php");
        }
    }
}
