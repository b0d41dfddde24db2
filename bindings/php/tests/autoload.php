<?php

/*
 * Autoloading for the tests and the PHP-FPM test app, without Composer: Keyward\ from src/,
 * Keyward\Tests\ from tests/, the PSR-7/PSR-17 interfaces and nyholm/psr7 from Debian's
 * packages (php-psr-http-message, php-psr-http-factory, php-nyholm-psr7) or a Composer
 * vendor/ directory, and the PSR-15 interfaces from tests/psr/ when no package provides them.
 */

declare(strict_types=1);

(static function (): void {
    $package = dirname(__DIR__);
    if (is_file("$package/vendor/autoload.php")) {
        require_once "$package/vendor/autoload.php";
    }
    spl_autoload_register(static function (string $class) use ($package): void {
        $map = ['Keyward\\Tests\\' => "$package/tests/", 'Keyward\\' => "$package/src/"];
        foreach ($map as $prefix => $dir) {
            if (str_starts_with($class, $prefix)) {
                $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
                if (is_file($file)) {
                    require_once $file;
                }
                return;
            }
        }
    });
    foreach (['Nyholm/Psr7/autoload.php', 'Psr/Http/Message/autoload.php', 'Psr/Http/Message/factory-autoload.php'] as $debian) {
        if (is_file("/usr/share/php/$debian")) {
            require_once "/usr/share/php/$debian";
        }
    }
    // Last: the vendored PSR-15 interfaces, only when nothing else provides them.
    spl_autoload_register(static function (string $class) use ($package): void {
        if (str_starts_with($class, 'Psr\\Http\\Server\\')) {
            $file = "$package/tests/psr/Http/Server/" . substr($class, strlen('Psr\\Http\\Server\\')) . '.php';
            if (is_file($file)) {
                require_once $file;
            }
        }
    });
})();
