<?php

declare(strict_types=1);

namespace Keyward\Tests;

use Keyward\Store;

/**
 * A temporary directory per test class for store files, removed afterwards.
 */
trait TempStores
{
    private static ?string $tempDir = null;
    private static int $counter = 0;

    /** A fresh, unused store path. */
    protected static function newPath(string $name = 'store'): string
    {
        if (self::$tempDir === null) {
            self::$tempDir = sys_get_temp_dir() . '/keyward-php-' . getmypid() . '-' . bin2hex(random_bytes(4));
            mkdir(self::$tempDir, 0700, true);
        }
        return self::$tempDir . '/' . $name . '-' . (++self::$counter) . '.redb';
    }

    /** A new store of its own (closed when the object goes). */
    protected static function newStore(string $name = 'store', mixed ...$options): Store
    {
        return Store::open(self::newPath($name), ...$options);
    }

    /** @afterClass */
    public static function removeTempDir(): void
    {
        if (self::$tempDir !== null && is_dir(self::$tempDir)) {
            foreach (glob(self::$tempDir . '/*') ?: [] as $file) {
                @unlink($file);
            }
            @rmdir(self::$tempDir);
        }
        self::$tempDir = null;
    }
}
