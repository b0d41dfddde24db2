<?php

declare(strict_types=1);

namespace Keyward\Tests\Fpm;

/**
 * php-fpm entirely unprivileged (containers, a user's own pool): preload.php loads the
 * library with FFI::load(). Run as www-data when the test runs as root.
 */
final class UserMasterPoolTest extends PoolTestCase
{
    protected static function rootMaster(): bool
    {
        return false;
    }

    protected static function setupName(): string
    {
        return 'user-master';
    }
}
