<?php

declare(strict_types=1);

namespace Keyward\Tests\Fpm;

/**
 * The usual production set-up: the php-fpm master runs as root, the workers as www-data;
 * PHP preloads as opcache.preload_user, so the FFI headers come from ffi.preload and
 * preload.php preloads the classes. Skipped when the test does not run as root.
 */
final class RootMasterPoolTest extends PoolTestCase
{
    protected static function rootMaster(): bool
    {
        return true;
    }

    protected static function setupName(): string
    {
        return 'root-master';
    }
}
