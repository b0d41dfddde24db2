<?php

declare(strict_types=1);

require __DIR__ . '/autoload.php';

// The library under test: KEYWARD_LIB (set by scripts/test-php.sh), else the repository's
// debug build.
if (!is_string(getenv('KEYWARD_LIB', true)) || getenv('KEYWARD_LIB', true) === '') {
    Keyward\Library::$path = dirname(__DIR__, 3) . '/target/debug/libkeyward.so';
}

// Temporary store directories of this run that a test class could not remove at its end
// (a store still open then): removed when the run ends.
register_shutdown_function(static function (): void {
    foreach (glob(sys_get_temp_dir() . '/keyward-php-' . getmypid() . '-*') ?: [] as $dir) {
        foreach (glob("$dir/*") ?: [] as $file) {
            @unlink($file);
        }
        @rmdir($dir);
    }
});
