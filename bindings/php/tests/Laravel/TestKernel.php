<?php

declare(strict_types=1);

namespace Keyward\Tests\Laravel;

use Illuminate\Foundation\Http\Kernel;

/**
 * The HTTP kernel of the test application: Laravel's own, with the route middleware aliases a
 * Sanctum application has, pointed at keyward (the migration guide's change). Laravel's
 * HandleExceptions bootstrapper (PHP error handlers) and .env loading are left out: PHPUnit
 * keeps its own error handling.
 */
final class TestKernel extends Kernel
{
    protected $bootstrappers = [
        \Illuminate\Foundation\Bootstrap\LoadConfiguration::class,
        \Illuminate\Foundation\Bootstrap\RegisterFacades::class,
        \Illuminate\Foundation\Bootstrap\RegisterProviders::class,
        \Illuminate\Foundation\Bootstrap\BootProviders::class,
    ];

    protected $routeMiddleware = [
        'auth' => \Illuminate\Auth\Middleware\Authenticate::class,
        'abilities' => \Keyward\Laravel\CheckAbilities::class,   // was \Laravel\Sanctum\Http\Middleware\CheckAbilities
        'ability' => \Keyward\Laravel\CheckForAnyAbility::class, // was \Laravel\Sanctum\Http\Middleware\CheckForAnyAbility
    ];
}
