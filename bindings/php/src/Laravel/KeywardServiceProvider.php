<?php

declare(strict_types=1);

namespace Keyward\Laravel;

use Illuminate\Auth\AuthenticationException;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Foundation\Application;
use Illuminate\Support\ServiceProvider;
use Keyward\Guard;
use Keyward\Store;

/**
 * Registers keyward with a Laravel application (list it in config/app.php 'providers'):
 *
 * - the `keyward` auth driver (Auth::extend('keyward', ...)) and, like Sanctum does for
 *   `sanctum`, a `keyward` guard using it when config/auth.php has none: `auth:keyward` works
 *   as is. Guard options: 'provider' => 'users' (owner = the user's id), 'store' => path.
 * - the Keyward\Store singleton: config keyward.store (path), keyward.pepper_file,
 *   keyward.pepper, else the KEYWARD_STORE / KEYWARD_PEPPER_FILE / KEYWARD_PEPPER environment
 *   variables (Keyward\Guard::store()). Store::persistent(): opened once per worker.
 * - route middleware aliases `keyward.abilities` (all) and `keyward.ability` (any).
 * - keyward's 401 body for `auth:keyward` refusals: Laravel's Authenticate middleware throws
 *   AuthenticationException; a renderable on the exception handler answers it, for keyward
 *   guards only, with the verdict's status, headers and JSON body (Keyward\Middleware's).
 */
class KeywardServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        if (!$this->app->bound(Store::class)) {
            $this->app->singleton(Store::class, static fn (Application $app): Store => self::configuredStore($app['config']['keyward'] ?? []));
        }
        $config = $this->app['config'];
        $config->set('auth.guards.keyward', array_merge(['driver' => 'keyward', 'provider' => null], $config->get('auth.guards.keyward', [])));
    }

    public function boot(): void
    {
        $this->app['auth']->extend('keyward', static function (Application $app, string $name, array $config): KeywardGuard {
            $store = isset($config['store']) && is_string($config['store'])
                ? static fn (): Store => self::configuredStore(['store' => $config['store']] + $config)
                : static fn (): Store => $app->make(Store::class);
            $provider = isset($config['provider']) ? $app['auth']->createUserProvider($config['provider']) : null;
            $guard = new KeywardGuard($store, $app->bound('request') ? $app['request'] : null, $provider);
            $app->refresh('request', $guard, 'setRequest');
            return $guard;
        });

        if ($this->app->bound('router')) {
            $router = $this->app['router'];
            $router->aliasMiddleware('keyward.abilities', CheckAbilities::class);
            $router->aliasMiddleware('keyward.ability', CheckForAnyAbility::class);
        }

        $this->app->afterResolving(ExceptionHandler::class, static function ($handler): void {
            self::renderRefusals($handler);
        });
        if ($this->app->resolved(ExceptionHandler::class)) {
            self::renderRefusals($this->app->make(ExceptionHandler::class));
        }
    }

    /**
     * The store of a config array: store (path), pepper_file, pepper; the environment
     * variables of Keyward\Guard when there is no path.
     *
     * @param array<string, mixed> $config
     */
    public static function configuredStore(array $config): Store
    {
        $path = $config['store'] ?? null;
        if (!is_string($path) || $path === '') {
            return Guard::store();
        }
        $pepperFile = $config['pepper_file'] ?? null;
        $pepper = $config['pepper'] ?? null;
        return Store::persistent(
            $path,
            pepper: is_string($pepper) && $pepper !== '' ? $pepper : null,
            pepperFile: is_string($pepperFile) && $pepperFile !== '' ? $pepperFile : null,
        );
    }

    private static function renderRefusals(mixed $handler): void
    {
        if (!is_object($handler) || !method_exists($handler, 'renderable')) {
            return; // not Laravel's Foundation handler: the app's own renders the exception
        }
        $handler->renderable(static function (AuthenticationException $e, $request) {
            $auth = app('auth');
            foreach ($e->guards() ?: [null] as $name) {
                $guard = $auth->guard($name);
                if ($guard instanceof KeywardGuard && ($refusal = $guard->refusal()) !== null) {
                    return Responses::deny($refusal);
                }
            }
            return null;
        });
    }
}
